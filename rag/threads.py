"""Where the surfaces (HTTP, MCP) run the library's blocking calls: worker threads, with answers
that wait on a chat model on threads of their own.

A model server that hangs makes each answer wait up to its deadline. On the default thread pool
those waits would take the threads that serve searches and extractive answers; ``ModelThreads``
gives them their own ``anyio.CapacityLimiter``, so only other model answers queue behind them.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator

__all__ = ["ModelThreads", "calls_model"]


def calls_model(assistant, backend: str | None = None, history=()) -> bool:
    """Whether an answer waits on the chat model: one is configured and the answer (or, for a
    follow-up, the rewriting of its question) asks it."""
    return getattr(assistant, "chat_model", None) is not None and (backend != "extractive" or bool(history))


class ModelThreads:
    """``await threads.run(fn, uses_model)``: ``fn()`` on a worker thread (``workers`` of them for
    calls that wait on a chat model, the default pool for the rest)."""

    def __init__(self, workers: int = 100):
        import anyio  # lazy: only the surfaces that serve requests need it

        self._anyio = anyio
        self.model = anyio.CapacityLimiter(workers)

    async def run(self, fn: Callable[[], Any], uses_model: bool = False) -> Any:
        return await self._anyio.to_thread.run_sync(fn, limiter=self.model if uses_model else None)

    async def pull(self, events: Iterator, uses_model: bool = False) -> AsyncIterator:
        """A blocking event stream as an async one, each step on the right threads."""
        done = object()
        while True:
            event = await self.run(lambda: next(events, done), uses_model)
            if event is done:
                return
            yield event
