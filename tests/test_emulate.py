"""``replicate-qwen emulate``, the Emulators pair, and gradio_client against the Gradio emulator."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from replicate_qwen_sdk import APIConnectionError, Client, GradioSpace
from replicate_qwen_sdk.testing import Emulators, GradioEmulator, Script


def cli(*args):
    return [sys.executable, "-m", "replicate_qwen_sdk", *args]


def clean_environment(**extra):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "QWEN_SPACE_URL", "HF_TOKEN")
        and not name.upper().endswith("_PROXY")
    }
    environment.update(PYTHONUNBUFFERED="1", **extra)
    return environment


def read_until(stream, needle: str, limit: float = 60.0) -> str:
    seen = b""
    deadline = time.monotonic() + limit
    while needle.encode() not in seen and time.monotonic() < deadline:
        data = os.read(stream.fileno(), 4096)
        if not data:
            break
        seen += data
    return seen.decode()


@pytest.fixture
def emulate():
    """``replicate-qwen emulate`` running in a child process: ``(process, what it printed)``."""
    process = subprocess.Popen(cli("emulate"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_environment())
    try:
        printed = read_until(process.stdout, "Serving until Ctrl-C.\n")
        yield process, printed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def exports(printed):
    return dict(re.findall(r"^export (\w+)=(\S+)$", printed, re.M))


def test_emulate_prints_the_environment_that_points_the_sdk_at_it(emulate):
    process, printed = emulate
    environment = exports(printed)
    assert set(environment) == {"REPLICATE_BASE_URL", "REPLICATE_API_TOKEN", "QWEN_SPACE_URL"}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", environment["REPLICATE_BASE_URL"])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", environment["QWEN_SPACE_URL"])
    client = Client(
        replicate_api_key=environment["REPLICATE_API_TOKEN"],
        replicate_base_url=environment["REPLICATE_BASE_URL"],
        qwen_url=environment["QWEN_SPACE_URL"],
    )
    with client:
        assert client.complete("meta/meta-llama-3-8b-instruct", "Hello") == "You said: Hello"
        assert client.complete("qwen-2-72b", "2+2?", system_prompt="Be brief.").endswith("you said: 2+2?")
    assert process.poll() is None  # still serving


def test_every_cli_command_runs_against_emulate_with_its_environment_alone(emulate):
    process, printed = emulate
    environment = clean_environment(**exports(printed))

    def run(*args):
        return subprocess.run(cli(*args), capture_output=True, text=True, timeout=120, env=environment)

    replicate = run("chat", "-m", "meta/meta-llama-3-8b-instruct", "Hello")
    qwen = run("chat", "-m", "qwen-2-72b", "--system", "Answer briefly.", "What is 2+2?")
    models = run("models")
    assert (replicate.returncode, replicate.stdout) == (0, "You said: Hello\n"), replicate.stderr
    assert (qwen.returncode, qwen.stdout) == (0, "[system=Answer briefly.] [turns=0: ] you said: What is 2+2?\n")
    assert models.returncode == 0 and "qwen-2-72b" in models.stdout


def test_ctrl_c_stops_emulate_cleanly(emulate):
    process, printed = emulate
    url = exports(printed)["QWEN_SPACE_URL"]
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert process.stdout.read().decode() == "Stopped.\n"
    assert process.stderr.read().decode() == ""
    with pytest.raises(APIConnectionError):
        GradioSpace(url, max_retries=0).complete(None, "anyone there?")


def test_emulate_refuses_a_bad_port():
    result = subprocess.run(cli("emulate", "--qwen-port", "70000"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--qwen-port" in result.stderr


def test_emulators_give_the_environment_for_the_sdk(monkeypatch):
    with Emulators() as emulators:
        for name, value in emulators.environment.items():
            monkeypatch.setenv(name, value)
        with Client() as client:
            assert client.complete("meta/meta-llama-3-70b-instruct", "Hi") == "You said: Hi"
            assert client.complete(None, "Hi", provider="qwen").endswith("you said: Hi")
        assert emulators.replicate.count("create") == 1 and emulators.qwen.count("join") == 1


# -- gradio_client against the Gradio emulator ---------------------------------------------------


@pytest.fixture
def gradio_client(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    module = pytest.importorskip("gradio_client", reason="gradio_client comes with gradio (Python 3.10+)")
    clients = []

    def connect(url):
        client = module.Client(url, verbose=False, analytics_enabled=False, download_files=False)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()


def answer_of(outputs):
    _, history, _ = outputs
    return history[-1]["content"][0]["text"]


def test_gradio_client_starts_on_the_emulator_and_predicts(gradio_client):
    with GradioEmulator() as app:
        client = gradio_client(app.url)
        routes = {request.route for request in app.requests}
        assert {"config", "info"} <= routes
        assert "/model_chat" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        outputs = client.predict("What is 2+2?", api_name="/model_chat")
    assert outputs[0] == "" and outputs[2] == "You are a helpful assistant."
    assert answer_of(outputs) == "[system=You are a helpful assistant.] [turns=0: ] you said: What is 2+2?"


def test_gradio_client_streams_from_the_emulator_with_history_and_system(gradio_client):
    with GradioEmulator(lambda query, history, system: Script(["Hel", "lo", " again"], delay=0.05)) as app:
        client = gradio_client(app.url)
        first = client.predict("Hi", api_name="/model_chat")
        job = client.submit(query="And now?", history=first[1], system="Be brief.", api_name="/model_chat")
        updates = [answer_of(outputs) for outputs in job]
        final = job.result()
        (event,) = [event for event in app.events.values() if event.query == "And now?"]
    assert updates == ["Hel", "Hello", "Hello again"]  # each update as it came, not only the end
    assert answer_of(final) == "Hello again" and final[2] == "Be brief."
    assert [message["role"] for message in final[1]] == ["user", "assistant", "user", "assistant"]
    assert event.system == "Be brief." and len(event.history) == 2


def test_gradio_client_holds_the_heartbeat_open(gradio_client):
    with GradioEmulator() as app:
        gradio_client(app.url)
        deadline = time.monotonic() + 10
        while app.count("heartbeat") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert app.count("heartbeat") == 1
