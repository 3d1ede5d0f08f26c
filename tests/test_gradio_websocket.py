"""Gradio 3's websocket queue: a loopback websocket server plays the app's
side message by message; one test runs a real Gradio 3 app when
``GRADIO3_PYTHON`` names a Python that has it."""

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from typing import Any, Callable, Dict, List, Optional

import pytest

pytest.importorskip("websocket", reason="websocket-client is an optional extra")

from gradio_apps import frames  # noqa: E402
from replicate_qwen_sdk.errors import (  # noqa: E402
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    ModelNotFoundError,
    QueueFullError,
    ResponseError,
    ServerError,
)
from replicate_qwen_sdk.providers.gradio.websocket import QueueSocket, queue_url  # noqa: E402
from replicate_qwen_sdk.timeouts import Deadline  # noqa: E402

TOKEN = "hf_websocket_test_secret_0123456789"
DATA = [None, [["hello", ""]], "You are helpful.", 1024]


# -- a loopback websocket server ------------------------------------------------


class Peer:
    """The app's side of one websocket connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")
        self.path = ""
        self.headers: Dict[str, str] = {}
        self.received: List[str] = []  # every text message from the client
        self.client_closed = threading.Event()  # the client sent a close frame
        self._parser = frames.FrameParser()
        self._pending: List[frames.Frame] = []

    def handshake(self, reject: Optional[int] = None) -> None:
        self.path = self.file.readline().split()[1].decode()
        while True:
            line = self.file.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if reject is not None:
            body = json.dumps({"detail": f"refused {self.headers.get('authorization')}"}).encode()
            self.sock.sendall(
                f"HTTP/1.1 {reject} Refused\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return
        self.sock.sendall(frames.upgrade_answer(self.headers["sec-websocket-key"]))

    def send_text(self, text: str) -> None:
        self.sock.sendall(frames.encode(frames.TEXT, text.encode()))

    def send(self, message: Dict[str, Any]) -> None:
        self.send_text(json.dumps(message))

    def send_close(self) -> None:
        try:
            self.sock.sendall(frames.close_frame())
        except OSError:  # the client is already gone
            pass

    def recv(self) -> Optional[str]:
        """The client's next text message; ``None`` on its close frame or at EOF."""
        while True:
            while not self._pending:
                data = self.file.read1(65536)
                if not data:
                    return None
                self._pending += self._parser.feed(data)
            frame = self._pending.pop(0)
            if frame.opcode == frames.CLOSE:
                self.client_closed.set()
                return None
            text = frame.text()
            if text is not None:
                self.received.append(text)
                return text

    def drop(self) -> None:
        """End the TCP connection without a close frame (FIN)."""
        self.sock.shutdown(socket.SHUT_RDWR)

    def reset(self) -> None:
        """Abort the TCP connection (RST)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.file.close()
        self.sock.close()


class LoopbackApp:
    """A websocket server on 127.0.0.1 running ``script(peer)`` for each connection."""

    def __init__(self, script: Callable[[Peer], None], reject: Optional[int] = None) -> None:
        self.script = script
        self.reject = reject
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/sub/"
        self.peers: List[Peer] = []
        self.errors: List[BaseException] = []
        self.upgraded = threading.Event()  # a connection was upgraded
        self.finished = threading.Event()  # a script returned
        self.release = threading.Event()  # lets waiting scripts end at teardown
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.settimeout(10)
            peer = Peer(sock)
            self.peers.append(peer)
            thread = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, peer: Peer) -> None:
        try:
            peer.handshake(self.reject)
            if self.reject is None:
                self.upgraded.set()
                self.script(peer)
        except BaseException as exc:  # reported by the fixture
            self.errors.append(exc)
        finally:
            self.finished.set()

    @property
    def peer(self) -> Peer:
        assert len(self.peers) == 1, f"{len(self.peers)} connections"
        return self.peers[0]

    def stop(self) -> None:
        self.release.set()
        sockets = [self.listener] + [peer.sock for peer in self.peers]
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept() or recv()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        for peer in self.peers:
            peer.file.close()
        for sock in sockets:
            sock.close()


@pytest.fixture
def app():
    """``app(script)`` starts a :class:`LoopbackApp`; its script must not fail."""
    started: List[LoopbackApp] = []

    def start(script: Callable[[Peer], None], **options: Any) -> LoopbackApp:
        server = LoopbackApp(script, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    for server in started:
        assert not server.errors, server.errors


def queue_socket(server: LoopbackApp, **overrides: Any) -> QueueSocket:
    settings: Dict[str, Any] = dict(
        fn_index=3,
        session_hash="sess1",
        data=DATA,
        headers={"Authorization": f"Bearer {TOKEN}"},
        connect_timeout=5,
        read_timeout=5,
        deadline=Deadline(None),
    )
    settings.update(overrides)
    return QueueSocket(server.base_url, **settings)


def greet(peer: Peer) -> None:
    """The handshake as Gradio 3.37 runs it."""
    peer.send({"msg": "send_hash"})
    peer.recv()
    peer.send({"msg": "estimation", "rank": 0, "queue_size": 1, "rank_eta": 0.2})
    peer.send({"msg": "send_data"})
    peer.recv()


def generating(text: str) -> Dict[str, Any]:
    output = {"data": [[["hello", text]]], "is_generating": True, "duration": 0.05}
    return {"msg": "process_generating", "output": output, "success": True}


EVENT = [
    {"msg": "process_starts"},
    generating("Hi"),
    {"msg": "log", "log": "warming up", "level": "info"},
    {"msg": "progress", "progress_data": [{"index": 1, "length": 3, "unit": "steps"}]},
    generating("Hi there"),
    generating("Hi there, friend"),
    {"msg": "process_completed", "output": generating("Hi there, friend")["output"], "success": True},
]


# -- the handshake and the event -----------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://h:7860", "ws://h:7860/queue/join"),
        ("http://h:7860/sub/", "ws://h:7860/sub/queue/join"),
        ("https://owner-name.hf.space", "wss://owner-name.hf.space/queue/join"),
        ("HTTPS://h/a/b?__theme=dark", "wss://h/a/b/queue/join?__theme=dark"),
    ],
)
def test_queue_url(base_url, expected):
    assert queue_url(base_url) == expected


@pytest.mark.parametrize("base_url", ["ftp://h/", "h:7860", ""])
def test_queue_url_refuses_what_is_not_http(base_url):
    with pytest.raises(InvalidArgumentError):
        queue_url(base_url)


def test_hash_then_data_then_every_message_in_order_and_the_client_closes_first(app):
    def script(peer: Peer) -> None:
        greet(peer)
        for message in EVENT:
            peer.send(message)
        # Gradio closes too, but the client must not wait for it.
        assert peer.recv() is None
        peer.send_close()

    server = app(script)
    events = queue_socket(server)
    events.open()
    started = time.monotonic()
    received = list(events.messages())
    elapsed = time.monotonic() - started

    assert received == EVENT
    assert elapsed < 2, "the client waited for the app to close"
    assert server.finished.wait(5)
    peer = server.peer
    assert peer.client_closed.is_set()
    assert peer.path == "/sub/queue/join"
    assert peer.headers["authorization"] == f"Bearer {TOKEN}"
    hash_message, data_message = (json.loads(text) for text in peer.received)
    assert list(hash_message.items()) == [("fn_index", 3), ("session_hash", "sess1")]
    assert list(data_message.items()) == [
        ("data", DATA),
        ("event_data", None),
        ("fn_index", 3),
        ("session_hash", "sess1"),
    ]
    assert not any(TOKEN in text for text in peer.received)
    events.close()  # once more: harmless


def test_a_failed_event_is_handed_on_as_sent(app):
    failure = {"msg": "process_completed", "output": {"error": "'boom'"}, "success": False}

    def script(peer: Peer) -> None:
        greet(peer)
        peer.send({"msg": "process_starts"})
        peer.send(failure)
        peer.recv()

    events = queue_socket(app(script))
    events.open()
    assert list(events.messages()) == [{"msg": "process_starts"}, failure]


def test_queue_full(app):
    def script(peer: Peer) -> None:
        peer.send({"msg": "send_hash"})
        peer.recv()
        peer.send({"msg": "queue_full"})
        peer.send_close()
        assert peer.recv() is None

    server = app(script)
    with pytest.raises(QueueFullError) as caught:
        queue_socket(server).open()
    assert isinstance(caught.value, ServerError)
    assert caught.value.status_code is None
    assert caught.value.detail == "queue_full"
    assert server.finished.wait(5)
    assert len(server.peer.received) == 1  # the hash; never the data


def test_the_app_closes_before_greeting(app):
    with pytest.raises(APIConnectionError, match="Check that the app is running.$"):
        queue_socket(app(lambda peer: peer.drop())).open()


def test_the_app_drops_an_unknown_fn_index(app):
    def script(peer: Peer) -> None:
        peer.send({"msg": "send_hash"})
        peer.recv()
        peer.drop()

    with pytest.raises(APIConnectionError, match="fn_index 99"):
        queue_socket(app(script), fn_index=99).open()


def test_nothing_listening():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    events = QueueSocket(
        f"http://127.0.0.1:{port}",
        fn_index=0,
        session_hash="s",
        data=[],
        headers={},
        connect_timeout=5,
        read_timeout=5,
        deadline=Deadline(None),
    )
    with pytest.raises(
        APIConnectionError, match=rf"Could not reach the app's queue at ws://127\.0\.0\.1:{port}/queue/join"
    ):
        events.open()


@pytest.mark.parametrize(
    ("status", "error"), [(401, AuthenticationError), (404, ModelNotFoundError), (503, ServerError)]
)
def test_an_http_status_instead_of_the_upgrade(app, status, error):
    with pytest.raises(error) as caught:
        queue_socket(app(lambda peer: None, reject=status)).open()
    assert caught.value.status_code == status
    assert caught.value.detail == "refused ***"  # the app echoed the credential
    assert TOKEN not in str(caught.value)


def test_the_app_drops_the_connection_mid_event(app):
    def script(peer: Peer) -> None:
        greet(peer)
        peer.send(EVENT[0])
        peer.send(EVENT[1])
        peer.drop()

    events = queue_socket(app(script))
    events.open()
    assert list(events.messages()) == EVENT[:2]  # the caller decides what that means


def test_a_reset_connection_mid_event(app):
    def script(peer: Peer) -> None:
        greet(peer)
        peer.reset()

    events = queue_socket(app(script))
    events.open()
    with pytest.raises(APIConnectionError, match="broke while reading the event's updates"):
        list(events.messages())


@pytest.mark.parametrize("where", ["handshake", "event"])
def test_a_message_that_is_not_json(app, where):
    def script(peer: Peer) -> None:
        if where == "event":
            greet(peer)
        peer.send_text("<html>Bad gateway</html>")
        peer.recv()

    events = queue_socket(app(script))
    with pytest.raises(ResponseError, match="not a JSON object"):
        events.open()
        list(events.messages())


# -- time limits and close() --------------------------------------------------------


def silent_after(messages: int) -> Callable[[Peer], None]:
    """A script that greets the event, sends ``messages`` of it, then waits in silence."""

    def script(peer: Peer) -> None:
        if messages >= 0:
            greet(peer)
        for message in EVENT[: max(messages, 0)]:
            peer.send(message)
        peer.recv()  # until the client goes away

    return script


def test_read_timeout_while_streaming(app):
    events = queue_socket(app(silent_after(1)), read_timeout=0.3)
    events.open()
    stream = events.messages()
    assert next(stream) == EVENT[0]
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="for 0.3 s"):
        next(stream)
    assert 0.25 <= time.monotonic() - started < 2


def test_read_timeout_in_the_queue(app):
    events = queue_socket(app(silent_after(-1)), read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="greet the event"):
        events.open()
    assert time.monotonic() - started < 2


def test_the_overall_deadline(app):
    events = queue_socket(app(silent_after(1)), read_timeout=30, deadline=Deadline(0.4))
    events.open()
    started = time.monotonic()
    with pytest.raises(APITimeoutError, match="overall deadline of 0.4 s"):
        list(events.messages())
    assert time.monotonic() - started < 2


def test_close_from_another_thread_ends_a_blocked_read(app):
    server = app(silent_after(1))
    events = queue_socket(server, read_timeout=30)
    events.open()
    received: List[dict] = []
    outcome: Dict[str, Any] = {}
    first = threading.Event()

    def consume() -> None:
        try:
            for message in events.messages():
                received.append(message)
                first.set()
            outcome["ended"] = True
        except BaseException as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=consume)
    reader.start()
    assert first.wait(5)
    started = time.monotonic()
    events.close()
    reader.join(5)
    assert not reader.is_alive()
    assert time.monotonic() - started < 1
    assert outcome == {"ended": True}
    assert received == EVENT[:1]
    assert server.finished.wait(5)  # the app saw the connection end
    events.close()


def test_close_from_another_thread_interrupts_open(app):
    server = app(silent_after(-1))
    events = queue_socket(server, read_timeout=30)
    outcome: Dict[str, BaseException] = {}

    def join() -> None:
        try:
            events.open()
        except BaseException as exc:
            outcome["error"] = exc

    opener = threading.Thread(target=join)
    opener.start()
    assert server.upgraded.wait(5)
    started = time.monotonic()
    events.close()
    opener.join(5)
    assert not opener.is_alive()
    assert time.monotonic() - started < 1
    assert isinstance(outcome.get("error"), APIConnectionError), outcome


def test_close_before_open():
    events = QueueSocket(
        "http://127.0.0.1:9",
        fn_index=0,
        session_hash="s",
        data=[],
        headers={},
        connect_timeout=5,
        read_timeout=5,
        deadline=Deadline(None),
    )
    events.close()
    with pytest.raises(APIConnectionError, match="closed by the caller"):
        events.open()


def test_without_websocket_client(monkeypatch, app):
    monkeypatch.setitem(sys.modules, "websocket", None)
    with pytest.raises(InvalidArgumentError, match=r"pip install 'replicate_qwen_sdk\[gradio3\]'"):
        queue_socket(app(lambda peer: None)).open()


# -- a real Gradio 3 app -----------------------------------------------------------

GRADIO3_APP = textwrap.dedent(
    """
    import sys

    import gradio as gr


    def echo(text):
        words = []
        for word in text.split():
            words.append(word)
            yield " ".join(words)


    with gr.Blocks() as demo:
        box = gr.Textbox()
        out = gr.Textbox()
        box.submit(echo, box, out, api_name="echo")

    demo.queue().launch(server_name="127.0.0.1", server_port=int(sys.argv[1]))
    """
)


@pytest.fixture(scope="module")
def gradio3_app(tmp_path_factory):
    """A real Gradio 3 app on 127.0.0.1: ``(base_url, config)``."""
    python = os.environ.get("GRADIO3_PYTHON")
    if not python:
        pytest.skip("set GRADIO3_PYTHON to a Python with gradio 3.x to run this")
    folder = tmp_path_factory.mktemp("gradio3")
    script = folder / "app.py"
    script.write_text(GRADIO3_APP)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    log = open(folder / "server.log", "w+")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", no_proxy="127.0.0.1,localhost")
    process = subprocess.Popen(
        [python, str(script), str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(folder)
    )
    try:
        config = None
        give_up = time.monotonic() + 120
        while config is None:
            if process.poll() is not None or time.monotonic() > give_up:
                log.seek(0)
                pytest.fail(f"the Gradio 3 app did not start: {log.read()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/config", timeout=2) as response:
                    config = json.load(response)
            except OSError:
                time.sleep(0.1)
        assert config["version"].strip().startswith("3."), config["version"]
        yield base_url, config
    finally:
        process.kill()
        process.wait(10)
        log.close()


def test_a_real_gradio3_event(gradio3_app):
    base_url, config = gradio3_app
    fn_index = next(i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name") == "echo")

    def run(text: str, session_hash: str) -> List[dict]:
        events = QueueSocket(
            base_url,
            fn_index=fn_index,
            session_hash=session_hash,
            data=[text],
            headers={},
            connect_timeout=5,
            read_timeout=30,
            deadline=Deadline(60),
        )
        events.open()
        return list(events.messages())

    messages = run("hello gradio three", "live1")
    kinds = [m["msg"] for m in messages]
    assert kinds[0] == "process_starts" and kinds[-1] == "process_completed", kinds
    updates = [m["output"]["data"] for m in messages if m["msg"] == "process_generating"]
    assert updates == [["hello"], ["hello gradio"], ["hello gradio three"]]
    assert messages[-1]["success"] is True
    assert messages[-1]["output"]["data"] == ["hello gradio three"]

    # The client closed at once, so the app's only worker is free for the next event.
    started = time.monotonic()
    assert run("again", "live2")[-1]["output"]["data"] == ["again"]
    assert time.monotonic() - started < 3


def test_a_real_gradio3_app_drops_an_unknown_fn_index(gradio3_app):
    base_url, config = gradio3_app
    events = QueueSocket(
        base_url,
        fn_index=len(config["dependencies"]) + 5,
        session_hash="live3",
        data=[],
        headers={},
        connect_timeout=5,
        read_timeout=10,
        deadline=Deadline(30),
    )
    with pytest.raises(APIConnectionError, match="fn_index"):
        events.open()
