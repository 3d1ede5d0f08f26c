"""``replicate-qwen chat``'s flags, --json, help texts, and what a failed stream leaves in the terminal."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from replicate_qwen_sdk.cli import build_parser, error_message
from replicate_qwen_sdk.errors import APIConnectionError, PredictionError
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)


@pytest.fixture
def env(emulator):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("QWEN_SPACE_URL", "HF_TOKEN") and not name.upper().endswith("_PROXY")
    }
    environment.update(REPLICATE_API_TOKEN=SECRET, REPLICATE_BASE_URL=emulator.base_url, PYTHONUNBUFFERED="1")
    return environment


def run(env, *args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "replicate_qwen_sdk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        **kwargs,
    )


def created_input(emulator):
    (create,) = [request for request in emulator.requests if request.route == "create"]
    return create.body["input"]


# -- parameters ------------------------------------------------------------------------------


def test_top_k_stop_and_extra_reach_the_model_inputs(emulator, env):
    result = run(env, "chat", "--top-k", "40", "--stop", "###", "--extra", '{"seed": 7, "min_p": 0.1}', "hi")
    assert result.returncode == 0, result.stderr
    assert created_input(emulator) == {
        "prompt": "hi",
        "top_k": 40,
        "stop_sequences": "###",
        "seed": 7,
        "min_p": 0.1,
    }


def test_extra_that_is_not_a_json_object_is_a_usage_error(env):
    for value in ("{seed: 1}", "[1, 2]"):
        result = run(env, "chat", "--extra", value, "hi")
        assert result.returncode == 2 and "--extra" in result.stderr, result.stderr


def test_extra_goes_to_a_gradio_apps_inputs_by_label(env):
    with GradioEmulator() as app:
        result = run({**env, "QWEN_SPACE_URL": app.url}, "chat", "-m", "qwen-2-72b", "--extra", '{"seed": 1}', "hi")
    assert result.returncode == 2  # the Qwen app has no input labelled "seed", and says which it has
    assert result.stderr.startswith("error: ") and "seed" in result.stderr and result.stderr.count("\n") == 1


def test_provider_chooses_where_the_call_goes(emulator, env):
    with GradioEmulator() as app:
        qwen = run({**env, "QWEN_SPACE_URL": app.url}, "chat", "--provider", "qwen", "hi")
        replicate = run({**env, "QWEN_SPACE_URL": app.url}, "chat", "--provider", "replicate", "hi")
        unknown = run(env, "chat", "--provider", "nobody", "hi")
        assert app.count("join") == 1
    assert (qwen.returncode, qwen.stdout) == (0, "[system=You are a helpful assistant.] [turns=0: ] you said: hi\n")
    assert (replicate.returncode, replicate.stdout) == (0, "You said: hi\n")
    assert unknown.returncode == 4 and "No provider named 'nobody'" in unknown.stderr


# -- --json ----------------------------------------------------------------------------------


def test_json_prints_one_object_with_the_exact_text(emulator, env):
    tokens = ["Line one,\n", "  indented ", "naïve ✓", ' {"looks": "like JSON"}\n']
    emulator.add_model("acme/exact", Script(tokens, delay=0.01))
    result = run(env, "chat", "-m", "acme/exact", "--json", "go")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    record = json.loads(result.stdout)
    (prediction_id,) = emulator.predictions
    assert set(record) == {"id", "text", "error", "metrics", "usage"}
    assert record["text"] == "".join(tokens) and record["id"] == prediction_id and record["error"] is None
    metrics = record["metrics"]
    assert metrics["chunks"] == 4 and metrics["characters"] == len("".join(tokens))
    assert 0 < metrics["time_to_first_chunk"] <= metrics["duration"] < 60
    assert metrics["duration"] == round(metrics["duration"], 3)
    usage = record["usage"]  # Replicate's metrics of the prediction
    assert (usage["input_tokens"], usage["output_tokens"]) == (1, 4) and usage["predict_time"] >= 0


def test_json_of_a_gradio_answer_has_no_usage(env):
    with GradioEmulator() as app:
        result = run({**env, "QWEN_SPACE_URL": app.url}, "chat", "-m", "qwen-2-72b", "--json", "hi")
    record = json.loads(result.stdout)
    assert record["text"].endswith("you said: hi") and record["usage"] is None and record["id"]


def test_json_of_a_failed_stream_has_the_error_and_the_partial_text(emulator, env):
    emulator.add_model("acme/broken", Script(["par", "tial"], error_after=2, error_detail="GPU fell over"))
    result = run(env, "chat", "-m", "acme/broken", "--json", "go")
    assert result.returncode == 1
    record = json.loads(result.stdout)
    assert record["text"] == "partial" and record["error"]["type"] == "PredictionError"
    assert "GPU fell over" in record["error"]["message"] and 'the failure is in "text"' in record["error"]["message"]
    assert 'is in the "text" of the JSON printed' in result.stderr and ".text" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


# -- a failed stream in the terminal ----------------------------------------------------------------


def test_a_failed_stream_ends_its_partial_output_with_a_newline(emulator, env):
    emulator.add_model("acme/broken", Script(["par", "tial"], error_after=2, error_detail="GPU fell over"))
    result = run(env, "chat", "-m", "acme/broken", "go")
    assert result.returncode == 1
    assert result.stdout == "partial\n"
    assert "GPU fell over" in result.stderr and "was printed above" in result.stderr
    assert "stream's .text" not in result.stderr


def test_a_stream_failing_before_any_text_prints_nothing_and_says_nothing_of_text(emulator, env):
    emulator.add_model("acme/broken", Script(["never"], error_after=0, error_detail="GPU fell over"))
    result = run(env, "chat", "-m", "acme/broken", "go")
    assert result.returncode == 1 and result.stdout == ""
    assert "GPU fell over" in result.stderr and "text" not in result.stderr.split("GPU fell over")[1]


def test_error_messages_speak_of_the_terminal_not_of_the_stream_object():
    failed = PredictionError(
        "The model run failed while streaming: boom. The text streamed before the failure is in the stream's .text."
    )
    broken = APIConnectionError(
        "The app's stream ended early: 9 characters received, the text so far is in the stream's .text. Retry."
    )
    canceled = PredictionError("Prediction p1 was canceled on the server; the text so far is in the stream's .text.")
    assert error_message(failed, "was printed above") == (
        "The model run failed while streaming: boom. The text streamed before the failure was printed above."
    )
    assert error_message(failed) == "The model run failed while streaming: boom."
    assert error_message(broken) == "The app's stream ended early: 9 characters received. Retry."
    assert error_message(canceled) == "Prediction p1 was canceled on the server."


def test_batch_results_do_not_point_at_the_stream_object(emulator, env, tmp_path):
    emulator.add_model("acme/broken", Script(["par", "tial"], error_after=2, error_detail="GPU fell over"))
    jobs, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    jobs.write_text(json.dumps({"id": "a", "model": "acme/broken", "prompt": "go"}) + "\n")
    assert run(env, "batch", str(jobs), "-o", str(output)).returncode == 1
    message = json.loads(output.read_text())["error"]["message"]
    assert "GPU fell over" in message and ".text" not in message


# -- help ----------------------------------------------------------------------------------------


def every_parser(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from every_parser(sub)


def test_every_option_has_a_help_text():
    missing = [
        f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
        for parser in every_parser(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert missing == []


def test_help_names_the_environment_variables():
    result = subprocess.run(
        [sys.executable, "-m", "replicate_qwen_sdk", "--help"], capture_output=True, text=True, timeout=60
    )
    chat = subprocess.run(
        [sys.executable, "-m", "replicate_qwen_sdk", "chat", "--help"], capture_output=True, text=True, timeout=60
    )
    for text in (result.stdout, chat.stdout):
        for name in ("REPLICATE_API_TOKEN", "HF_TOKEN", "QWEN_SPACE_URL"):
            assert name in text
    for flag in ("--top-k", "--stop", "--extra", "--json", "--provider"):
        assert flag in chat.stdout
