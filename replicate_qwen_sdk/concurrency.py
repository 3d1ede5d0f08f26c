"""Running many jobs at once on any ``concurrent.futures.Executor``.

Results come back in input order, each either a value or the exception its
job raised; nothing is lost or mixed up. The function and its arguments are
pickled only by executors that need it (processes, Dask).

A batch stops early on Ctrl-C, when ``on_result`` raises, or at the first
failure when ``return_exceptions`` is false. Then the jobs not started never
start, the running ones that said how to stop them (:func:`cancel_on_stop`)
are cancelled, the results finished by then still reach ``on_result``, and
the exception is raised within about :data:`STOP_GRACE` seconds. Jobs on a
Dask cluster learn of the stop through a ``distributed.Event`` and cancel
themselves on their workers; on a process pool they run to their end.

Called from the main thread, the first Ctrl-C takes effect between two
results, so that none is lost while it is being handed to ``on_result``; a
second Ctrl-C raises at once.
"""

from __future__ import annotations

import abc
import concurrent.futures
import contextlib
import logging
import queue
import signal
import threading
import time
import uuid
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, Sequence, Set, Tuple

from .errors import InvalidArgumentError

__all__ = ["DEFAULT_MAX_WORKERS", "STOP_GRACE", "cancel_on_stop", "run_all", "run_each"]

logger = logging.getLogger("replicate_qwen_sdk")

#: Threads a batch uses unless told otherwise.
DEFAULT_MAX_WORKERS = 8

#: Seconds a stopping batch waits for its running jobs to be cancelled
#: before it raises; a cancellation still under way then goes on in the
#: background.
STOP_GRACE = 1.5

OnResult = Callable[[int, Any], None]


def run_all(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    executor: Optional[concurrent.futures.Executor] = None,
    return_exceptions: bool = True,
    on_result: Optional[OnResult] = None,
) -> List[Any]:
    """Call ``function(*arguments[i])`` for every ``i`` concurrently.

    :param max_workers: threads used when ``executor`` is None.
    :param executor: any ``concurrent.futures.Executor`` (a thread or process
        pool, or ``dask_client.get_executor()``); left running.
    :param return_exceptions: put each job's exception in its place in the
        results; when false, the first failure (in order of completion)
        stops the batch and is raised.
    :param on_result: ``on_result(index, result_or_exception)``, called in
        this thread as each job finishes.
    :returns: one result per job, in input order.
    :raises KeyboardInterrupt: on Ctrl-C, once the batch has stopped (see
        the module's documentation).
    """
    results: List[Any] = [None] * len(arguments)

    def keep(index: int, outcome: Any) -> None:
        results[index] = outcome
        if on_result is not None:
            on_result(index, outcome)

    run_each(
        function,
        arguments,
        keep,
        max_workers=max_workers,
        executor=executor,
        return_exceptions=return_exceptions,
    )
    return results


def run_each(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    on_result: OnResult,
    *,
    max_workers: int = DEFAULT_MAX_WORKERS,
    executor: Optional[concurrent.futures.Executor] = None,
    return_exceptions: bool = True,
) -> None:
    """Like :func:`run_all`, but keeps nothing: each result goes only to
    ``on_result(index, result_or_exception)``, so memory does not grow with
    the results (a batch that writes them to a file as they come)."""
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidArgumentError(f"max_workers must be an integer >= 1, got {max_workers!r}.", argument="max_workers")
    batch = _Batch(on_result, return_exceptions)
    done: "queue.SimpleQueue[Any]" = queue.SimpleQueue()  # what finished, in order; reentrant
    with _ctrl_c_between_results(done):
        if executor is None:
            _run_on_threads(function, arguments, max_workers, batch, done)
        else:
            _run_on_executor(function, arguments, executor, batch, done)


