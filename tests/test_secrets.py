"""No secret is ever shown: not a URL's password (``http://user:password@host``
as a base URL, a Space's URL or a proxy), not the API key or the Hugging Face
token, even when a server repeats them in what it says.

One sweep runs every message path (exceptions with their attributes and
causes, ``repr`` of providers, clients and streams, log lines at DEBUG,
urllib3's included, the command line with ``-vv``) for both providers and
the client, against the emulators and two small servers that echo the
credentials back."""

import base64
import io
import json
import logging
import pathlib
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest
from gradio_apps import frames

from replicate_qwen_sdk import (
    APIConnectionError,
    AuthenticationError,
    Client,
    GradioSpace,
    InvalidArgumentError,
    ModelNotFoundError,
    PredictionError,
    PredictionMayExistError,
    Replicate,
    ResponseError,
    ServerError,
    Timeout,
)
from replicate_qwen_sdk.cli import main
from replicate_qwen_sdk.redaction import shown_url, url_secrets, without_userinfo
from replicate_qwen_sdk.testing import Fault, GradioEmulator, ReplicateEmulator, Script

USER = "gateway-user"
PASSWORD = "s3cretpw-Zq7"
API_KEY = "r8_sweep_secret_key_0123456789abcdef"
HF_TOKEN = "hf_sweep_secret_token_0123456789abcdef"
#: The pair as a Basic header carries it (requests sends a URL's userinfo so).
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, API_KEY, HF_TOKEN, BASIC)
#: What the echoing servers say back: each provider's own token (a server
#: knows no other), the URL's password, and the Basic header it came in.
REPLICATE_ECHO = f"bad credentials: key {API_KEY}, password {PASSWORD}, header Basic {BASIC}"
GRADIO_ECHO = f"bad credentials: token {HF_TOKEN}, password {PASSWORD}, header Basic {BASIC}"
MASK = "***"

CONFIG = pathlib.Path(__file__).parent / "data" / "gradio4" / "qwen_space.config.json"


def with_password(url: str) -> str:
    return url.replace("://", f"://{USER}:{PASSWORD}@", 1)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shown_of(error: BaseException) -> List[str]:
    """Everything a user may see of ``error``: message, repr, arguments,
    attributes, the exceptions chained to it as a traceback shows them (a
    context suppressed with ``from None`` is not), and that traceback."""
    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return texts


