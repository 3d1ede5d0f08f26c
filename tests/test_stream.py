"""TextStream on its own, fed by a scripted source."""

import threading

import pytest

from replicate_qwen_sdk import APIConnectionError, TextStream
from replicate_qwen_sdk.stream import StreamSource
from replicate_qwen_sdk.errors import PredictionError


class ScriptedSource(StreamSource):
    """A StreamSource that yields given chunks, then raises ``error`` if set."""

    def __init__(self, chunks, error=None, gate=None):
        self.id = "run-1"
        self._chunks = chunks
        self._error = error
        self._gate = gate
        self.canceled = 0
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


def test_context_manager_closes_the_source_when_left_early():
    source = ScriptedSource(["a", "b", "c"])
    with TextStream(source) as stream:
        assert next(stream) == "a"
    assert source.closed and stream.finished and source.canceled == 0
    assert list(stream) == []


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