@contextlib.contextmanager
def cancel_on_stop(cancel: Callable[[], None]) -> Iterator[None]:
    """Let the batch running this job call ``cancel()`` if it stops while
    the block runs.

    For job functions given to :func:`run_all` or :func:`run_each`: wrap the
    wait on a server-side run, passing what stops it::

        with stream, cancel_on_stop(stream.cancel):
            return stream.read()

    ``cancel`` is called from another thread while the block runs, and the
    block should then end soon (a cancelled stream does); the job's result
    is discarded. If the batch is already stopping, ``cancel`` is called at
    once. Outside a batch, and in a job on a process pool, this does
    nothing. One block per job at a time.
    """
    running: Optional[_Running] = getattr(_current, "job", None)
    if running is None:
        yield
    else:
        with running.cancellable(cancel):
            yield


# -- one batch ------------------------------------------------------------------------------

#: The job the calling thread runs for a batch, if any.
_current = threading.local()


class _Batch:
    """One run's shared state: the running jobs and how to cancel them, and
    the delivery of results to ``on_result``."""

    def __init__(self, on_result: OnResult, return_exceptions: bool) -> None:
        self._on_result = on_result
        self._return_exceptions = return_exceptions
        self._lock = threading.Lock()
        self._stopped = False
        self._cancels: Dict[int, Callable[[], None]] = {}
        # Jobs cancelled, or skipped because the batch stopped: what they
        # return is not a result.
        self._dropped: Set[int] = set()

    def start(self, index: int) -> bool:
        """Whether job ``index`` may start: not once the batch is stopping."""
        with self._lock:
            if self._stopped:
                self._dropped.add(index)
            return not self._stopped

    def register(self, index: int, cancel: Callable[[], None]) -> bool:
        """Record how to cancel running job ``index``; False (and the job's
        result dropped) if the batch is already stopping."""
        with self._lock:
            if self._stopped:
                self._dropped.add(index)
                return False
            self._cancels[index] = cancel
            return True

    def unregister(self, index: int) -> None:
        with self._lock:
            self._cancels.pop(index, None)

    def stop(self) -> List[threading.Thread]:
        """Start no more jobs, and cancel the running ones, each in its own
        daemon thread (returned, to be waited for)."""
        with self._lock:
            self._stopped = True
            cancels = list(self._cancels.items())
            self._cancels.clear()
            self._dropped.update(index for index, _ in cancels)
        if cancels:
            logger.info("batch stopping: canceling %d running job(s)", len(cancels))
        threads = [
            threading.Thread(target=_cancel_quietly, args=(cancel,), name="replicate_qwen_sdk-cancel", daemon=True)
            for _, cancel in cancels
        ]
        for thread in threads:
            thread.start()
        return threads

    def deliver(self, index: int, outcome: Any, succeeded: bool) -> None:
        """Hand a finished job to ``on_result``; raise its failure instead
        when failures are not results."""
        if not succeeded and not self._is_result(outcome):
            raise outcome
        self._on_result(index, outcome)

    def deliver_finished(self, index: int, outcome: Any, succeeded: bool) -> bool:
        """While stopping: hand a job that finished (not one cut short) to
        ``on_result``. False if ``on_result`` fails: deliver no more."""
        if index in self._dropped or (not succeeded and not self._is_result(outcome)):
            return True
        try:
            self._on_result(index, outcome)
        except Exception as exc:
            logger.warning("on_result failed while the batch was stopping (%r); later results are dropped", exc)
            return False
        return True

    def _is_result(self, error: BaseException) -> bool:
        return self._return_exceptions and isinstance(error, Exception)


class _Job:
    """``function`` as a batch calls it: ``job(index, *args)``.

    Pickled (to a process pool or a Dask worker), it leaves the batch
    behind; on Dask it takes the name of the event that says the batch
    stopped (``stop_event``).
    """

    def __init__(self, function: Callable[..., Any], batch: _Batch, stop_event: Optional[str] = None) -> None:
        self.function = function
        self.batch: Optional[_Batch] = batch
        self.stop_event = stop_event

    def __call__(self, index: int, *args: Any) -> Any:
        running: Optional[_Running] = None
        if self.batch is not None:
            running = _RunningHere(self.batch, index)
        elif self.stop_event is not None:
            running = _RunningOnDask(self.stop_event)
        if running is None:
            return self.function(*args)
        if not running.start():
            return None
        _current.job = running
        try:
            return self.function(*args)
        finally:
            _current.job = None

    def __getstate__(self) -> Dict[str, Any]:
        return {**self.__dict__, "batch": None}