def assert_no_secret(texts: Sequence[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} shown in: {text}"


# -- servers that echo the credentials ---------------------------------------------


class EchoingReplicate:
    """Replicate's API, taking any credentials, whose predictions repeat
    :data:`REPLICATE_ECHO`: ``acme/logs`` in ``logs`` events (then succeeds),
    ``acme/streamed`` in an ``error`` event, ``acme/polled`` (no stream) in
    the ``error`` field of the failed prediction."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                name = self.path.split("/")[4]  # /v1/models/acme/<name>/predictions
                urls = {"get": f"{owner.url}/v1/predictions/{name}", "cancel": f"{owner.url}/v1/cancel/{name}"}
                if name != "polled":
                    urls["stream"] = f"{owner.url}/stream/{name}"
                self.answer(201, "application/json", {"id": name, "status": "starting", "urls": urls})

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[1]
                if self.path.startswith("/stream/"):
                    events = [("logs", REPLICATE_ECHO), ("output", "Hi")]
                    events += (
                        [("done", "{}")] if name == "logs" else [("error", json.dumps({"detail": REPLICATE_ECHO}))]
                    )
                    body = "".join(f"event: {kind}\ndata: {data}\n\n" for kind, data in events)
                    self.answer(200, "text/event-stream", body)
                else:
                    self.answer(200, "application/json", {"id": name, "status": "failed", "error": REPLICATE_ECHO})

            def answer(self, status: int, content_type: str, body: Any) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Gradio3App:
    """A Gradio 3 app with the Qwen Space's layout on 127.0.0.1: ``/config``,
    and a websocket queue whose event, once greeted, gets ``messages`` (a
    str is sent as is); with ``refuse``, the websocket upgrade is answered
    with that HTTP status and :data:`GRADIO_ECHO`."""

    def __init__(self, messages: Sequence[Any] = (), refuse: Optional[int] = None) -> None:
        self.messages = messages
        self.refuse = refuse
        config = json.loads(CONFIG.read_text())
        del config["protocol"]
        config["version"] = "3.37.0"
        self.config = config
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(sock,), daemon=True).start()

    def _answer(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        with sock, sock.makefile("rb") as reader:
            path = reader.readline().split()[1].decode()
            headers: Dict[str, str] = {}
            for line in iter(reader.readline, b""):
                if line == b"\r\n":
                    break
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if path.endswith("/config") or self.refuse is not None:
                status, body = (
                    (200, self.config) if path.endswith("/config") else (self.refuse, {"detail": GRADIO_ECHO})
                )
                data = json.dumps(body).encode()
                sock.sendall(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    f"Connection: close\r\n\r\n".encode()
                    + data
                )
                return
            sock.sendall(frames.upgrade_answer(headers["sec-websocket-key"]))
            parser = frames.FrameParser()

            def receive() -> None:
                while not parser.feed(reader.read1(65536)):
                    pass

            def send(message: Any) -> None:
                text = message if isinstance(message, str) else json.dumps(message)
                sock.sendall(frames.encode(frames.TEXT, text.encode()))

            try:
                send({"msg": "send_hash"})
                receive()
                send({"msg": "send_data"})
                receive()
                for message in self.messages:
                    send(message)
                while reader.read1(65536):  # until the client hangs up
                    pass
            except OSError:
                pass

    def stop(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()


# -- the sweep ------------------------------------------------------------------------


class Setup:
    """Servers started on first use, and providers built against them with
    passwords in their URLs; everything is stopped and closed at the end."""

    def __init__(self) -> None:
        self._stop: List[Callable[[], None]] = []
        self.shown: List[Any] = []  # objects whose repr the test checks
        self._replicate: Optional[ReplicateEmulator] = None
        self._echoing: Optional[EchoingReplicate] = None
        self._gradio: Optional[GradioEmulator] = None

    @property
    def replicate_emulator(self) -> ReplicateEmulator:
        if self._replicate is None:
            self._replicate = ReplicateEmulator(api_token=API_KEY).start()
            self._stop.append(self._replicate.stop)
        return self._replicate

    @property
    def echoing_replicate(self) -> EchoingReplicate:
        if self._echoing is None:
            self._echoing = EchoingReplicate()
            self._stop.append(self._echoing.stop)
        return self._echoing

    @property
    def gradio_emulator(self) -> GradioEmulator:
        if self._gradio is None:
            self._gradio = GradioEmulator().start()
            self._stop.append(self._gradio.stop)
        return self._gradio

    def gradio3(self, messages: Sequence[Any] = (), refuse: Optional[int] = None) -> Gradio3App:
        pytest.importorskip("websocket", reason="websocket-client is an optional extra")
        app = Gradio3App(messages, refuse)
        self._stop.append(app.stop)
        return app

    def replicate(self, base_url: str, **settings: Any) -> Replicate:
        provider = Replicate(
            api_key=API_KEY, base_url=with_password(base_url), timeout=Timeout(connect=5, read=5), **settings
        )
        return self._keep(provider)

    def space(self, url: str, **settings: Any) -> GradioSpace:
        space = GradioSpace(with_password(url), hf_token=HF_TOKEN, timeout=Timeout(connect=5, read=5), **settings)
        return self._keep(space)

    def client(self, **settings: Any) -> Client:
        client = Client(replicate_api_key=API_KEY, hf_token=HF_TOKEN, timeout=5, **settings)
        self.shown.append(client)
        self._stop.append(client.close)
        return client

    def _keep(self, provider: Any) -> Any:
        provider._transport.sleep = lambda seconds: None
        self.shown.append(provider)
        self._stop.append(provider.close)
        return provider

    def close(self) -> None:
        for stop in reversed(self._stop):
            stop()


@pytest.fixture
def setup():
    servers = Setup()
    yield servers
    servers.close()


class Outcome:
    """What a case produced: the error raised (of the type the case
    expects), whether the server repeated the credentials (then the message
    must show them masked), and a text the message must still show."""

    def __init__(self, error: Optional[BaseException] = None, *, echoed: bool = False, shows: str = "") -> None:
        self.error = error
        self.echoed = echoed
        self.shows = shows


def failure(kind: type, call: Callable[[], Any]) -> BaseException:
    with pytest.raises(kind) as caught:
        call()
    return caught.value


CASES: List[Callable[[Setup], Outcome]] = []


def case(function: Callable[[Setup], Outcome]) -> Callable[[Setup], Outcome]:
    CASES.append(function)
    return function


# Replicate


@case
def replicate_succeeds_and_logs_what_the_model_logged(s):
    provider = s.replicate(s.echoing_replicate.url + "/v1")
    assert provider.complete("acme/logs", "hi") == "Hi"
    return Outcome()


@case
def replicate_error_event_repeating_the_credentials(s):
    provider = s.replicate(s.echoing_replicate.url + "/v1")
    return Outcome(failure(PredictionError, lambda: provider.complete("acme/streamed", "hi")), echoed=True)


@case
def replicate_failed_prediction_repeating_the_credentials(s):
    provider = s.replicate(s.echoing_replicate.url + "/v1")
    return Outcome(failure(PredictionError, lambda: provider.complete("acme/polled", "hi")), echoed=True)


@case
def replicate_background_stream_of_a_failed_prediction(s):
    client = s.client(replicate_base_url=with_password(s.echoing_replicate.url + "/v1"))
    stream = client.stream("acme/streamed", "hi", background=True)
    s.shown.append(stream)
    return Outcome(failure(PredictionError, stream.read), echoed=True)


def replicate_status(status: int, kind: type) -> Callable[[Setup], Outcome]:
    def run(s):
        emulator = s.replicate_emulator
        emulator.inject_fault("create", status=status, body={"detail": REPLICATE_ECHO}, times=3)
        provider = s.replicate(emulator.base_url, max_retries=0)
        return Outcome(failure(kind, lambda: provider.complete(None, "hi")), echoed=True)

    run.__name__ = f"replicate_http_{status}_repeating_the_credentials"
    return case(run)


replicate_status(401, AuthenticationError)
replicate_status(404, ModelNotFoundError)
replicate_status(500, ServerError)


@case
def replicate_answer_that_is_not_json(s):
    emulator = s.replicate_emulator
    emulator.inject_fault("create", status=200, body=f"<html>{REPLICATE_ECHO}</html>".encode())
    provider = s.replicate(emulator.base_url)
    return Outcome(failure(ResponseError, lambda: provider.complete(None, "hi")), echoed=True)


@case
def replicate_lost_create_answer_names_the_url_to_check(s):
    emulator = s.replicate_emulator
    emulator.inject_fault("create", status=504, body={"detail": REPLICATE_ECHO})
    emulator.inject_fault("list", Fault(status=500, body={"detail": REPLICATE_ECHO}))
    provider = s.replicate(emulator.base_url, max_retries=0)
    error = failure(PredictionMayExistError, lambda: provider.complete(None, "hi"))
    return Outcome(error, echoed=True, shows=f"GET {emulator.base_url}/predictions")


@case
def replicate_nothing_listening(s):
    port = closed_port()
    provider = s.replicate(f"http://127.0.0.1:{port}/v1", max_retries=0)
    return Outcome(failure(APIConnectionError, lambda: provider.complete(None, "hi")), shows=f"127.0.0.1:{port}")


@case
def replicate_url_whose_port_is_not_a_number(s):
    provider = s.replicate("http://127.0.0.1:port/v1")
    return Outcome(failure(InvalidArgumentError, lambda: provider.complete(None, "hi")))


@case
def replicate_unreachable_proxy_with_a_password(s):
    proxy = with_password(f"http://127.0.0.1:{closed_port()}")
    provider = s.replicate(s.echoing_replicate.url + "/v1", proxy=proxy, max_retries=0)
    return Outcome(failure(APIConnectionError, lambda: provider.complete("acme/logs", "hi")), shows="proxy")


@case
def replicate_base_url_with_a_query(s):
    url = with_password("http://127.0.0.1:9/v1?token=") + API_KEY
    error = failure(InvalidArgumentError, lambda: Replicate(api_key=API_KEY, base_url=url))
    return Outcome(error, shows="'http://127.0.0.1:9/v1'")


@case
def replicate_base_url_that_is_not_http(s):
    url = with_password("ftp://127.0.0.1:9/v1")
    return Outcome(failure(InvalidArgumentError, lambda: Replicate(api_key=API_KEY, base_url=url)), shows="ftp://")


@case
def replicate_model_name_that_is_a_url(s):
    provider = s.replicate("http://127.0.0.1:9/v1")
    error = failure(ModelNotFoundError, lambda: provider.get_model(with_password("http://127.0.0.1:9/x")))
    return Outcome(error, shows="'http://127.0.0.1:9/x'")


# Gradio (Gradio 6 emulator: server-sent events)


@case
def gradio_succeeds(s):
    space = s.space(s.gradio_emulator.url)
    assert space.complete(None, "hi").endswith("you said: hi")
    assert space.get_model(space.src) == space.default_model == s.gradio_emulator.url
    return Outcome()


@case
def gradio_app_error_repeating_the_credentials(s):
    app = s.gradio_emulator
    app.responder = lambda query, history, system: Script(["Hi", " there"], error_after=1, error_detail=GRADIO_ECHO)
    space = s.space(app.url)
    return Outcome(failure(PredictionError, lambda: space.complete(None, "hi")), echoed=True)


@case
def gradio_config_not_found_repeating_the_credentials(s):
    app = s.gradio_emulator
    app.inject_fault("config", status=404, body={"detail": GRADIO_ECHO}, times=2)  # read, then read again
    space = s.space(app.url)
    error = failure(ModelNotFoundError, lambda: space.complete(None, "hi"))
    return Outcome(error, echoed=True, shows=f"No Gradio app at {app.url}")


@case
def gradio_join_failing_twice_reloads_the_layout(s):
    app = s.gradio_emulator
    app.inject_fault("join", status=500, body={"detail": GRADIO_ECHO}, times=2)
    space = s.space(app.url, max_retries=0)
    return Outcome(failure(ServerError, lambda: space.complete(None, "hi")), echoed=True, shows=app.url)


@case
def gradio_nothing_listening(s):
    space = s.space(f"http://127.0.0.1:{closed_port()}", max_retries=0)
    return Outcome(failure(APIConnectionError, lambda: space.complete(None, "hi")))


@case
def gradio_unknown_model_lists_the_space_without_its_password(s):
    space = s.space(s.gradio_emulator.url)
    error = failure(ModelNotFoundError, lambda: space.complete("other", "hi"))
    return Outcome(error, shows=s.gradio_emulator.url)


@case
def gradio_src_with_a_query(s):
    src = with_password("http://127.0.0.1:9/app?token=") + HF_TOKEN
    return Outcome(failure(InvalidArgumentError, lambda: GradioSpace(src)), shows="'http://127.0.0.1:9/app'")


@case
def gradio_src_that_is_not_a_url(s):
    src = f"{USER}:{PASSWORD}@127.0.0.1"
    return Outcome(failure(InvalidArgumentError, lambda: GradioSpace(src)), shows="'127.0.0.1'")


# Gradio 3 (websocket queue)


@case
def gradio3_app_error_and_log_repeating_the_credentials(s):
    failed = {"msg": "process_completed", "output": {"error": GRADIO_ECHO}, "success": False}
    app = s.gradio3([{"msg": "log", "log": GRADIO_ECHO, "level": "warning"}, failed])
    space = s.space(app.url)
    return Outcome(failure(PredictionError, lambda: space.complete(None, "hi")), echoed=True)


@case
def gradio3_unexpected_error_repeating_the_credentials(s):
    app = s.gradio3([{"msg": "unexpected_error", "message": GRADIO_ECHO, "success": False}])
    space = s.space(app.url)
    return Outcome(failure(ResponseError, lambda: space.complete(None, "hi")), echoed=True)


@case
def gradio3_update_whose_output_is_not_an_object(s):
    app = s.gradio3([{"msg": "process_generating", "output": GRADIO_ECHO, "success": True}])
    space = s.space(app.url)
    return Outcome(failure(ResponseError, lambda: space.complete(None, "hi")), echoed=True)


@case
def gradio3_message_that_is_not_json(s):
    app = s.gradio3([f"<html>{GRADIO_ECHO}</html>"])
    space = s.space(app.url)
    return Outcome(failure(ResponseError, lambda: space.complete(None, "hi")), echoed=True)


@case
def gradio3_upgrade_refused_repeating_the_credentials(s):
    app = s.gradio3(refuse=401)
    space = s.space(app.url)
    error = failure(AuthenticationError, lambda: space.complete(None, "hi"))
    return Outcome(error, echoed=True, shows=f"ws://{app.url.split('//')[1]}/queue/join")


# Client


@case
def client_routes_to_the_qwen_space_that_fails(s):
    app = s.gradio_emulator
    app.responder = lambda query, history, system: Script(["Hi", " there"], error_after=1, error_detail=GRADIO_ECHO)
    client = s.client(
        replicate_base_url=with_password(s.echoing_replicate.url + "/v1"), qwen_url=with_password(app.url)
    )
    error = failure(PredictionError, lambda: client.complete("qwen-2-72b", "hi"))
    s.shown += [client.models(), client.providers]
    return Outcome(error, echoed=True)


@case
def client_of_a_space_lists_it_without_its_password(s):
    space = s.space(s.gradio_emulator.url)
    client = Client([space])
    s.shown += [client, client.models()]
    assert client.provider_for(space.src) is space
    error = failure(ModelNotFoundError, lambda: client.complete("other", "hi"))
    return Outcome(error, shows=s.gradio_emulator.url)


@pytest.mark.parametrize("run", CASES, ids=[run.__name__ for run in CASES])
def test_no_secret_in_any_message_repr_or_log_line(run, setup, caplog):
    caplog.set_level(logging.DEBUG)  # every logger: the SDK's and urllib3's
    outcome = run(setup)
    shown = [caplog.text, *(repr(thing) for thing in setup.shown)]
    if outcome.error is not None:
        message = str(outcome.error)
        shown += shown_of(outcome.error)
        if outcome.echoed:  # the server's words reached the message, masked
            assert MASK in message or MASK in getattr(outcome.error, "detail", ""), message
        assert outcome.shows in message
    assert_no_secret(shown)


def test_the_sweep_saw_what_the_servers_repeated(setup, caplog):
    """The log lines of the sweep are not empty by accident: the model's
    and the app's log lines are there, masked."""
    caplog.set_level(logging.DEBUG)
    replicate_succeeds_and_logs_what_the_model_logged(setup)
    gradio3_app_error_and_log_repeating_the_credentials(setup)
    logged = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("prediction logs log: bad credentials: key ***") for line in logged), logged
    assert any(line.endswith(": bad credentials: token ***, password ***, header Basic ***") for line in logged)
    assert any(record.name.startswith("urllib3") for record in caplog.records)


