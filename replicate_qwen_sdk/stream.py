"""TextStream: the iterator of text chunks a caller holds, from any provider."""

from __future__ import annotations

import abc
import logging
import threading
import time
from typing import Callable, Iterator, List, NamedTuple, NoReturn, Optional, Tuple

from .errors import SDKError

__all__ = ["StreamMetrics", "StreamSource", "TextStream"]

logger = logging.getLogger("replicate_qwen_sdk")


class StreamSource(abc.ABC):
    """What a provider hands to :class:`TextStream` for one running call."""

    #: The server-side id of the run (prediction id, Gradio event id).
    id: Optional[str] = None
    #: The answer's final text when it differs from the chunks handed on
    #: (the server rewrote text already streamed), else ``None``.
    final_text: Optional[str] = None
    #: Standard parameters the server had no input for, dropped from the call.
    ignored_parameters: Tuple[str, ...] = ()

    @abc.abstractmethod
    def chunks(self, delivered: List[str]) -> Iterator[str]:
        """The text chunks, in order; cleans up in its ``finally``.

        ``delivered`` is the consumer's record: every chunk yielded has been
        appended to it by the time the generator resumes, so a source that
        must recover from a failure knows exactly what the caller already
        has.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Unblock a network read in progress; callable from any thread."""

    @abc.abstractmethod
    def cancel(self) -> None:
        """Ask the server to stop the run."""


class StreamMetrics(NamedTuple):
    """Timings and sizes of one stream, filled in as it is read.

    Times are in seconds, measured from the moment the call was made.
    """

    time_to_first_chunk: Optional[float] = None
    duration: Optional[float] = None
    chunks: int = 0
    characters: int = 0


class TextStream(Iterator[str]):
    """Text chunks of one model answer, as they arrive.

    Iterate it to get each new piece of text, exactly as sent (newlines and
    spaces included). Use it as a context manager, or call :meth:`close`, to
    release the connection if you stop early::

        with provider.stream(model, "Tell me a story") as stream:
            for chunk in stream:
                print(chunk, end="", flush=True)
        print(stream.id, len(stream.text))

    :ivar id: the server-side id of the run (Replicate prediction id, Gradio
        event id).
    """

    def __init__(self, source: StreamSource, *, started_at: Optional[float] = None) -> None:
        self._source = source
        self._parts: List[str] = []
        self._chunks = source.chunks(self._parts)
        self._text_cache = ""
        self._text_cache_parts = 0
        self._started_at = time.monotonic() if started_at is None else started_at
        self._finished = False
        self._completed = False  # the answer ended normally
        self._cancelled = False
        self._lock = threading.Lock()
        self._done_callbacks: List[Callable[["TextStream"], None]] = []
        self._first_chunk_at: Optional[float] = None
        self._finished_at: Optional[float] = None

    @property
    def id(self) -> Optional[str]:
        return self._source.id

    @property
    def text(self) -> str:
        """All text received so far; once finished, the whole answer (see
        :attr:`rewritten`)."""
        final = self._source.final_text
        if final is not None and self._finished:
            return final
        parts = self._parts
        if self._text_cache_parts != len(parts):
            self._text_cache_parts = len(parts)
            self._text_cache = "".join(parts)
        return self._text_cache

    @property
    def metrics(self) -> StreamMetrics:
        """Timings and sizes so far (a snapshot)."""
        started = self._started_at
        first = self._first_chunk_at
        end = self._finished_at
        return StreamMetrics(
            time_to_first_chunk=None if first is None else first - started,
            duration=None if end is None else end - started,
            chunks=len(self._parts),
            characters=len(self.text),
        )

    @property
    def rewritten(self) -> bool:
        """True if the server rewrote text it had already streamed in a way
        the SDK could not follow: the chunks stopped there, and :attr:`text`
        holds the server's final answer, not their concatenation."""
        return self._source.final_text is not None

    @property
    def ignored_parameters(self) -> Tuple[str, ...]:
        """Standard parameters (``max_tokens``, ``temperature``, ...) that the
        server has no input for and that were left out of the call."""
        return self._source.ignored_parameters

    @property
    def finished(self) -> bool:
        """True once the answer is complete, or the stream was closed."""
        return self._finished

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> str:
        if self._finished:
            raise StopIteration
        try:
            chunk = next(self._chunks)
        except BaseException as exc:
            self._end_with(exc)
        if self._first_chunk_at is None:
            self._first_chunk_at = time.monotonic()
        self._parts.append(chunk)
        return chunk

    def read(self) -> str:
        """Consume the rest of the stream and return the whole text."""
        if self._finished:
            return self.text
        parts = self._parts
        try:
            if self._first_chunk_at is None:
                parts.append(next(self._chunks))
                self._first_chunk_at = time.monotonic()
            parts.extend(self._chunks)  # the rest, without a Python-level call per chunk
        except BaseException as exc:
            try:
                self._end_with(exc)
            except StopIteration:
                pass
        self._finish()
        return self.text

    def _end_with(self, exc: BaseException) -> "NoReturn":
        """Finish the stream and raise what ends the iteration."""
        if isinstance(exc, StopIteration):
            self._completed = not self._cancelled
            self._finish()
            raise StopIteration from None
        self._finish()
        if self._cancelled and isinstance(exc, SDKError):
            # The read broke because cancel() pulled the connection.
            raise StopIteration from None
        raise exc

    def cancel(self) -> None:
        """Ask the server to stop generating, then end the iteration.

        Safe to call from any thread, and more than once. Text received
        before the call stays in :attr:`text`. After a failure or an
        interruption (Ctrl-C) it still asks the server to stop, since the run
        may go on there; after a complete answer it does nothing.
        """
        with self._lock:
            if self._completed or self._cancelled:
                return
            self._cancelled = True
        try:
            self._source.cancel()
        finally:
            self._source.interrupt()
            self._close_chunks()

    def close(self) -> None:
        """Release the connection. The run keeps going on the server; use
        :meth:`cancel` to stop it."""
        if not self._finished:
            self._source.interrupt()
            self._close_chunks()

    def _close_chunks(self) -> None:
        if self._finished:
            return
        try:
            self._chunks.close()  # type: ignore[attr-defined]
        except ValueError:
            # The generator is running in another thread; the interrupt
            # makes that thread's read fail, and it finishes the stream.
            return
        self._finish()

    def add_done_callback(self, callback: Callable[["TextStream"], None]) -> None:
        """Call ``callback(stream)`` once the stream is complete, failed or
        closed (at once if it already is)."""
        if self._finished:
            _run_callback(callback, self)
        else:
            self._done_callbacks.append(callback)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._finished_at = time.monotonic()
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback in callbacks:
            _run_callback(callback, self)

    def __enter__(self) -> "TextStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "finished" if self._finished else "open"
        return f"<TextStream id={self.id!r} {state} chunks={len(self._parts)}>"


def _run_callback(callback: Callable[[TextStream], None], stream: TextStream) -> None:
    try:
        callback(stream)
    except Exception:  # a callback's failure must not break the stream
        logger.exception("A done callback of stream %s failed", stream.id)