class _Running(abc.ABC):
    """A job that a batch runs: whether it may start, and how a stopping
    batch reaches it (see :func:`cancel_on_stop`)."""

    @abc.abstractmethod
    def start(self) -> bool:
        """False if the batch stopped before the job could start."""

    @abc.abstractmethod
    def cancellable(self, cancel: Callable[[], None]) -> ContextManager[None]:
        """While the block runs, a stop of the batch calls ``cancel()``."""


class _RunningHere(_Running):
    """A job of a batch that runs in this process."""

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def start(self) -> bool:
        return self._batch.start(self._index)

    @contextlib.contextmanager
    def cancellable(self, cancel: Callable[[], None]) -> Iterator[None]:
        if not self._batch.register(self._index, cancel):
            _cancel_quietly(cancel)
        try:
            yield
        finally:
            self._batch.unregister(self._index)


class _RunningOnDask(_Running):
    """A job of a batch that runs on a Dask worker, where a thread watches
    the batch's stop event while the job waits on the server."""

    #: Seconds between two looks at the event (each a long poll on the scheduler).
    WATCH_INTERVAL = 0.5

    def __init__(self, event_name: str) -> None:
        from distributed import Event, get_client

        self._event = Event(event_name, client=get_client())

    def start(self) -> bool:
        return not self._event.is_set()

    @contextlib.contextmanager
    def cancellable(self, cancel: Callable[[], None]) -> Iterator[None]:
        finished = threading.Event()

        def watch() -> None:
            try:
                while not finished.is_set():
                    if self._event.wait(timeout=self.WATCH_INTERVAL):
                        if not finished.is_set():
                            _cancel_quietly(cancel)
                        return
            except Exception as exc:  # the scheduler is gone: nothing left to stop the job
                logger.debug("stopped watching for the stop of the batch: %s", exc)

        threading.Thread(target=watch, name="replicate_qwen_sdk-stop-watch", daemon=True).start()
        try:
            yield
        finally:
            finished.set()


def _cancel_quietly(cancel: Callable[[], None]) -> None:
    try:
        cancel()
    except Exception as exc:  # the batch is stopping anyway; say why the run may go on
        logger.warning("could not cancel a running job of a stopped batch: %s", exc)


# -- where the jobs run -------------------------------------------------------------------------

_STOP = object()
_INTERRUPTED = object()