# -- the command line ---------------------------------------------------------------------


def run_cli(argv: List[str], capsys) -> "tuple[int, str, str]":
    """``main(argv)`` in this process, its ``-v`` logging going to the
    captured stderr as it would to a terminal; the logging setup is put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []  # else basicConfig() leaves logging as the test runner set it
    out = io.StringIO()
    try:
        code = main(argv, out=out)
    finally:
        root.handlers, root.level = handlers, level
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out, captured.err


CLI_CASES = {
    "replicate_failed_prediction": (["chat", "-m", "acme/streamed", "hi"], 1, "***"),
    "replicate_401": (["chat", "hi"], 3, "HTTP 401"),
    "replicate_nothing_listening": (["--max-retries", "0", "chat", "hi"], 5, "Could not reach 127.0.0.1"),
    "replicate_url_with_a_query": (["chat", "hi"], 2, "--replicate-base-url (or REPLICATE_BASE_URL) must be"),
    "qwen_app_error": (["chat", "-m", "qwen-2-72b", "hi"], 1, "The app failed: bad credentials: token ***"),
    "qwen_url_with_a_query": (["chat", "-m", "qwen-2-72b", "hi"], 2, "--qwen-url must be"),
    "models": (["models"], 0, ""),
}


@pytest.mark.parametrize("name", sorted(CLI_CASES))
def test_no_secret_in_the_command_lines_output_with_debug_logging(name, setup, capsys, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", API_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)
    args, expected_code, fragment = CLI_CASES[name]
    app = setup.gradio_emulator
    app.responder = lambda query, history, system: Script(["Hi", " there"], error_after=1, error_detail=GRADIO_ECHO)
    base_url = {
        "replicate_failed_prediction": setup.echoing_replicate.url + "/v1",
        "replicate_401": setup.replicate_emulator.base_url,  # a fault: the credentials repeated in a 401
        "replicate_nothing_listening": f"http://127.0.0.1:{closed_port()}/v1",
        "replicate_url_with_a_query": f"http://127.0.0.1:9/v1?key={API_KEY}",
    }.get(name, setup.echoing_replicate.url + "/v1")
    if name == "replicate_401":
        setup.replicate_emulator.inject_fault("create", status=401, body={"detail": REPLICATE_ECHO})
    qwen_url = app.url + (f"/?token={HF_TOKEN}" if name == "qwen_url_with_a_query" else "")
    argv = ["-vv", "--replicate-base-url", with_password(base_url), "--qwen-url", with_password(qwen_url), *args]
    code, out, err = run_cli(argv, capsys)
    assert code == expected_code, err
    assert fragment in (err if code else out)
    if code == 0:
        assert "qwen-2-72b" in out
    elif "must be" not in fragment:  # a refused argument fails before anything is logged
        assert "DEBUG replicate_qwen_sdk" in err or "DEBUG urllib3" in err, err
    assert_no_secret([out, err])


# -- the helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, without, shown",
    [
        ("http://u:p@h:8/v1", "http://h:8/v1", "http://h:8/v1"),
        ("https://TOKEN@h/a?b=c#d", "https://h/a?b=c#d", "https://h/a"),
        ("http://u:p@ss@h/x", "http://h/x", "http://h/x"),  # an unescaped "@" in the password
        ("u:p@h/x", "h/x", "h/x"),  # no scheme
        ("http://[::1]:8/x", "http://[::1]:8/x", "http://[::1]:8/x"),
        ("http://h:port/x", "http://h:port/x", "http://h:port/x"),
        ("owner/name", "owner/name", "owner/name"),
        ("", "", ""),
    ],
)
def test_urls_are_shown_without_userinfo_query_or_fragment(url, without, shown):
    assert without_userinfo(url) == without
    assert shown_url(url) == shown


def test_a_value_that_is_not_a_string_is_shown_by_its_type():
    assert shown_url(b"http://u:p@h") == "<bytes>"
    assert url_secrets(None) == ()


@pytest.mark.parametrize(
    "url, secrets",
    [
        ("http://h/x", set()),
        ("http://user:pw@h", {"user:pw", "pw", base64.b64encode(b"user:pw").decode()}),
        ("http://user:p%40w@h", {"user:p%40w", "p%40w", "p@w", base64.b64encode(b"user:p@w").decode()}),
        ("https://TOKEN@h", {"TOKEN"}),
    ],
)
def test_the_credentials_of_a_url_in_every_form_a_server_may_repeat(url, secrets):
    assert set(url_secrets(url)) == secrets


def test_a_short_secret_inside_a_longer_one_leaves_nothing_of_it_shown():
    provider = Replicate(api_key="abc123XYZ789", base_url="http://u:123@127.0.0.1:9/v1")
    assert provider._transport.redact("key abc123XYZ789, password 123") == "key ***, password ***"


def test_a_secret_cut_by_the_length_limit_leaves_none_of_it_shown(setup):
    emulator = setup.replicate_emulator
    detail = "x" * 490 + f" {API_KEY} {PASSWORD}"  # the cut at 500 characters falls inside the key
    emulator.inject_fault("create", status=400, body={"detail": detail})
    provider = setup.replicate(emulator.base_url)
    error = failure(ResponseError, lambda: provider.complete(None, "hi"))
    assert error.detail == "x" * 490 + f" {MASK} {MASK}"
    assert API_KEY[:6] not in str(error)


# -- a URL's credentials and the provider's own token ----------------------------


def test_with_a_token_a_urls_credentials_are_not_sent_and_a_warning_says_so(caplog):
    with ReplicateEmulator() as emulator:
        emulator.add_model("owner/model", Script(["Hi", "!"]))
        with caplog.at_level(logging.WARNING, logger="replicate_qwen_sdk"):
            provider = Replicate(api_key=emulator.api_token, base_url=with_password(emulator.base_url))
        assert provider.complete("owner/model", "hello") == "Hi!"
        sent = {request.headers.get("Authorization") for request in emulator.requests}
    assert sent == {f"Bearer {emulator.api_token}"}  # never the URL's Basic credentials in its place
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert any("base_url carries a user name or password" in message for message in warnings)
    assert_no_secret(warnings)


def test_without_a_token_a_urls_credentials_go_as_basic_auth(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with GradioEmulator() as emulator:
        space = GradioSpace(with_password(emulator.url))
        assert space.complete(None, "hello")
        sent = {request.headers.get("Authorization") for request in emulator.requests}
    assert sent == {"Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


def test_a_model_name_that_is_a_url_with_a_password_is_not_repeated_by_the_client():
    client = Client(replicate_api_key=API_KEY, providers=[GradioSpace("http://127.0.0.1:9")])
    with pytest.raises(ModelNotFoundError) as caught:
        client.provider_for(with_password("http://127.0.0.1:8/other"))
    assert_no_secret(shown_of(caught.value))
    assert "127.0.0.1:8/other" in str(caught.value)
