"""Coalesce concurrent single calls into batch calls (for query embeddings under load).

Why: a query's forward pass through the encoder is bound by reading the weights, so encoding four
queries together costs ~1.7x one query, not 4x. When more server threads embed at once than there
are cores, the callers that find every core busy queue up, and the next free worker runs one batch
for all of them. With one caller at a time it is a plain call: no timer, no added latency.
"""

from __future__ import annotations

import os
import threading
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot(Generic[T, R]):
    __slots__ = ("item", "result", "error", "done", "lead")  # lead: holds a worker token

    def __init__(self, item: T):
        self.item = item
        self.result: R | None = None
        self.error: BaseException | None = None
        self.done = False
        self.lead = False


class Coalescer(Generic[T, R]):
    """``coalescer(item)`` returns ``batch_fn([item, ...])[i]``, sharing batches between threads.

    At most ``max_workers`` batches run at once (one per core: the forward pass releases the GIL
    in its matrix products, so two run in parallel on two cores); callers beyond that queue up
    and are served together by the next free worker, up to ``max_batch`` items per batch.
    """

    def __init__(self, batch_fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 16,
                 max_workers: int | None = None):
        self.batch_fn = batch_fn
        self.max_batch = max_batch
        self.max_workers = max_workers or os.cpu_count() or 1
        self.batches = 0  # counters for tests and benchmarks
        self.items = 0
        self._cond = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._leaders = 0  # leadership tokens: held by running workers or handed to a waiter

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._cond:
            self._pending.append(slot)
            if self._leaders < self.max_workers:
                self._leaders += 1
                slot.lead = True
            else:
                while not slot.done and not slot.lead:
                    self._cond.wait()
        if slot.lead:
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self, mine: _Slot[T, R]) -> None:
        """Run batches from the queue until ``mine`` is done, then pass the token on."""
        while True:
            with self._cond:
                if mine.done:
                    heir = next((s for s in self._pending if not s.lead), None)
                    if heir is not None:
                        heir.lead = True
                        self._cond.notify_all()
                    else:
                        self._leaders -= 1
                    return
                batch = self._pending[: self.max_batch]
                del self._pending[: len(batch)]
                if not batch:  # our item is in another worker's batch
                    while not mine.done:
                        self._cond.wait()
                    continue
            try:
                results = self.batch_fn([s.item for s in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results "
                                       f"for {len(batch)} items")
                for s, r in zip(batch, results):
                    s.result = r
            except BaseException as e:  # noqa: BLE001 - every waiter must hear about the failure
                for s in batch:
                    s.error = e
            with self._cond:
                for s in batch:
                    s.done = True
                self.batches += 1
                self.items += len(batch)
                self._cond.notify_all()
