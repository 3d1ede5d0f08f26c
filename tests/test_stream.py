"""TextStream on its own, fed by a scripted source."""

import threading
import time

import pytest

from replicate_qwen_sdk import APIConnectionError, APITimeoutError, TextStream
from replicate_qwen_sdk import stream as stream_module
from replicate_qwen_sdk.stream import StreamSource, cancel_on_interrupt
from replicate_qwen_sdk.errors import PredictionError


class ScriptedSource(StreamSource):
    """A StreamSource that yields given chunks, then raises ``error`` if set."""

    def __init__(self, chunks, error=None, gate=None, cancel_error=None, cancel_gate=None):
        self.id = "run-1"
        self._chunks = chunks
        self._error = error
        self._gate = gate
        self._cancel_error = cancel_error
        self._cancel_gate = cancel_gate  # cancel() waits for it, as a server that does not answer
        self.canceled = 0
        self.cancel_answered = threading.Event()
        self.interrupted = 0
        self.closed = False
        self.delivered_at_error = None

    def chunks(self, delivered):
        try:
            for chunk in self._chunks:
                if self._gate is not None:
                    if not self._gate.wait(5):
                        raise APIConnectionError("gate never opened")
                    if self.interrupted:
                        raise APIConnectionError("the connection was pulled")
                yield chunk
            if self._error is not None:
                self.delivered_at_error = list(delivered)
                raise self._error
        finally:
            self.closed = True

    def interrupt(self):
        self.interrupted += 1
        if self._gate is not None:
            self._gate.set()

    def cancel(self):
        self.canceled += 1
        if self._cancel_gate is not None:
            self._cancel_gate.wait(10)
        self.cancel_answered.set()
        if self._cancel_error is not None:
            raise self._cancel_error


def test_iteration_yields_chunks_and_accumulates_text():
    stream = TextStream(ScriptedSource(["a", "\n", "b c"]))
    assert list(stream) == ["a", "\n", "b c"]
    assert stream.text == "a\nb c" and stream.finished and stream.id == "run-1"
    assert list(stream) == []  # a finished stream stays finished


def test_read_returns_the_whole_text_and_the_source_sees_what_was_delivered():
    source = ScriptedSource(["x", "y", "z"], error=PredictionError("boom"))
    stream = TextStream(source)
    assert next(stream) == "x"
    with pytest.raises(PredictionError):
        stream.read()
    assert stream.text == "xyz"
    assert source.delivered_at_error == ["x", "y", "z"]
    assert stream.finished and source.closed


def test_read_of_an_empty_stream_is_empty():
    stream = TextStream(ScriptedSource([]))
    assert stream.read() == "" and stream.metrics.chunks == 0 and stream.metrics.time_to_first_chunk is None


def test_error_after_chunks_keeps_the_chunks():
    stream = TextStream(ScriptedSource(["one", "two"], error=PredictionError("failed late")))
    received = []
    with pytest.raises(PredictionError):
        for chunk in stream:
            received.append(chunk)
    assert received == ["one", "two"] and stream.text == "onetwo"


def test_leaving_the_with_block_early_cancels_the_run_and_closes_the_source():
    source = ScriptedSource(["a", "b", "c"])
    with TextStream(source) as stream:
        assert next(stream) == "a"
    assert source.canceled == 1 and source.closed and stream.finished
    assert list(stream) == [] and stream.text == "a"


def test_an_exception_in_the_with_block_cancels_the_run_and_goes_on():
    source = ScriptedSource(["a", "b"])
    with pytest.raises(LookupError):
        with TextStream(source) as stream:
            next(stream)
            raise LookupError("the caller's own error")
    assert source.canceled == 1 and source.closed


def test_close_in_the_with_block_leaves_the_run_going():
    source = ScriptedSource(["a", "b", "c"])
    with TextStream(source) as stream:
        next(stream)
        stream.close()
    assert source.canceled == 0 and source.closed and stream.finished


def test_a_complete_answer_or_an_error_answer_is_not_cancelled_on_leaving_the_block():
    complete = ScriptedSource(["a", "b"])
    with TextStream(complete) as stream:
        assert stream.read() == "ab"
    failed = ScriptedSource(["a"], error=PredictionError("the model failed"))
    with pytest.raises(PredictionError):
        with TextStream(failed) as stream:
            stream.read()
    assert complete.canceled == 0 and failed.canceled == 0