@contextlib.contextmanager
def _ctrl_c_between_results(done: "queue.SimpleQueue[Any]") -> Iterator[None]:
    """Make the first Ctrl-C stop the batch between two results.

    Python's own handler raises ``KeyboardInterrupt`` wherever the main
    thread is, which could be in the middle of handing a result over, and
    lose it. Here the first Ctrl-C only queues :data:`_INTERRUPTED` behind
    the results that came before it; a second one raises at once. Only in
    the main thread, and only while Python's handler is the one installed
    (as ``asyncio.run`` does).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    interrupted = False

    def on_ctrl_c(signum: int, frame: Any) -> None:
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        done.put(_INTERRUPTED)

    signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _next_finished(done: "queue.SimpleQueue[Any]") -> Any:
    """Wait for the next job to finish; raise ``KeyboardInterrupt`` at Ctrl-C."""
    item = done.get()
    if item is _INTERRUPTED:
        raise KeyboardInterrupt
    return item


def _run_on_threads(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    max_workers: int,
    batch: _Batch,
    done: "queue.SimpleQueue[Any]",
) -> None:
    """A thread pool whose threads all start before any job does.

    ``ThreadPoolExecutor`` starts a thread per submitted job while earlier
    jobs already run; each start then waits for the busy interpreter to
    schedule the new thread (up to a switch interval, 5 ms), so 200 workers
    took over a second just to start. Here the threads start while nothing
    runs yet, then all jobs go into one queue.
    """
    job = _Job(function, batch)
    jobs: "queue.SimpleQueue[Any]" = queue.SimpleQueue()

    def work() -> None:
        while True:
            item = jobs.get()
            if item is _STOP:
                return
            index, args = item
            try:
                done.put((index, job(index, *args), True))
            except BaseException as exc:  # reported in the calling thread
                done.put((index, exc, False))

    count = min(max_workers, len(arguments))
    threads = [threading.Thread(target=work, name=f"replicate_qwen_sdk-batch-{i}", daemon=True) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for item in enumerate(arguments):
            jobs.put(item)
        for _ in threads:
            jobs.put(_STOP)
        for _ in range(len(arguments)):
            batch.deliver(*_next_finished(done))
    except BaseException:
        deadline = time.monotonic() + STOP_GRACE
        cancelling = batch.stop()
        if _deliver_queued(done, batch):
            for thread in cancelling + threads:
                thread.join(max(0.0, deadline - time.monotonic()))
            _deliver_queued(done, batch)
        raise
    for thread in threads:
        thread.join()


def _deliver_queued(done: "queue.SimpleQueue[Any]", batch: _Batch) -> bool:
    """Deliver the finished jobs waiting in ``done``; False if delivery failed."""
    while True:
        try:
            item = done.get_nowait()
        except queue.Empty:
            return True
        if item is not _INTERRUPTED and not batch.deliver_finished(*item):
            return False


def _run_on_executor(
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    executor: concurrent.futures.Executor,
    batch: _Batch,
    done: "queue.SimpleQueue[Any]",
) -> None:
    """Any executor: a future per job, delivered (and let go) as each finishes."""
    stop_event = _dask_event(executor)
    job = _Job(function, batch, stop_event.name if stop_event is not None else None)
    futures: Dict[concurrent.futures.Future, int] = {}
    try:
        for index, args in enumerate(arguments):
            future = executor.submit(job, index, *args)
            futures[future] = index
            future.add_done_callback(done.put)
        for _ in range(len(arguments)):
            future = _next_finished(done)
            batch.deliver(futures.pop(future), *_outcome(future))
    except BaseException:
        _stop_on_executor(futures, batch, stop_event)
        raise


def _stop_on_executor(futures: Dict[concurrent.futures.Future, int], batch: _Batch, stop_event: Any) -> None:
    """Stop the jobs of an executor, and deliver those that finished."""
    deadline = time.monotonic() + STOP_GRACE
    for thread in batch.stop():
        thread.join(max(0.0, deadline - time.monotonic()))
    if stop_event is not None:
        # Dask: one event reaches every job, where cancelling the futures
        # one by one takes about 10 ms each. What finished is all there is:
        # a job still running is cut short.
        finished = [future for future in futures if future.done()]
        _set_quietly(stop_event)
    else:
        for future in futures:
            future.cancel()  # one not started never starts
        concurrent.futures.wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        finished = [future for future in futures if future.done()]
    for future in finished:
        if not future.cancelled() and not batch.deliver_finished(futures[future], *_outcome(future)):
            break


def _dask_event(executor: concurrent.futures.Executor) -> Any:
    """A new ``distributed.Event`` on the cluster of a Dask executor
    (``dask_client.get_executor()``); None for any other executor."""
    client = getattr(executor, "_client", None)
    if not type(executor).__module__.startswith("distributed.") or client is None:
        return None
    from distributed import Event

    return Event(f"replicate_qwen_sdk-stop-{uuid.uuid4().hex}", client=client)


def _set_quietly(event: Any) -> None:
    """Tell a Dask cluster's jobs that the batch stopped. The event stays
    set, so that a job still starting cancels itself too."""
    try:
        event.set()
    except Exception as exc:  # the cluster is gone, and its jobs with it
        logger.warning("could not tell the Dask cluster's jobs to stop: %s", exc)


def _outcome(future: concurrent.futures.Future) -> Tuple[Any, bool]:
    try:
        return future.result(), True
    except BaseException as exc:  # the job's own failure, handed on as its outcome
        return exc, False
