"""The OpenAI-compatible server, driven by real clients (the openai package,
plain sockets) on waitress and gunicorn, backed by the bundled emulators."""

import io
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from wsgiref.util import setup_testing_defaults

import pytest
import requests

from replicate_qwen_sdk import Client, Timeout
from replicate_qwen_sdk.cli import main
from replicate_qwen_sdk.server import create_app
from replicate_qwen_sdk.server.serve import listening_port, make_server
from replicate_qwen_sdk.testing import GradioEmulator, ReplicateEmulator, Script, echo_chat

openai = pytest.importorskip("openai", reason="the server is tested with the official openai client")
pytest.importorskip("waitress", reason="the server runs on waitress (the 'server' extra)")

SECRET = "r8_server_test_upstream_token_0123456789"
KEY = "sk-server-test-key-0123456789"
TEXT = ["Line one,\n", "  indented «ünïcödé» ", "🚀\n", '{"json": true}', " end"]
CANCEL_WITHIN = 2.0  # seconds, from the client leaving to the upstream cancel


def slow_echo(query, history, system):
    """The default echo; slow for the concurrent jobs, so that they overlap."""
    return Script(echo_chat(query, history, system).tokens, delay=0.25 if query.startswith("job ") else 0.005)


@pytest.fixture(scope="module")
def backends():
    with ReplicateEmulator(api_token=SECRET) as replicate, GradioEmulator(slow_echo) as qwen:
        replicate.add_model("acme/poet", Script(TEXT, delay=0.002))
        replicate.add_model("acme/broken", Script(["a", "b", "c"], delay=0.01, error_after=2))
        replicate.add_model("acme/echo", lambda inputs: Script([f"{inputs['prompt']}", " done"], delay=2.0))
        yield replicate, qwen


def new_model(replicate, script):
    """A model of its own for one test, so that its prediction is easy to find."""
    name = f"acme/m{uuid.uuid4().hex[:8]}"
    replicate.add_model(name, script)
    return name


def prediction_of(replicate, model):
    found = [p for p in list(replicate.predictions.values()) if p.model == model]
    assert len(found) == 1
    return found[0]


def wait_until(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class Served:
    def __init__(self, url, app=None):
        self.url = url
        self.app = app


@pytest.fixture(scope="module")
def waitress_server(backends):
    replicate, qwen = backends
    client = Client(
        replicate_api_key=SECRET,
        replicate_base_url=replicate.base_url,
        qwen_url=qwen.url,
        timeout=Timeout(connect=5, read=30),
        pool_size=128,
    )
    app = create_app(client, api_key=KEY)
    server = make_server(app, host="127.0.0.1", port=0, threads=128)

    def run():
        try:
            server.run()
        except Exception:  # the loop may trip over sockets closed at teardown
            pass

    threading.Thread(target=run, daemon=True).start()
    yield Served(f"http://127.0.0.1:{listening_port(server)}/v1", app)
    app.close()
    server.close()


@pytest.fixture
def openai_client(waitress_server):
    with openai.OpenAI(base_url=waitress_server.url, api_key=KEY, max_retries=0, timeout=30) as client:
        yield client


def user(text):
    return [{"role": "user", "content": text}]


QWEN_ANSWER = "[system=You are a helpful assistant.] [turns=0: ] you said: {}"
PROMPT = "hi\nthere «ü» 🚀"


# -- the openai package on waitress ------------------------------------------------------


def test_models_lists_every_model_and_alias_the_client_serves(waitress_server, openai_client):
    listed = {model.id: model.owned_by for model in openai_client.models.list()}
    assert listed == {model.name: model.provider for model in waitress_server.app.client.models()}
    assert {"qwen-2-72b", "llama-3-8b", "meta/meta-llama-3-70b-instruct"} <= set(listed)
    assert openai_client.models.retrieve("meta/meta-llama-3-8b-instruct").owned_by == "Replicate"
    assert openai_client.models.retrieve("qwen-2-72b").owned_by == "Qwen_Qwen_2_72B"
    assert openai_client.models.retrieve("acme/anything").id == "acme/anything"  # any owner/name routes
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("no-such-model")


@pytest.mark.parametrize(
    "model, prompt, expected, usage",
    [
        ("acme/poet", "go", "".join(TEXT), (1, len(TEXT))),
        ("qwen-2-72b", PROMPT, QWEN_ANSWER.format(PROMPT), None),
    ],
)
def test_whole_completions_have_the_exact_text(openai_client, model, prompt, expected, usage):
    completion = openai_client.chat.completions.create(model=model, messages=user(prompt))
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason == "stop" and completion.object == "chat.completion"
    if usage is None:
        assert completion.usage is None  # Gradio apps report none: never invented
    else:
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == usage
        assert completion.usage.total_tokens == sum(usage)


@pytest.mark.parametrize(
    "model, prompt, expected, usage",
    [
        ("acme/poet", "go", "".join(TEXT), (1, len(TEXT))),
        ("qwen-2-72b", PROMPT, QWEN_ANSWER.format(PROMPT), None),
    ],
)
def test_streamed_completions_have_the_exact_text_then_finish_reason_then_usage(
    openai_client, model, prompt, expected, usage
):
    stream = openai_client.chat.completions.create(
        model=model, messages=user(prompt), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == expected
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]][-1] == "stop"
    assert chunks[-1].choices == []
    if usage is None:
        assert chunks[-1].usage is None
    else:
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == usage


