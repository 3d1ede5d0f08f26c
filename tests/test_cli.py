"""The command line, run as a user runs it: in a subprocess, against the emulators."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)


def cli(*args):
    return [sys.executable, "-m", "replicate_qwen_sdk", *args]


@pytest.fixture
def env(emulator):
    environment = dict(
        os.environ, REPLICATE_API_TOKEN=SECRET, REPLICATE_BASE_URL=emulator.base_url, PYTHONUNBUFFERED="1"
    )
    environment.pop("HTTP_PROXY", None)
    environment.pop("HTTPS_PROXY", None)
    return environment


def run(args, env, **kwargs):
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=120, env=env, **kwargs)


def read_until(stream, needle: bytes, limit: float = 20.0) -> bytes:
    """Read a pipe until ``needle`` shows up (or ``limit`` seconds pass)."""
    seen = b""
    deadline = time.monotonic() + limit
    while needle not in seen and time.monotonic() < deadline:
        data = os.read(stream.fileno(), 4096)
        if not data:
            break
        seen += data
    return seen


# -- demo and help --------------------------------------------------------------------


def test_demo_streams_offline_and_succeeds():
    result = subprocess.run(cli("demo", "--delay", "0.005"), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Once upon a time, a small SDK streamed its first tokens.\n" in result.stdout
    assert "you said: What is 2+2?" in result.stdout
    assert "identical text" in result.stdout
    assert result.stderr == ""


def test_no_command_prints_usage_and_exits_2():
    result = subprocess.run(cli(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage" in result.stderr


def test_models_lists_aliases(env):
    result = run(["models"], env)
    assert result.returncode == 0
    assert "qwen-2-72b -> qwen-qwen2-72b-instruct\tQwen_Qwen_2_72B" in result.stdout


# -- chat ----------------------------------------------------------------------------------


def test_chat_streams_to_stdout_before_the_answer_ends(emulator, env):
    tokens = [f"token{i} " for i in range(10)]
    emulator.add_model("acme/slow", Script(tokens, delay=0.3))
    process = subprocess.Popen(
        cli("chat", "-m", "acme/slow", "go"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    first = read_until(process.stdout, b"token0")
    still_running = process.poll() is None
    rest = process.stdout.read()
    process.wait(60)
    assert b"token0" in first and still_running  # the first bytes came while the model was still writing
    assert (first + rest).decode() == "".join(tokens) + "\n"
    assert process.returncode == 0


def test_chat_reads_the_prompt_from_stdin_and_passes_parameters(emulator, env):
    result = run(
        [
            "chat",
            "--system",
            "Be brief.",
            "--max-tokens",
            "20",
            "--temperature",
            "0.5",
            "--stop",
            "END",
            "--stop",
            "STOP",
            "-",
        ],
        env,
        input="multi\nline prompt",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "You said: multi\nline prompt\n"
    create = [r for r in emulator.requests if r.route == "create"][0]
    assert create.body["input"] == {
        "prompt": "multi\nline prompt",
        "system_prompt": "Be brief.",
        "max_tokens": 20,
        "temperature": 0.5,
        "stop_sequences": "END,STOP",
    }


def test_chat_with_the_qwen_preset_and_a_local_copy(env):
    with GradioEmulator() as app:
        result = run(["--qwen-url", app.url, "chat", "-m", "qwen-2-72b", "--system", "Be kind.", "hello"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[system=Be kind.] [turns=0: ] you said: hello\n"


def test_standard_parameters_the_space_has_no_input_for_do_not_fail_a_chat_or_a_batch(env, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": "a", "model": "qwen-2-72b", "prompt": "hi", "max_tokens": 5}) + "\n")
    with GradioEmulator() as app:
        chat = run(["--qwen-url", app.url, "chat", "-m", "qwen-2-72b", "--max-tokens", "20", "hello"], env)
        batch = run(["--qwen-url", app.url, "batch", str(jobs), "-o", str(tmp_path / "out.jsonl")], env)
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout == "[system=You are a helpful assistant.] [turns=0: ] you said: hello\n"
    assert batch.returncode == 0, batch.stderr
    (result,) = results_by_id(tmp_path / "out.jsonl").values()
    assert result["error"] is None and result["text"].endswith("you said: hi")


def test_ctrl_c_cancels_the_prediction_and_exits_130(emulator, env):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(200)], delay=0.1))
    process = subprocess.Popen(
        cli("chat", "-m", "acme/long", "go"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    read_until(process.stdout, b"1 ")
    process.send_signal(signal.SIGINT)
    process.wait(30)
    assert process.returncode == 130
    assert emulator.count("cancel") == 1
    (prediction,) = emulator.predictions.values()
    assert prediction.status(time.monotonic()) == "canceled"


@pytest.mark.parametrize(
    "args, extra_env, code, fragment",
    [
        (["chat", "hi"], {"REPLICATE_API_TOKEN": ""}, 3, "REPLICATE_API_TOKEN"),
        (["chat", "-m", "gpt-4", "hi"], {}, 4, "Model not found"),
        (["chat", "-m", "acme/nothing", "hi"], {}, 4, "Model not found"),
        (["--max-retries", "0", "chat", "hi"], {"REPLICATE_BASE_URL": "http://127.0.0.1:9/v1"}, 5, "127.0.0.1:9"),
        (["chat", "--temperature", "-1", "hi"], {}, 2, "temperature"),
    ],
)
def test_errors_are_one_line_with_a_distinct_exit_code(env, args, extra_env, code, fragment):
    result = run(args, {**env, **extra_env})
    assert result.returncode == code
    assert result.stderr.startswith("error: ") and fragment in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert SECRET not in result.stderr


# -- batch ---------------------------------------------------------------------------------


def write_jobs(path, count, **extra):
    with open(path, "w") as handle:
        for index in range(count):
            handle.write(json.dumps({"id": f"job-{index}", "prompt": f"prompt {index}", **extra}) + "\n")


def results_by_id(path):
    with open(path) as handle:
        lines = [json.loads(line) for line in handle]
    ids = [line["id"] for line in lines]
    assert len(ids) == len(set(ids)), "an id appears twice"
    return {line["id"]: line for line in lines}


def test_batch_writes_every_result_and_reports_bad_lines(emulator, env, tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 20)
    with open(source, "a") as handle:
        handle.write("{not json\n")
        handle.write(json.dumps({"id": "no-text"}) + "\n")
        handle.write(json.dumps({"id": "bad-model", "model": "acme/missing", "prompt": "x"}) + "\n")
        handle.write(json.dumps({"messages": [{"role": "user", "content": "no id"}]}) + "\n")
    result = run(["batch", str(source), "-o", str(output), "--workers", "4"], env)
    assert result.returncode == 1
    assert f"{source}:21: skipped: not JSON" in result.stderr
    assert f"{source}:22: skipped: needs exactly one of 'messages' or 'prompt'" in result.stderr
    results = results_by_id(output)
    assert set(results) == {f"job-{i}" for i in range(20)} | {"bad-model", "line-24"}
    assert all(results[f"job-{i}"]["text"] == f"You said: prompt {i}" for i in range(20))
    assert results["line-24"]["text"] == "You said: no id"
    assert results["bad-model"]["error"]["type"] == "ModelNotFoundError"
    assert results["job-0"]["metrics"]["chunks"] >= 1 and results["job-0"]["error"] is None


def test_a_killed_batch_rerun_finishes_with_every_id_exactly_once(emulator, env, tmp_path):
    emulator.add_model("acme/paced", lambda inputs: Script(["answer to ", inputs["prompt"]], delay=0.15))
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 40, model="acme/paced")
    process = subprocess.Popen(
        cli("batch", str(source), "-o", str(output), "--workers", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not output.exists() or output.read_text().count("\n") < 5):
        time.sleep(0.05)
    process.kill()
    process.wait(10)
    with open(output, "a") as handle:
        handle.write('{"id": "job-39", "text": "cut sho')  # as if killed mid-write
    written_before = output.read_text().count("\n")
    assert 5 <= written_before < 40
    result = run(["batch", str(source), "-o", str(output), "--workers", "8"], env)
    assert result.returncode == 0, result.stderr
    results = results_by_id(output)
    assert set(results) == {f"job-{i}" for i in range(40)}
    assert all(results[f"job-{i}"]["text"] == f"answer to prompt {i}" for i in range(40))
    assert "already in" in result.stderr


def test_failed_jobs_are_kept_until_retry_failed(emulator, env, tmp_path):
    attempts = []

    def flaky(inputs):
        attempts.append(inputs["prompt"])
        if len(attempts) == 1:
            return Script(["partial"], error_after=0, error_detail="GPU fell over")
        return Script(["recovered"])

    emulator.add_model("acme/flaky", flaky)
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 1, model="acme/flaky")
    assert run(["batch", str(source), "-o", str(output)], env).returncode == 1
    assert results_by_id(output)["job-0"]["error"]["message"].count("GPU fell over") == 1
    again = run(["batch", str(source), "-o", str(output)], env)
    assert again.returncode == 1 and "--retry-failed" in again.stderr and len(attempts) == 1
    assert run(["batch", str(source), "-o", str(output), "--retry-failed"], env).returncode == 0
    assert results_by_id(output)["job-0"] == {**results_by_id(output)["job-0"], "text": "recovered", "error": None}


def test_batch_on_a_missing_file_is_a_usage_error(env, tmp_path):
    result = run(["batch", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "out.jsonl")], env)
    assert result.returncode == 2 and result.stderr.startswith("error: ")


def test_batch_on_a_dask_cluster(emulator, env, tmp_path, dask_cluster):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 30)
    result = run(["batch", str(source), "-o", str(output), "--dask", dask_cluster.scheduler_address], env)
    assert result.returncode == 0, output.read_text()[:2000]
    results = results_by_id(output)
    assert {key: value["text"] for key, value in results.items()} == {
        f"job-{i}": f"You said: prompt {i}" for i in range(30)
    }


def test_verbose_logs_go_to_stderr_without_the_key(env):
    result = run(["-vv", "chat", "hello"], env)
    assert result.returncode == 0
    assert result.stdout == "You said: hello\n"
    assert "DEBUG replicate_qwen_sdk: created prediction" in result.stderr
    assert SECRET not in result.stderr
    quiet = run(["chat", "hello"], env)
    assert quiet.stderr == ""
