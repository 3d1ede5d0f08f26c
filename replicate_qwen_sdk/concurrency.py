"""Running many jobs at once on any ``concurrent.futures.Executor``.

Results come back in input order, each either a value or the exception its
job raised; nothing is lost or mixed up. The function and its arguments are
pickled only by executors that need it (processes, Dask).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from .errors import InvalidArgumentError

__all__ = ["DEFAULT_MAX_WORKERS", "run_all"]

#: Threads a batch uses unless told otherwise.
DEFAULT_MAX_WORKERS = 8

T = TypeVar("T")


def run_all(
    function: Callable[..., T],
    arguments: Sequence[tuple],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    executor: Optional[concurrent.futures.Executor] = None,
    return_exceptions: bool = True,
    on_result: Optional[Callable[[int, Any], None]] = None,
) -> List[Any]:
    """Call ``function(*arguments[i])`` for every ``i`` concurrently.

    :param max_workers: threads used when ``executor`` is None.
    :param executor: any ``concurrent.futures.Executor`` (a thread or process
        pool, or ``dask_client.get_executor()``); left running.
    :param return_exceptions: put each job's exception in its place in the
        results; when false, the first failure (in input order of
        completion) cancels the jobs not started and is raised.
    :param on_result: ``on_result(index, result_or_exception)``, called in
        this thread as each job finishes.
    :returns: one result per job, in input order.
    """
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidArgumentError(f"max_workers must be an integer >= 1, got {max_workers!r}.")
    if executor is None:
        return _run_on_threads(function, arguments, max_workers, return_exceptions, on_result)
    results: List[Any] = [None] * len(arguments)
    futures: Dict[concurrent.futures.Future, int] = {
        executor.submit(function, *args): index for index, args in enumerate(arguments)
    }
    for future in concurrent.futures.as_completed(futures):
        index = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # each job's failure is its own result
            if not return_exceptions:
                for other in futures:
                    other.cancel()
                raise
            outcome = exc
        results[index] = outcome
        if on_result is not None:
            on_result(index, outcome)
    return results


_STOP = object()


def _run_on_threads(function, arguments, max_workers, return_exceptions, on_result) -> List[Any]:
    """A thread pool whose threads all start before any job does.

    ``ThreadPoolExecutor`` starts a thread per submitted job while earlier
    jobs already run; each start then waits for the busy interpreter to
    schedule the new thread (up to a switch interval, 5 ms), so 200 workers
    took over a second just to start. Here the threads start while nothing
    runs yet, then all jobs go into one queue.
    """
    jobs: "queue.Queue[Any]" = queue.Queue()
    done: "queue.Queue[Tuple[int, Any, bool]]" = queue.Queue()
    stop = threading.Event()

    def work() -> None:
        while True:
            item = jobs.get()
            if item is _STOP:
                return
            index, args = item
            if stop.is_set():
                continue
            try:
                done.put((index, function(*args), True))
            except BaseException as exc:  # reported in the calling thread
                done.put((index, exc, False))

    count = min(max_workers, len(arguments))
    threads = [threading.Thread(target=work, name=f"replicate_qwen_sdk-batch-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for item in enumerate(arguments):
        jobs.put(item)
    for _ in threads:
        jobs.put(_STOP)
    results: List[Any] = [None] * len(arguments)
    try:
        for _ in range(len(arguments)):
            index, outcome, succeeded = done.get()
            if not succeeded:
                if not isinstance(outcome, Exception) or not return_exceptions:
                    stop.set()
                    raise outcome
            results[index] = outcome
            if on_result is not None:
                on_result(index, outcome)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return results
