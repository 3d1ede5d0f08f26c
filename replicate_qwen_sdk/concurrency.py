"""Running many jobs at once on any ``concurrent.futures.Executor``.

Results come back in input order, each either a value or the exception its
job raised; nothing is lost or mixed up. The function and its arguments are
pickled only by executors that need it (processes, Dask).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Dict, List, Optional, Sequence, TypeVar

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

    :param max_workers: threads of the pool made when ``executor`` is None.
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
    own_pool = executor is None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers, "replicate_qwen_sdk-batch") if own_pool else executor
    results: List[Any] = [None] * len(arguments)
    try:
        futures: Dict[concurrent.futures.Future, int] = {
            pool.submit(function, *args): index for index, args in enumerate(arguments)
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
    finally:
        if own_pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return results
