"""Batches that stop cleanly (Ctrl-C), and a batch command whose output file is
locked, bounded in memory, and traceable to the server's runs."""

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from replicate_qwen_sdk import Client, PredictionError
from replicate_qwen_sdk import cli as cli_module
from replicate_qwen_sdk.concurrency import cancel_on_stop, run_all
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)


def wait_for(condition, what, limit=30.0):
    """Poll ``condition`` until it holds; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def predictions_of(emulator, prefix):
    now = time.monotonic()
    return {p.input["prompt"]: p for p in emulator.predictions.values() if p.input["prompt"].startswith(prefix)}, now


# -- Client.batch and run_all: stopping -------------------------------------------------------


@pytest.mark.parametrize("pool", [None, "ThreadPoolExecutor"])
def test_an_interrupt_delivers_finished_jobs_cancels_running_ones_and_starts_no_more(pool):
    started, running = [], threading.Semaphore(0)
    cancelled = {}
    delivered = {}

    def job(index):
        started.append(index)
        if index < 3:
            return f"result {index}"
        stop = cancelled[index] = threading.Event()
        with cancel_on_stop(stop.set):
            running.release()
            stopped = stop.wait(30)
        return "cut short" if stopped else "ran to the end"

    def on_result(index, result):
        delivered[index] = result
        if len(delivered) == 1:
            # Each worker hands its quick job's result over before it takes a
            # slow one, so once three slow jobs run, all quick ones are done.
            for _ in range(3):
                assert running.acquire(timeout=30)
            raise KeyboardInterrupt

    with concurrent.futures.ThreadPoolExecutor(3) if pool else contextlib.nullcontext() as executor:
        interrupted = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_all(job, [(i,) for i in range(12)], max_workers=3, executor=executor, on_result=on_result)
        stopped_after = time.monotonic() - interrupted
    assert delivered == {0: "result 0", 1: "result 1", 2: "result 2"}  # the slow ones' partial results are not results
    assert sorted(started) == [0, 1, 2, 3, 4, 5]  # the other six never started
    assert sorted(cancelled) == [3, 4, 5] and all(event.is_set() for event in cancelled.values())
    assert stopped_after < 2  # the slow jobs would have run 30 s


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs POSIX signals")
def test_ctrl_c_while_a_result_is_handed_over_lets_it_through_then_stops_the_batch():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    running = threading.Semaphore(0)
    delivered = []

    def job(index):
        if index < 3:
            return index
        stop = threading.Event()
        with cancel_on_stop(stop.set):
            running.release()
            stop.wait(30)

    def on_result(index, result):
        if not delivered:
            for _ in range(3):  # all quick jobs done, three slow ones running
                assert running.acquire(timeout=30)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # Ctrl-C, right here
        delivered.append(index)

    with pytest.raises(KeyboardInterrupt):
        run_all(job, [(i,) for i in range(12)], max_workers=3, on_result=on_result)
    assert sorted(delivered) == [0, 1, 2]  # the one being handed over too
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.fixture
def client(emulator):
    with Client(replicate_api_key=SECRET, replicate_base_url=emulator.base_url) as client:
        yield client


def paced(inputs):
    """Quick answers to "quick ..." prompts; others take 10 s."""
    if inputs["prompt"].startswith("quick"):
        return Script(["answer to ", inputs["prompt"]])
    return Script([f"{i} " for i in range(100)], delay=0.1)


def test_ctrl_c_in_client_batch_cancels_the_running_predictions_and_keeps_finished_results(client, emulator):
    emulator.add_model("acme/paced", paced)
    jobs = [{"model": "acme/paced", "prompt": prompt} for prompt in ("quick 0", "quick 1")]
    jobs += [{"model": "acme/paced", "prompt": f"slow {i}"} for i in range(8)]
    delivered = {}

    def on_result(index, result):
        delivered[index] = result
        if len(delivered) == 1:  # Ctrl-C once both quick jobs are done and four slow ones run
            wait_for(lambda: len(predictions_of(emulator, "slow")[0]) == 4, "four slow predictions")
            raise KeyboardInterrupt

    interrupted = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.batch(jobs, max_workers=4, on_result=on_result)
    assert time.monotonic() - interrupted < 2
    assert delivered == {0: "answer to quick 0", 1: "answer to quick 1"}
    slow, now = predictions_of(emulator, "slow")
    assert sorted(slow) == ["slow 0", "slow 1", "slow 2", "slow 3"]  # the other four were never created
    assert {prompt: p.status(now) for prompt, p in slow.items()} == dict.fromkeys(slow, "canceled")
    assert emulator.count("cancel") == 4


def test_the_first_failure_stops_the_batch_and_cancels_the_running_predictions(client, emulator):
    emulator.add_model("acme/paced", paced)
    emulator.add_model("acme/broken", Script(["a ", "b ", "c"], delay=0.2, error_after=2))
    jobs = [{"model": "acme/paced", "prompt": "slow 0"}, {"model": "acme/paced", "prompt": "slow 1"}]
    jobs += [{"model": "acme/broken", "prompt": "fails"}, {"model": "acme/paced", "prompt": "slow 2"}]
    failed = time.monotonic()
    with pytest.raises(PredictionError, match="CUDA out of memory"):
        client.batch(jobs, max_workers=3, return_exceptions=False)
    assert time.monotonic() - failed < 3  # 0.4 s to fail, then the stop; the slow jobs take 10 s
    slow, now = predictions_of(emulator, "slow")
    # "slow 2" may have started in the moment between the failure and the
    # stop (its worker was free): then it is canceled too.
    assert {"slow 0", "slow 1"} <= set(slow)
    assert {prompt: p.status(now) for prompt, p in slow.items()} == dict.fromkeys(slow, "canceled")


# -- the batch command ------------------------------------------------------------------------


def cli(*args):
    return [sys.executable, "-m", "replicate_qwen_sdk", *map(str, args)]


@pytest.fixture
def env(emulator):
    environment = dict(
        os.environ, REPLICATE_API_TOKEN=SECRET, REPLICATE_BASE_URL=emulator.base_url, PYTHONUNBUFFERED="1"
    )
    environment.pop("HTTP_PROXY", None)
    environment.pop("HTTPS_PROXY", None)
    return environment


def run(args, env):
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=120, env=env)


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


def lines_in(path):
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_ctrl_c_stops_a_batch_within_seconds_and_a_rerun_does_the_rest(emulator, env, tmp_path):
    slow = {"on": True}

    def responder(inputs):
        if inputs["prompt"] == "prompt 0" or not slow["on"]:
            return Script(["answer to ", inputs["prompt"]], delay=0.01)
        return Script([f"{i} " for i in range(100)], delay=0.1)

    emulator.add_model("acme/paced", responder)
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 20, model="acme/paced")
    process = subprocess.Popen(
        cli("batch", source, "-o", output, "--workers", "4"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    wait_for(lambda: lines_in(output) >= 1, "the first result line")
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(30)
    stopped_after = time.monotonic() - signalled
    stderr = process.stderr.read().decode()
    assert process.returncode == 130, stderr
    assert stopped_after < 3  # the running jobs had 10 s to go
    assert "run the same command again" in stderr
    now = time.monotonic()
    predictions = list(emulator.predictions.values())
    (done,) = [p for p in predictions if p.status(now) == "succeeded"]
    assert done.input["prompt"] == "prompt 0"
    others = [p for p in predictions if p is not done]
    assert 3 <= len(others) <= 4  # those running, and none of the jobs not started yet
    assert [p.status(now) for p in others] == ["canceled"] * len(others)
    assert emulator.count("cancel") == len(others)
    (line,) = results_by_id(output).values()  # the one job that finished
    assert (line["id"], line["run_id"], line["text"], line["error"]) == ("job-0", done.id, "answer to prompt 0", None)

    slow["on"] = False
    rerun = run(["batch", source, "-o", output, "--workers", "8"], env)
    assert rerun.returncode == 0, rerun.stderr
    assert "19 done, 0 failed, 1 already in" in rerun.stderr
    results = results_by_id(output)
    assert {job_id: line["text"] for job_id, line in results.items()} == {
        f"job-{i}": f"answer to prompt {i}" for i in range(20)
    }
    assert [p.input["prompt"] for p in emulator.predictions.values()].count("prompt 0") == 1


def test_ctrl_c_stops_a_batch_on_a_dask_cluster_whose_workers_cancel_the_running_predictions(
    emulator, env, tmp_path, dask_cluster
):
    emulator.add_model("acme/paced", paced)
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with open(source, "w") as handle:
        handle.write(json.dumps({"id": "quick", "prompt": "quick", "model": "acme/paced"}) + "\n")
        for index in range(60):
            handle.write(json.dumps({"id": f"slow-{index}", "prompt": f"slow {index}", "model": "acme/paced"}) + "\n")
    process = subprocess.Popen(
        cli("batch", source, "-o", output, "--dask", dask_cluster.scheduler_address),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    wait_for(lambda: lines_in(output) >= 1, "the first result line")
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait(30)
    stopped_after = time.monotonic() - signalled
    stderr = process.stderr.read().decode()
    assert process.returncode == 130, stderr
    assert stopped_after < 9  # the slow jobs had 10 s to go; closing the Dask client takes part of this
    assert "Traceback" not in stderr
    assert {job_id: line["text"] for job_id, line in results_by_id(output).items()} == {"quick": "answer to quick"}

    def slow_ones():
        slow, now = predictions_of(emulator, "slow")
        return [p.status(now) for p in slow.values()]

    # The workers cancel their runs themselves, once they see the stop.
    wait_for(lambda: set(slow_ones()) == {"canceled"}, "the slow predictions to be canceled", limit=10)
    started = len(slow_ones())
    assert started >= 1
    # At most one per thread of the cluster (2 workers x 8): of the 60 slow
    # jobs, the ones not started when the batch stopped never started.
    assert started <= 16


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(emulator, env, tmp_path):
    emulator.add_model("acme/paced", lambda inputs: Script(["answer ", "to ", inputs["prompt"]], delay=0.3))
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 6, model="acme/paced")
    first = subprocess.Popen(
        cli("batch", source, "-o", output, "--workers", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    wait_for(lambda: emulator.count("create") >= 1, "the first run's first job")  # it holds the file by then
    second = run(["batch", source, "-o", output, "--workers", "8"], env)
    overlapped = first.poll() is None
    first.wait(60)
    assert overlapped  # the first run was still going when the second was refused
    assert second.returncode == 2
    assert second.stderr.startswith(f"error: {output} is in use by another 'replicate-qwen batch' run.")
    assert "%|" not in second.stderr  # refused before any progress bar
    assert first.returncode == 0, first.stderr.read()
    results = results_by_id(output)
    assert {job_id: line["text"] for job_id, line in results.items()} == {
        f"job-{i}": f"answer to prompt {i}" for i in range(6)
    }
    assert emulator.count("create") == 6  # every job ran once, by the first run


def peak_rss_mb(args, env):
    """Run the command line; its exit code and peak resident memory in MB."""
    process = subprocess.Popen(cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_maxrss / 1024  # Linux: kilobytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in kilobytes on Linux")
def test_memory_does_not_grow_with_the_number_of_results(emulator, env, tmp_path):
    megabyte = ["x" * 65536] * 16
    emulator.add_model("acme/verbose", Script(megabyte))
    peaks = {}
    for count in (10, 70):
        source, output = tmp_path / f"in-{count}.jsonl", tmp_path / f"out-{count}.jsonl"
        write_jobs(source, count, model="acme/verbose")
        code, peaks[count] = peak_rss_mb(["batch", source, "-o", output, "--workers", "2"], env)
        assert code == 0
        results = results_by_id(output)
        assert len(results) == count and all(len(line["text"]) == 2**20 for line in results.values())
    # Keeping the results would add 60 MB (measured: 46 -> 106 MB); written
    # and let go, the peak stays within a few MB.
    assert peaks[70] - peaks[10] < 25, peaks


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_run(emulator, env, tmp_path):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(
        b'{"id": "a", "prompt": "first"}\n{"id": "latin-1", "prompt": "caf\xe9"}\n{"id": "b", "prompt": "third"}\n'
    )
    result = run(["batch", source, "-o", output], env)
    assert result.returncode == 1
    assert f"{source}:2: skipped: not valid UTF-8 (byte 0xe9 at position 33)" in result.stderr
    assert "1 malformed line(s)" in result.stderr
    results = results_by_id(output)
    assert {job_id: line["text"] for job_id, line in results.items()} == {
        "a": "You said: first",
        "b": "You said: third",
    }


@pytest.mark.parametrize("workers", ["0", "-3", "many"])
def test_bad_flags_are_refused_before_anything_is_touched(emulator, env, tmp_path, workers):
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jobs(source, 3)
    # An earlier failure and a line cut short: any run would rewrite this file.
    output.write_bytes(
        b'{"id": "job-0", "run_id": null, "text": null, "error": {"type": "X", "message": "m"}, "metrics": null}\n'
        b'{"id": "job-1", "te'
    )
    before, stat = output.read_bytes(), output.stat()
    result = run(["batch", source, "-o", output, "--retry-failed", "--workers", workers], env)
    assert result.returncode == 2
    assert "argument --workers" in result.stderr
    assert "%|" not in result.stderr  # no progress bar
    assert output.read_bytes() == before
    assert (output.stat().st_ino, output.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert emulator.requests == []


def test_the_output_cannot_be_the_input(emulator, env, tmp_path):
    source = tmp_path / "jobs.jsonl"
    write_jobs(source, 2)
    before = source.read_bytes()
    result = run(["batch", source, "-o", tmp_path / "." / "jobs.jsonl"], env)
    assert result.returncode == 2
    assert "is the input file" in result.stderr
    assert source.read_bytes() == before and emulator.requests == []


def test_every_line_carries_the_id_of_its_run_failures_included(emulator, env, tmp_path):
    emulator.add_model("acme/broken", Script(["a ", "b ", "c"], delay=0.05, error_after=2))
    emulator.add_model("acme/stalls", Script(["a ", "b ", "c"], delay=0.05, silence_after=1, silence=10))
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    jobs = {
        "ok": {"prompt": "hello"},
        "fails": {"model": "acme/broken", "prompt": "x"},
        "times-out": {"model": "acme/stalls", "prompt": "x"},
        "no-model": {"model": "acme/missing", "prompt": "x"},
        "qwen": {"model": "qwen-2-72b", "prompt": "hi"},
        "qwen-fails": {"model": "qwen-2-72b", "prompt": "fail"},
    }
    source.write_text("".join(json.dumps({"id": job_id, **job}) + "\n" for job_id, job in jobs.items()))

    def qwen(query, history, system):
        return Script(["half"], error_after=0) if query == "fail" else Script(["answer"])

    with GradioEmulator(qwen) as app:
        result = run(["--timeout", "1", "--qwen-url", app.url, "batch", source, "-o", output], env)
        events = set(app.events)
    assert result.returncode == 1
    results = results_by_id(output)
    now = time.monotonic()
    runs = {prediction.model: prediction for prediction in emulator.predictions.values()}
    assert len(runs) == 3  # one per model: the default one, acme/broken, acme/stalls
    (ok,) = [prediction for prediction in runs.values() if prediction.input["prompt"] == "hello"]
    assert results["ok"]["error"] is None and results["ok"]["run_id"] == ok.id
    assert results["fails"]["error"]["type"] == "PredictionError"
    assert results["fails"]["run_id"] == runs["acme/broken"].id and runs["acme/broken"].status(now) == "failed"
    assert results["times-out"]["error"]["type"] == "APITimeoutError"
    assert results["times-out"]["run_id"] == runs["acme/stalls"].id
    assert results["no-model"]["error"]["type"] == "ModelNotFoundError" and results["no-model"]["run_id"] is None
    assert results["qwen"]["error"] is None and results["qwen-fails"]["error"]["type"] == "PredictionError"
    assert {results["qwen"]["run_id"], results["qwen-fails"]["run_id"]} == events
    assert all("run_id" in line for line in results.values())


def test_without_fcntl_a_lock_file_keeps_other_runs_off(emulator, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli_module, "fcntl", None)  # as on Windows
    monkeypatch.setenv("REPLICATE_API_TOKEN", SECRET)
    monkeypatch.setenv("REPLICATE_BASE_URL", emulator.base_url)
    source, output, lock = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "out.jsonl.lock"
    write_jobs(source, 3)
    lock.write_text("")  # another run's
    assert cli_module.main(["batch", str(source), "-o", str(output)]) == 2
    refused = capsys.readouterr().err
    assert f"{output} is in use" in refused and "delete it" in refused and str(lock) in refused
    assert not output.exists() and emulator.requests == []
    lock.unlink()
    assert cli_module.main(["batch", str(source), "-o", str(output)]) == 0
    assert not lock.exists()  # gone with the run
    assert {job_id: line["text"] for job_id, line in results_by_id(output).items()} == {
        f"job-{i}": f"You said: prompt {i}" for i in range(3)
    }