@pytest.mark.parametrize("error", [APIConnectionError("the connection broke"), APITimeoutError("silence")])
def test_a_timeout_or_a_broken_connection_leaves_the_with_block_with_a_cancel(error):
    # The run may go on on the server: nobody heard how it ended.
    source = ScriptedSource(["a"], error=error)
    with pytest.raises(type(error)):
        with TextStream(source) as stream:
            list(stream)
    assert source.canceled == 1


@pytest.mark.parametrize("consume", [next, TextStream.read, list], ids=["next", "read", "list"])
def test_a_keyboard_interrupt_during_a_read_cancels_the_run_before_it_propagates(consume):
    source = ScriptedSource(["a"], error=KeyboardInterrupt())
    stream = TextStream(source)
    assert next(stream) == "a"
    with pytest.raises(KeyboardInterrupt):
        try:
            consume(stream)
        finally:
            canceled_before_propagating = source.canceled
    assert canceled_before_propagating == 1
    assert stream.finished and stream.text == "a" and source.closed
    stream.cancel()  # already done: not sent twice
    assert source.canceled == 1


def test_a_failed_cancel_is_logged_and_the_interrupt_still_propagates(sdk_log):
    source = ScriptedSource(["a"], error=KeyboardInterrupt(), cancel_error=APIConnectionError("no route to host"))
    stream = TextStream(source)
    with pytest.raises(KeyboardInterrupt):
        stream.read()
    assert source.canceled == 1
    (warning,) = [r for r in sdk_log.records if r.levelname == "WARNING"]
    assert "could not cancel run run-1" in warning.getMessage() and "no route to host" in warning.getMessage()


def test_a_cancel_the_server_does_not_answer_holds_the_interrupt_only_briefly(sdk_log, monkeypatch):
    monkeypatch.setattr(stream_module, "CANCEL_WAIT", 0.2)
    never = threading.Event()
    source = ScriptedSource(["a"], error=KeyboardInterrupt(), cancel_gate=never)
    stream = TextStream(source)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        stream.read()
    waited = time.monotonic() - started
    never.set()  # let the cancel thread end
    assert source.cancel_answered.wait(5)
    assert 0.2 <= waited < 2.0
    assert "did not confirm the cancel of run run-1 within 0.2 s" in sdk_log.text


def test_cancel_asks_the_source_once_and_ends_iteration():
    source = ScriptedSource(["a", "b", "c"])
    stream = TextStream(source)
    next(stream)
    stream.cancel()
    stream.cancel()
    assert source.canceled == 1 and source.closed
    assert list(stream) == [] and stream.text == "a"


def test_cancel_from_another_thread_ends_a_blocked_iteration_quietly():
    gate = threading.Event()
    source = ScriptedSource(["never"], gate=gate)
    stream = TextStream(source)
    result = {}
    reader = threading.Thread(target=lambda: result.setdefault("chunks", list(stream)))
    reader.start()
    stream.cancel()
    reader.join(5)
    assert not reader.is_alive()
    assert result == {"chunks": []} and source.canceled == 1 and source.interrupted >= 1


def test_done_callbacks_run_once_when_the_stream_ends():
    calls = []
    stream = TextStream(ScriptedSource(["a"]))
    stream.add_done_callback(calls.append)
    stream.read()
    stream.close()
    assert calls == [stream]
    late = []
    stream.add_done_callback(late.append)
    assert late == [stream]


def test_a_failing_done_callback_does_not_break_the_stream(caplog):
    stream = TextStream(ScriptedSource(["a"]))
    stream.add_done_callback(lambda s: 1 / 0)
    assert stream.read() == "a"
    assert "done callback" in caplog.text


def test_metrics_count_chunks_and_characters():
    stream = TextStream(ScriptedSource(["ab", "cde", "é"]))
    stream.read()
    metrics = stream.metrics
    assert (metrics.chunks, metrics.characters) == (3, 6)
    assert metrics.time_to_first_chunk is not None and metrics.duration >= metrics.time_to_first_chunk
    assert "run-1" in repr(stream)


def test_an_interrupt_while_a_run_starts_cancels_it_once_it_has_an_id():
    started = ScriptedSource(["a"])
    with pytest.raises(KeyboardInterrupt):
        with cancel_on_interrupt(started):
            raise KeyboardInterrupt  # e.g. while the stream is being opened
    not_created = ScriptedSource(["a"])
    not_created.id = None  # interrupted before the server gave an id
    with pytest.raises(KeyboardInterrupt):
        with cancel_on_interrupt(not_created):
            raise KeyboardInterrupt
    with pytest.raises(APIConnectionError):
        with cancel_on_interrupt(started):
            raise APIConnectionError("an ordinary failure")
    assert (started.canceled, not_created.canceled) == (1, 0)
