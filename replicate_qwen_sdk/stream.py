"""TextStream: the iterator of text chunks a caller holds, from any provider."""

from __future__ import annotations

import abc
import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator, List, NamedTuple, NoReturn, Optional, Tuple

from .errors import APIConnectionError, APITimeoutError, SDKError

__all__ = ["CANCEL_WAIT", "RunUsage", "StreamMetrics", "StreamSource", "TextStream", "cancel_on_interrupt"]

logger = logging.getLogger("replicate_qwen_sdk")

#: Longest time, in seconds, that an interruption (Ctrl-C) or leaving a
#: ``with`` block waits for the server to accept the cancel of the run.
CANCEL_WAIT = 2.0


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

    def usage(self) -> Optional["RunUsage"]:
        """What the server reported the finished run used, or ``None`` when
        it reports nothing (the default). Called only once the chunks have
        ended; may make one request."""
        return None


class StreamMetrics(NamedTuple):
    """Timings and sizes of one stream, filled in as it is read.

    Times are in seconds, measured from the moment the call was made.
    ``print(metrics)`` (and a notebook cell) shows them rounded, in words
    (``first chunk after 312 ms, 2.41 s in all, 57 chunks, 240 characters``);
    the ``repr`` rounds them to the millisecond.
    """

    time_to_first_chunk: Optional[float] = None
    duration: Optional[float] = None
    chunks: int = 0
    characters: int = 0

    def __str__(self) -> str:
        first = self.time_to_first_chunk
        duration = self.duration
        return ", ".join(
            (
                "no chunk yet" if first is None else f"first chunk after {format_seconds(first)}",
                "still running" if duration is None else f"{format_seconds(duration)} in all",
                f"{self.chunks} chunk{'' if self.chunks == 1 else 's'}",
                f"{self.characters} character{'' if self.characters == 1 else 's'}",
            )
        )

    def __repr__(self) -> str:
        first, duration = self.time_to_first_chunk, self.duration
        return (
            f"StreamMetrics(time_to_first_chunk={None if first is None else round(first, 3)!r}, "
            f"duration={None if duration is None else round(duration, 3)!r}, "
            f"chunks={self.chunks}, characters={self.characters})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What IPython and Jupyter show for metrics on a cell's last line: the words."""
        printer.text(str(self))


def format_seconds(seconds: float) -> str:
    """A duration for people: ``312 ms``, ``2.41 s``, ``3 min 05 s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class RunUsage(NamedTuple):
    """What a finished run used, as the server reported it (Replicate's
    ``metrics``); a figure the server did not report is ``None``."""

    #: Tokens of the prompt (Replicate's ``input_token_count``).
    input_tokens: Optional[int] = None
    #: Tokens generated (``output_token_count``).
    output_tokens: Optional[int] = None
    #: Seconds the model ran (``predict_time``).
    predict_time: Optional[float] = None


class TextStream(Iterator[str]):
    """Text chunks of one model answer, as they arrive.

    Iterate it to get each new piece of text, exactly as sent (newlines and
    spaces included). Use it as a context manager: leaving the ``with`` block
    before the answer is complete (``break``, an exception, Ctrl-C, a timeout)
    cancels the run on the server::

        with provider.stream(model, "Tell me a story") as stream:
            for chunk in stream:
                print(chunk, end="", flush=True)
        print(stream.id, len(stream.text))

    A ``KeyboardInterrupt`` that arrives while the stream waits for a chunk
    cancels the run too, ``with`` block or not. Either way the cancel gets at
    most :data:`CANCEL_WAIT` seconds; if it fails, that is logged and the
    original exception goes on. :meth:`close` instead only releases the
    connection, and the run goes on on the server.

    :ivar id: the server-side id of the run (Replicate prediction id, Gradio
        event id).
    """

    def __init__(self, source: StreamSource, *, started_at: Optional[float] = None) -> None:
        self._source = source
        self._parts: List[str] = []
        self._chunks = source.chunks(self._parts)
        # (number of parts, their text): replaced as a whole, so that a
        # thread reading .text while another iterates never pairs a count
        # with the text of fewer parts.
        self._text_cache: Tuple[int, str] = (0, "")
        self._started_at = time.monotonic() if started_at is None else started_at
        self._finished = False
        self._completed = False  # the answer ended normally
        self._cancelled = False
        self._closed = False  # close() was called: the run is left running
        self._lost_contact = False  # ended by a timeout or a broken connection
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
        count, text = self._text_cache
        size = len(parts)  # another thread may be appending: take a fixed count
        if size != count:
            text += "".join(parts[count:size])
            self._text_cache = (size, text)
        return text

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

    def usage(self) -> Optional[RunUsage]:
        """Token counts and run time the server reported for the finished
        run, or ``None``: while the stream is still open, and for servers
        that report none (Gradio apps). Figures are never estimated.

        On Replicate this reads the prediction's ``metrics`` once it is
        terminal: one ``GET`` at most, made on the first call (none when the
        SDK already holds the finished prediction), the answer kept for later
        calls.

        :raises SDKError: when that request fails.
        """
        if not self._finished:
            return None
        return self._source.usage()

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
        else:
            self._completed = not self._cancelled
        self._finish()
        return self.text

    def _end_with(self, exc: BaseException) -> "NoReturn":
        """Finish the stream and raise what ends the iteration."""
        if isinstance(exc, StopIteration):
            self._completed = not self._cancelled
            self._finish()
            raise StopIteration from None
        # The server's error answer ends a run; a timeout or a broken
        # connection leaves it going on there.
        self._lost_contact = isinstance(exc, (APITimeoutError, APIConnectionError))
        if isinstance(exc, KeyboardInterrupt):
            # Ctrl-C (or a notebook's "interrupt kernel") during a read: the
            # run would go on, and bill, on the server.
            self._cancel_quietly()
        self._finish()
        if self._cancelled and isinstance(exc, SDKError):
            # The read broke because cancel() pulled the connection.
            raise StopIteration from None
        raise exc

    def cancel(self) -> None:
        """Ask the server to stop generating, then end the iteration.

        Safe to call from any thread, and more than once. Text received
        before the call stays in :attr:`text`. After a failure it still asks
        the server to stop, since the run may go on there; after a complete
        answer, or once the run was cancelled, it does nothing. A failure of
        the request is raised (a typed :class:`~replicate_qwen_sdk.SDKError`).
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

    def _cancel_quietly(self) -> None:
        """Cancel the run on the way out of an interruption or a ``with``
        block, unless it is over: wait at most :data:`CANCEL_WAIT` seconds
        for the server, and log a failure rather than raise it over the
        exception under way."""
        with self._lock:
            if self._cancelled or (self._finished and not self._lost_contact):
                return  # cancelled, complete, closed, or ended by the server's error
            self._cancelled = True
        try:
            _cancel_within(self._source, CANCEL_WAIT)
        finally:
            self._source.interrupt()
            self._close_chunks()

    def close(self) -> None:
        """Release the connection. The run keeps going (and, on Replicate,
        billing) on the server; use :meth:`cancel` to stop it."""
        self._closed = True
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
        """Leaving the block before the answer is complete cancels the run,
        unless :meth:`close` was called in it or the server answered with an
        error (a timeout or a broken connection leaves the run going: it is
        cancelled)."""
        if not self._closed:
            self._cancel_quietly()

    def _state(self) -> str:
        """One word for where the stream is: ``streaming``, ``complete``,
        ``cancelled``, ``closed`` (the run left going) or ``failed``."""
        if not self._finished:
            return "streaming"
        if self._completed:
            return "complete"
        if self._cancelled:
            return "cancelled"
        return "closed" if self._closed else "failed"

    def __repr__(self) -> str:
        return describe_stream(type(self).__name__, self.id, self._state(), self.metrics, self.text)


#: Characters of the answer a stream's ``repr`` shows.
REPR_TEXT = 32


def describe_stream(kind: str, run_id: Optional[str], state: str, metrics: StreamMetrics, text: str) -> str:
    """A stream's ``repr``: short, with the run id, the state, the metrics
    and the first characters of the answer (never all of it)::

        <TextStream id='x1y2' complete: first chunk after 312 ms, 2.41 s in all,
         57 chunks, 240 characters; text 'Once upon a time, a small SDK st'…>
    """
    preview = ""
    if text:
        preview = f"; text {text[:REPR_TEXT]!r}{'…' if len(text) > REPR_TEXT else ''}"
    return f"<{kind} id={run_id!r} {state}: {metrics}{preview}>"


@contextlib.contextmanager
def cancel_on_interrupt(source: StreamSource) -> Iterator[None]:
    """For providers, around the start of a run (before a :class:`TextStream`
    exists): a ``KeyboardInterrupt`` once the run has its id on the server
    cancels it there, as :class:`TextStream` does later, then goes on::

        with cancel_on_interrupt(run):
            run.start()
    """
    try:
        yield
    except KeyboardInterrupt:
        if source.id is not None:
            _cancel_within(source, CANCEL_WAIT)
        raise


def _cancel_within(source: StreamSource, seconds: float) -> None:
    """Ask the server to stop ``source``'s run, waiting at most ``seconds``.

    The request runs in a daemon thread, so that a server that does not
    answer cannot hold the caller, and a second Ctrl-C ends the wait; the
    request may still go through after it. Failures are logged, never raised.
    """
    sent = threading.Event()

    def send() -> None:
        try:
            source.cancel()
        except BaseException as exc:  # nobody to raise it to: logged
            logger.warning("could not cancel run %s on the server: %s", source.id, exc)
        finally:
            sent.set()

    threading.Thread(target=send, name="replicate_qwen_sdk-cancel", daemon=True).start()
    if not sent.wait(seconds):
        logger.warning(
            "the server did not confirm the cancel of run %s within %g s; it may still be running there",
            source.id,
            seconds,
        )


def _run_callback(callback: Callable[[TextStream], None], stream: TextStream) -> None:
    try:
        callback(stream)
    except Exception:  # a callback's failure must not break the stream
        logger.exception("A done callback of stream %s failed", stream.id)