def test_the_wire_format_is_data_events_ending_with_done(waitress_server):
    response = requests.post(
        f"{waitress_server.url}/chat/completions",
        json={"model": "acme/poet", "messages": user("go"), "stream": True},
        headers={"Authorization": f"Bearer {KEY}"},
        stream=True,
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = response.content.decode("utf-8").split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event[len("data: ") :]) for event in events[:-2]]
    assert all(event.startswith("data: ") for event in events[:-2])
    assert "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks) == "".join(TEXT)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and "usage" not in chunks[-1]


def test_an_unknown_model_is_a_not_found_error(openai_client):
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="gpt-4", messages=user("hi"))
    assert caught.value.body["code"] == "model_not_found" and "qwen-2-72b" in caught.value.body["message"]


def test_a_missing_or_wrong_key_is_an_authentication_error(waitress_server, backends):
    with openai.OpenAI(base_url=waitress_server.url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="acme/poet", messages=user("hi"))
    missing = requests.get(f"{waitress_server.url}/models", timeout=5)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    assert "sk-wrong" not in missing.text
    assert requests.get(waitress_server.url.replace("/v1", "/health"), timeout=5).json() == {"status": "ok"}


def test_a_failure_mid_stream_is_an_error_event_not_a_truncation(waitress_server, openai_client):
    stream = openai_client.chat.completions.create(model="acme/broken", messages=user("x"), stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["a", "b"]
    assert caught.value.body["code"] == "model_failed" and "CUDA out of memory" in caught.value.body["message"]
    raw = requests.post(
        f"{waitress_server.url}/chat/completions",
        json={"model": "acme/broken", "messages": user("x"), "stream": True},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).text
    assert raw.endswith('"code":"model_failed"}}\n\n') and "[DONE]" not in raw


def test_a_hundred_concurrent_streams_lose_and_mix_nothing(waitress_server, openai_client, run_in_threads):
    barrier = threading.Barrier(100)
    peak = {"streams": 0}
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            peak["streams"] = max(peak["streams"], waitress_server.app.streams_in_progress)
            time.sleep(0.005)

    def one(index):
        model = "acme/echo" if index % 2 else "qwen-2-72b"
        barrier.wait(60)
        stream = openai_client.chat.completions.create(
            model=model, messages=user(f"job {index}: ünï\ncode {index}"), stream=True
        )
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results, errors = run_in_threads(100, one)
    finally:
        sampling.set()
        sampler.join()
    assert errors == [], errors[:3]
    for index in range(100):
        prompt = f"job {index}: ünï\ncode {index}"
        assert results[index] == (f"{prompt} done" if index % 2 else QWEN_ANSWER.format(prompt))
    assert peak["streams"] >= 50, peak  # they did run at the same time (each lasts about 2 s)


def _leave_mid_stream(url, model):
    """Start a streamed request on a raw socket, read its first event, and
    disconnect; the time it left."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": model, "messages": user("go"), "stream": True}).encode()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEY}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while b"data: " not in received:
        data = sock.recv(65536)
        assert data, "the server closed the stream before its first event"
        received += data
    sock.close()
    return time.monotonic()


@pytest.mark.parametrize("upstream", ["sending tokens", "silent"])
def test_a_client_that_disconnects_gets_its_run_cancelled(waitress_server, backends, upstream):
    replicate, _ = backends
    if upstream == "silent":  # a model thinking: nothing is written that could fail
        script = Script(["first", "second"], silence_after=1, silence=30)
    else:
        script = Script(["tick "] * 2000, delay=0.01)
    model = new_model(replicate, script)
    left = _leave_mid_stream(waitress_server.url, model)
    prediction = prediction_of(replicate, model)
    assert wait_until(lambda: prediction.canceled_at is not None, CANCEL_WITHIN + 1)
    assert prediction.canceled_at - left <= CANCEL_WITHIN
    assert wait_until(lambda: waitress_server.app.streams_in_progress == 0, 3)


def test_upstream_credentials_never_reach_clients_or_logs(waitress_server, backends, openai_client, caplog):
    caplog.set_level(logging.DEBUG)
    replicate, _ = backends
    replicate.inject_fault("create", status=400, body={"detail": f"token {SECRET} and key {KEY} refused"})
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="acme/poet", messages=user("x"))
    answer = json.dumps(caught.value.body)
    assert SECRET not in answer and KEY not in answer and "refused" in answer
    assert SECRET not in caplog.text and KEY not in caplog.text
    sent = [request.headers.get("Authorization") for request in replicate.requests]
    assert set(sent) == {f"Bearer {SECRET}"}  # the server's own token, never a caller's key


# -- statuses, limits and security, on the WSGI application itself ----------------------------


def call(app, method, path, body=None, headers=None, remote="127.0.0.1"):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "REMOTE_ADDR": remote}
    setup_testing_defaults(environ)
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    answer = {}

    def start_response(status, response_headers):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    iterable = app(environ, start_response)
    try:
        content = b"".join(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()
    return answer["status"], answer["headers"], content


@pytest.fixture
def local_app(backends):
    replicate, qwen = backends
    client = Client(
        replicate_api_key=SECRET,
        replicate_base_url=replicate.base_url,
        qwen_url=qwen.url,
        timeout=Timeout(connect=5, read=0.5),
        max_retries=0,
    )
    app = create_app(client, api_key=KEY, max_body_bytes=2000)
    yield app
    app.close()


AUTH = {"Authorization": f"Bearer {KEY}"}


def chat(app, body, **kwargs):
    status, headers, content = call(app, "POST", "/v1/chat/completions", body, AUTH, **kwargs)
    return status, headers, json.loads(content)


@pytest.mark.parametrize(
    "body, param",
    [
        (b"{not json", None),
        ([1, 2], None),
        ({"messages": user("x")}, "model"),
        ({"model": "acme/poet"}, "messages"),
        ({"model": "acme/poet", "messages": user("x"), "n": 3}, "n"),
        ({"model": "acme/poet", "messages": user("x"), "tools": [{"type": "function"}]}, "tools"),
        ({"model": "acme/poet", "messages": user("x"), "response_format": {"type": "json_object"}}, "response_format"),
        ({"model": "acme/poet", "messages": user("x"), "temperature": -1}, "temperature"),
        ({"model": "acme/poet", "messages": [{"role": "robot", "content": "x"}]}, None),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(local_app, body, param):
    status, _, answer = chat(local_app, body)
    assert status == 400
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param


def test_a_body_over_the_limit_is_a_413_read_no_further(local_app, backends):
    replicate, _ = backends
    before = replicate.count("create")
    status, _, answer = chat(local_app, {"model": "acme/poet", "messages": user("x" * 3000)})
    assert status == 413 and answer["error"]["code"] == "request_too_large"
    assert replicate.count("create") == before


@pytest.mark.parametrize(
    "fault, status, code",
    [
        ({"status": 429, "headers": {"Retry-After": "120"}}, 429, "rate_limit_exceeded"),
        ({"status": 500}, 502, "upstream_failed"),
        ({"status": 401}, 502, "upstream_authentication_failed"),  # the server's token: never a 401
    ],
)
def test_upstream_failures_map_to_openai_statuses(local_app, backends, fault, status, code):
    replicate, _ = backends
    replicate.inject_fault("create", **fault)
    got, headers, answer = chat(local_app, {"model": "acme/poet", "messages": user("x")})
    assert (got, answer["error"]["code"]) == (status, code)
    if status == 429:
        assert headers["Retry-After"] == "120"


def test_an_upstream_timeout_is_a_504(local_app, backends):
    replicate, _ = backends
    model = new_model(replicate, Script(["a", "b"], silence_after=1, silence=5))
    status, _, answer = chat(local_app, {"model": model, "messages": user("x")})
    assert (status, answer["error"]["code"]) == (504, "upstream_timeout")


def test_no_upstream_credentials_is_a_500_that_says_so(backends):
    replicate, _ = backends
    app = create_app(Client(replicate_base_url=replicate.base_url), api_key=KEY)
    status, _, answer = chat(app, {"model": "acme/poet", "messages": user("x")})
    assert status == 500 and answer["error"]["code"] == "upstream_credentials_missing"
    assert "REPLICATE_API_TOKEN" in answer["error"]["message"]


def test_routes_methods_and_health(local_app):
    assert call(local_app, "GET", "/health")[0] == 200  # no key needed
    status, headers, _ = call(local_app, "GET", "/v1/chat/completions", headers=AUTH)
    assert status == 405 and headers["Allow"] == "POST"
    assert call(local_app, "GET", "/v1/engines", headers=AUTH)[0] == 404
    assert call(local_app, "GET", "/v1/models", headers={"Authorization": "Bearer " + KEY[:-1]})[0] == 401
    assert call(local_app, "GET", "/v1/models", headers={"Authorization": "Basic " + KEY})[0] == 401


def test_without_a_key_only_clients_on_this_machine_are_answered(backends, monkeypatch):
    replicate, _ = backends
    app = create_app(Client(replicate_api_key=SECRET, replicate_base_url=replicate.base_url))
    assert call(app, "GET", "/v1/models", remote="127.0.0.1")[0] == 200
    assert call(app, "GET", "/v1/models", remote="::1")[0] == 200
    status, _, content = call(app, "GET", "/v1/models", remote="10.1.2.3")
    assert status == 403 and "REPLICATE_QWEN_SERVER_API_KEY" in json.loads(content)["error"]["message"]
    open_app = create_app(Client(replicate_api_key=SECRET, replicate_base_url=replicate.base_url), no_auth=True)
    assert call(open_app, "GET", "/v1/models", remote="10.1.2.3")[0] == 200
    monkeypatch.setenv("REPLICATE_QWEN_SERVER_API_KEY", KEY)
    keyed = create_app(Client(replicate_api_key=SECRET, replicate_base_url=replicate.base_url))
    assert call(keyed, "GET", "/v1/models", remote="127.0.0.1")[0] == 401
    assert call(keyed, "GET", "/v1/models", headers=AUTH, remote="10.1.2.3")[0] == 200


# -- the command line ------------------------------------------------------------------------


def test_serve_refuses_a_public_host_without_a_key(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "without an API key" in capsys.readouterr().err


def _ready_line(process, seconds=30):
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    assert ready, "no ready line"
    return process.stdout.readline().strip()


def test_serve_prints_its_url_serves_and_stops_on_sigterm_cancelling_runs(backends):
    replicate, qwen = backends
    model = new_model(replicate, Script(["tick "] * 2000, delay=0.01))
    env = dict(os.environ, REPLICATE_API_TOKEN=SECRET, REPLICATE_QWEN_SERVER_API_KEY=KEY)
    command = [sys.executable, "-m", "replicate_qwen_sdk", "--replicate-base-url", replicate.base_url]
    command += ["--qwen-url", qwen.url, "serve", "--port", "0", "--threads", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = _ready_line(process)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with openai.OpenAI(base_url=url, api_key=KEY, max_retries=0) as client:
            answer = client.chat.completions.create(model="qwen-2-72b", messages=user(PROMPT))
            assert answer.choices[0].message.content == QWEN_ANSWER.format(PROMPT)
            stream = client.chat.completions.create(model=model, messages=user("go"), stream=True)
            next(iter(stream))
            process.send_signal(signal.SIGTERM)
            assert process.wait(10) == 0
        prediction = prediction_of(replicate, model)
        assert wait_until(lambda: prediction.canceled_at is not None, CANCEL_WITHIN)
    finally:
        process.kill()
        process.communicate()


# -- gunicorn: the same application, several processes ----------------------------------------


@pytest.fixture(scope="module")
def gunicorn_server(backends):
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    if gunicorn is None:
        pytest.skip("gunicorn is not installed")
    replicate, qwen = backends
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(
        os.environ,
        REPLICATE_API_TOKEN=SECRET,
        REPLICATE_BASE_URL=replicate.base_url,
        QWEN_SPACE_URL=qwen.url,
        REPLICATE_QWEN_SERVER_API_KEY=KEY,
    )
    command = [gunicorn, "-k", "gthread", "--threads", "16", "-w", "2", "-b", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "replicate_qwen_sdk.server:create_app()"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1"

    def up():
        try:
            return requests.get(url.replace("/v1", "/health"), timeout=1).status_code == 200
        except requests.RequestException:  # not listening yet, or its workers still starting
            return process.poll() is not None

    try:
        assert wait_until(up, 30) and process.poll() is None, "gunicorn did not start"
        yield Served(url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        process.communicate()


def test_gunicorn_serves_both_providers_in_several_processes(gunicorn_server, run_in_threads):
    with openai.OpenAI(base_url=gunicorn_server.url, api_key=KEY, max_retries=0) as client:
        assert "qwen-2-72b" in {model.id for model in client.models.list()}

        def one(index):
            model = "acme/poet" if index % 2 else "qwen-2-72b"
            stream = client.chat.completions.create(model=model, messages=user(PROMPT), stream=True)
            return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

        results, errors = run_in_threads(8, one)
        assert errors == []
        assert [results[i] for i in range(8)] == [
            "".join(TEXT) if i % 2 else QWEN_ANSWER.format(PROMPT) for i in range(8)
        ]
    with openai.OpenAI(base_url=gunicorn_server.url, api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()


@pytest.mark.parametrize("upstream", ["sending tokens", "silent"])
def test_gunicorn_cancels_the_run_of_a_client_that_disconnects(gunicorn_server, backends, upstream):
    replicate, _ = backends
    if upstream == "silent":
        script = Script(["first", "second"], silence_after=1, silence=30)
    else:
        script = Script(["tick "] * 2000, delay=0.01)
    model = new_model(replicate, script)
    left = _leave_mid_stream(gunicorn_server.url, model)
    prediction = prediction_of(replicate, model)
    assert wait_until(lambda: prediction.canceled_at is not None, CANCEL_WITHIN + 1)
    assert prediction.canceled_at - left <= CANCEL_WITHIN
