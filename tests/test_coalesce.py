"""The coalescer: concurrent calls share batches, each caller gets its own result or error."""

import threading
import time

import pytest

from rag.coalesce import Coalescer


def test_single_caller_is_a_plain_call():
    seen = []
    c = Coalescer(lambda items: seen.append(list(items)) or [i * 2 for i in items])
    assert [c(1), c(2), c(3)] == [2, 4, 6]
    assert seen == [[1], [2], [3]]


def run_threads(c, n):
    results, errors = {}, {}
    barrier = threading.Barrier(n)

    def worker(i):
        barrier.wait()
        try:
            results[i] = c(i)
        except Exception as e:  # noqa: BLE001
            errors[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return results, errors


def test_concurrent_callers_share_batches_and_get_their_own_results():
    sizes = []

    def slow_square(items):
        sizes.append(len(items))
        time.sleep(0.02)  # long enough for the others to queue up
        return [i * i for i in items]

    c = Coalescer(slow_square, max_batch=4)
    results, errors = run_threads(c, 12)
    assert not errors
    assert results == {i: i * i for i in range(12)}
    assert sum(sizes) == 12 and max(sizes) <= 4 and len(sizes) < 12


def test_a_failing_batch_fails_only_its_callers_and_the_next_batch_still_runs():
    def flaky(items):
        time.sleep(0.01)
        if 3 in items:
            raise ValueError("bad item 3")
        return [str(i) for i in items]

    c = Coalescer(flaky, max_batch=1)
    results, errors = run_threads(c, 6)
    assert set(errors) == {3} and isinstance(errors[3], ValueError)
    assert results == {i: str(i) for i in range(6) if i != 3}
    assert c(7) == "7"  # not left in a running state


def test_wrong_result_count_is_an_error_not_a_silent_misalignment():
    c = Coalescer(lambda items: [])
    with pytest.raises(RuntimeError, match="0 results for 1 items"):
        c("x")


def test_two_workers_run_in_parallel_and_return_their_tokens():
    running, peak = [0], [0]
    lock = threading.Lock()

    def tracked(items):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)
        with lock:
            running[0] -= 1
        return items

    c = Coalescer(tracked, max_batch=2, max_workers=2)
    results, errors = run_threads(c, 10)
    assert not errors and results == {i: i for i in range(10)}
    assert peak[0] == 2  # two batches at once, never more
    assert c._leaders == 0 and not c._pending  # nothing leaked: the next call leads at once
    assert c("solo") == "solo" and c._leaders == 0
