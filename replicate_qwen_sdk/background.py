"""BackgroundStream: a stream read by a daemon thread, for callers who must not block."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable, Optional

from .errors import APITimeoutError
from .stream import CANCEL_WAIT, StreamMetrics, TextStream, describe_stream

__all__ = ["DEFAULT_BUFFER_CHUNKS", "BackgroundStream"]

#: Chunks buffered ahead of a consumer that is slower than the network.
DEFAULT_BUFFER_CHUNKS = 1024

_END = object()  # put by the reader after the last chunk
_POLL = 0.1  # how often a blocked reader looks whether it should stop


class _Pipe:
    """What the reader thread and the consumer share. The thread holds only
    this, never the BackgroundStream, so an abandoned stream can be
    collected, which tells the thread to stop."""

    def __init__(self, buffer: int) -> None:
        self.chunks: "queue.Queue[object]" = queue.Queue(maxsize=buffer)
        self.stop = threading.Event()
        self.done = threading.Event()
        self.stream: Optional[TextStream] = None
        self.error: Optional[BaseException] = None
        self.cancel_requested = False
        self.lock = threading.Lock()

    def put(self, item: object) -> bool:
        """Hand ``item`` to the consumer; False if the consumer has gone."""
        while not self.stop.is_set():
            try:
                self.chunks.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False


def _read(pipe: _Pipe, start: Callable[[], TextStream]) -> None:
    try:
        stream = start()
        with pipe.lock:
            pipe.stream = stream
            cancel = pipe.cancel_requested
        if cancel:
            stream._cancel_quietly()  # requested while the call was being made
        for chunk in stream:
            if not pipe.put(chunk):
                stream.close()
                break
    except BaseException as exc:  # handed to the consumer, never lost
        pipe.error = exc
    finally:
        pipe.put(_END)
        pipe.done.set()


class BackgroundStream:
    """A :class:`TextStream` whose network reading runs in a daemon thread.

    Returned at once by ``Client.stream(..., background=True)``; the call
    itself (creating the prediction, joining the queue) runs in the thread
    too, so its errors come out of iteration or :meth:`result`. Chunks wait
    in a bounded buffer; when it is full the reader waits for the consumer.

    * iterate it for chunks as they arrive;
    * :meth:`result` waits for the whole text;
    * :attr:`text` and :attr:`metrics` show what the thread has received so
      far, buffered chunks included;
    * :meth:`cancel` (from any thread) stops the run on the server, and so
      do a ``KeyboardInterrupt`` (Ctrl-C, "interrupt kernel") while you
      iterate or wait in :meth:`result`, and leaving a ``with`` block before
      the answer is complete; :meth:`close` only stops the reading;
    * an error in the reader is raised in the consumer, after the chunks that
      came before it;
    * the thread ends with the stream: when it completes, fails, is
      cancelled or closed, or when this object is garbage-collected.
    """

    def __init__(self, start: Callable[[], TextStream], *, buffer: int = DEFAULT_BUFFER_CHUNKS) -> None:
        self._pipe = _Pipe(buffer)
        self._finished = False
        self._closed = False
        self._thread = threading.Thread(
            target=_read, args=(self._pipe, start), name="replicate_qwen_sdk-stream", daemon=True
        )
        self._thread.start()

    # -- reading -----------------------------------------------------------------

    def __iter__(self) -> "BackgroundStream":
        return self

    def __next__(self) -> str:
        return self._next(None)

    def _next(self, timeout: Optional[float]) -> str:
        if self._finished:
            raise StopIteration
        try:
            return self._take(timeout)
        except KeyboardInterrupt:
            self._cancel_quietly()
            raise

    def _take(self, timeout: Optional[float]) -> str:
        pipe = self._pipe
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _POLL if deadline is None else min(_POLL, max(0.0, deadline - time.monotonic()))
            try:
                item = pipe.chunks.get(timeout=wait)
                break
            except queue.Empty:
                if pipe.stop.is_set() and pipe.done.is_set() and pipe.chunks.empty():
                    item = _END  # stopped (cancel, close): the reader could not hand over its end
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    raise APITimeoutError(f"No chunk within {timeout:g} s; the stream is still running.") from None
        if item is _END:
            self._finished = True
            self._thread.join()
            error = pipe.error
            if error is not None and not pipe.cancel_requested and not pipe.stop.is_set():
                raise error
            raise StopIteration
        return item  # type: ignore[return-value]

    def result(self, timeout: Optional[float] = None) -> str:
        """Wait for the whole answer and return it.

        :raises APITimeoutError: (a ``TimeoutError``) when ``timeout``
            seconds pass first; the stream keeps running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                self._next(left)
            except StopIteration:
                break
        return self.text

    def read(self) -> str:
        """The same as :meth:`result` without a time limit."""
        return self.result()

    # -- state -------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """Everything the reader thread has received so far, chunks still in
        the buffer included: it grows while the answer streams in."""
        stream = self._pipe.stream
        return stream.text if stream is not None else ""

    @property
    def id(self) -> Optional[str]:
        stream = self._pipe.stream
        return stream.id if stream is not None else None

    @property
    def metrics(self) -> StreamMetrics:
        """Timings and sizes of what the reader thread has received so far."""
        stream = self._pipe.stream
        return stream.metrics if stream is not None else StreamMetrics()

    @property
    def finished(self) -> bool:
        """True once the reader is done (the buffer may still hold chunks)."""
        return self._pipe.done.is_set()

    # -- stopping -----------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the run on the server and end the stream; from any thread."""
        pipe = self._pipe
        with pipe.lock:
            pipe.cancel_requested = True
            stream = pipe.stream
        if stream is not None:
            stream.cancel()
        self._drain()

    def close(self) -> None:
        """Stop reading and release the connection; the run goes on (and, on
        Replicate, bills) on the server."""
        self._closed = True
        pipe = self._pipe
        pipe.stop.set()
        stream = pipe.stream
        if stream is not None:
            stream.close()
        self._drain()

    def _drain(self) -> None:
        self._pipe.stop.set()
        self._thread.join(timeout=5)

    def _cancel_quietly(self) -> None:
        """Cancel on the way out of an interruption or a ``with`` block:
        about :data:`~replicate_qwen_sdk.stream.CANCEL_WAIT` seconds at
        most, a failure logged and never raised. A call still being made is
        cancelled by the reader thread as soon as it returns."""
        started = time.monotonic()
        pipe = self._pipe
        with pipe.lock:
            pipe.cancel_requested = True
            stream = pipe.stream
        if stream is not None:
            stream._cancel_quietly()
        pipe.stop.set()
        self._thread.join(timeout=max(0.0, CANCEL_WAIT - (time.monotonic() - started)))

    def __enter__(self) -> "BackgroundStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Leaving the block before the answer is complete cancels the run,
        unless :meth:`close` was called in it."""
        if not self._finished and not self._closed:
            self._cancel_quietly()

    def __del__(self) -> None:
        pipe = getattr(self, "_pipe", None)
        if pipe is not None:
            pipe.stop.set()
            stream = pipe.stream
            if stream is not None and not pipe.done.is_set():
                stream.close()

    def __repr__(self) -> str:
        pipe = self._pipe
        stream = pipe.stream
        if stream is not None:
            state = stream._state()
        else:
            state = "failed" if pipe.error is not None else "starting"
        return describe_stream(type(self).__name__, self.id, state, self.metrics, self.text)
