"""What a notebook user sees: batch progress bars, readable metrics, short reprs."""

import io
import re
import sys

import pytest

from replicate_qwen_sdk import Client, InvalidArgumentError, PredictionError, StreamMetrics
from replicate_qwen_sdk.testing import Script


@pytest.fixture
def client(provider):
    return Client(providers=[provider])


# -- progress ---------------------------------------------------------------------------------


def test_batch_progress_draws_a_tqdm_bar_counting_jobs_and_failures(client, emulator):
    pytest.importorskip("tqdm")
    emulator.add_model("acme/broken", Script(["x"], error_after=0, error_detail="GPU fell over"))
    jobs = [{"model": "meta/meta-llama-3-8b-instruct", "prompt": f"q{i}"} for i in range(5)]
    jobs.append({"model": "acme/broken", "prompt": "q5"})
    seen = []
    output = io.StringIO()
    results = client.batch(
        jobs,
        max_workers=3,
        progress={"file": output, "desc": "questions", "ncols": 100},
        on_result=lambda index, result: seen.append(index),
    )
    assert sorted(seen) == list(range(6))  # on_result still gets every result
    assert results[:5] == [f"You said: q{i}" for i in range(5)]
    final = output.getvalue().split("\r")[-1]
    assert final.startswith("questions: 100%")
    assert "6/6" in final and "1 failed" in final


def test_batch_progress_true_writes_the_default_bar_to_stderr(client, monkeypatch):
    pytest.importorskip("tqdm")
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    client.batch([{"model": "meta/meta-llama-3-8b-instruct", "prompt": "hi"}] * 2, progress=True)
    final = stderr.getvalue().split("\r")[-1]
    assert final.startswith("batch: 100%") and "2/2" in final and "job" in final


def test_batch_without_progress_draws_nothing(client, monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    client.batch([{"model": "meta/meta-llama-3-8b-instruct", "prompt": "hi"}])
    assert stderr.getvalue() == ""


def test_batch_progress_without_tqdm_is_refused_before_any_job_starts(client, emulator, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails, as if not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(InvalidArgumentError, match=r"tqdm.*pip install tqdm"):
        client.batch([{"model": "meta/meta-llama-3-8b-instruct", "prompt": "hi"}], progress=True)
    assert emulator.count("create") == 0


def test_batch_progress_of_the_wrong_type_is_refused(client):
    with pytest.raises(InvalidArgumentError, match="progress must be"):
        client.batch([], progress="yes")


def test_an_interrupted_batch_closes_its_bar(client, emulator):
    pytest.importorskip("tqdm")
    output = io.StringIO()

    def stop(index, result):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.batch(
            [{"model": "meta/meta-llama-3-8b-instruct", "prompt": f"q{i}"} for i in range(4)],
            max_workers=1,
            progress={"file": output},
            on_result=stop,
        )
    assert output.getvalue().endswith("\n")  # tqdm ends its line when the bar closes
    assert "1/4" in output.getvalue().split("\r")[-1]


# -- metrics and repr ------------------------------------------------------------------------


def test_metrics_print_in_words_rounded_to_the_millisecond():
    metrics = StreamMetrics(time_to_first_chunk=0.31249, duration=2.4137, chunks=57, characters=240)
    assert str(metrics) == "first chunk after 312 ms, 2.41 s in all, 57 chunks, 240 characters"
    assert repr(metrics) == "StreamMetrics(time_to_first_chunk=0.312, duration=2.414, chunks=57, characters=240)"
    assert str(StreamMetrics()) == "no chunk yet, still running, 0 chunks, 0 characters"
    assert str(StreamMetrics(0.0004, 125.6, 1, 1)) == "first chunk after 0 ms, 2 min 06 s in all, 1 chunk, 1 character"
    assert metrics == (0.31249, 2.4137, 57, 240)  # the figures themselves are not rounded


def test_notebooks_show_metrics_in_words():
    """IPython (Jupyter's kernel) shows a value through its ``_repr_pretty_``."""
    metrics = StreamMetrics(time_to_first_chunk=0.05, duration=1.0, chunks=3, characters=12)
    try:
        from IPython.lib.pretty import pretty
    except ImportError:

        class Printer:
            def __init__(self):
                self.parts = []

            def text(self, text):
                self.parts.append(text)

        printer = Printer()
        metrics._repr_pretty_(printer, False)
        shown = "".join(printer.parts)
    else:
        shown = pretty(metrics)
    assert shown == "first chunk after 50 ms, 1.00 s in all, 3 chunks, 12 characters"


def test_a_stream_repr_says_its_state_figures_and_the_start_of_the_text(provider, emulator):
    story = "Once upon a time, a small SDK streamed its first tokens, and then many more."
    emulator.add_model("acme/story", Script([story[:20], story[20:]], delay=0.05))
    stream = provider.stream("acme/story", "go")
    assert re.fullmatch(
        r"<TextStream id='\w+' streaming: no chunk yet, still running, 0 chunks, 0 characters>", repr(stream)
    )
    next(stream)
    assert repr(stream).endswith("still running, 1 chunk, 20 characters; text 'Once upon a time, a '>")
    stream.read()
    shown = repr(stream)
    assert shown.startswith(f"<TextStream id={stream.id!r} complete: first chunk after ")
    assert f"2 chunks, {len(story)} characters; text 'Once upon a time, a small SDK st'…>" in shown
    assert story not in shown and len(shown) < 200


@pytest.mark.parametrize("end, state", [("cancel", "cancelled"), ("close", "closed")])
def test_a_stream_repr_says_how_it_ended(provider, emulator, end, state):
    emulator.add_model("acme/long", Script(["a"] * 50, delay=0.05))
    stream = provider.stream("acme/long", "go")
    next(stream)
    getattr(stream, end)()
    assert f" {state}: " in repr(stream)


def test_a_failed_stream_says_so(provider, emulator):
    emulator.add_model("acme/broken", Script(["part"], error_after=1, error_detail="boom"))
    stream = provider.stream("acme/broken", "go")
    with pytest.raises(PredictionError):
        stream.read()
    assert " failed: " in repr(stream) and "text 'part'" in repr(stream)


def test_a_background_stream_repr_follows_its_reader(client, emulator):
    emulator.add_model("acme/paused", Script(["Once", " upon"], silence_after=1, silence=30))
    stream = client.stream("acme/paused", "go", background=True)
    assert next(stream) == "Once"
    assert re.match(
        r"<BackgroundStream id='\w+' streaming: first chunk after \d+ ms, still running, 1 chunk", repr(stream)
    )
    stream.cancel()
    assert " cancelled: " in repr(stream)
