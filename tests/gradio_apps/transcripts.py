"""Record what a real Gradio server answers the SDK, and answer the same
again from the recording.

* :class:`RecordingProxy` sits on 127.0.0.1 in front of a real server,
  forwards every request and keeps each exchange: method, path, request
  body, status, content type and the exact response bytes (event streams
  included, forwarded as they arrive). A websocket upgrade (Gradio 3's
  ``GET /queue/join``) is forwarded with its ``101`` answer, then the
  connection's bytes are carried both ways as they come; the exchange is
  kept as ``{"method": "WS", "path": ..., "status": 101, "messages": [...]}``
  where ``messages`` holds the text messages of both sides, parsed JSON, in
  the order the proxy passed them on: ``{"from": "server" | "client",
  "message": ...}``. (An upgrade the server refuses is kept like an HTTP
  exchange, its status, content type and body, with no messages.)
* :class:`TranscriptServer` answers from those exchanges: each request gets
  the response of the first unused exchange with the same method, path and
  body (the session hash aside, which is random per call). A request the
  real server never saw gets HTTP 599 naming it, so a change in what the SDK
  sends fails a replay as plainly as a change in what it understands.
  A websocket upgrade is answered on the same port: the server's messages
  that open the recorded connection are sent; the client's first message
  picks the first unused ``WS`` exchange of the path whose first client
  message has the same ``fn_index``; from there the recording is played in
  its order, a server message only once the client messages recorded before
  it have arrived, each equal to the recorded one (the session hash aside).
  The socket is closed after the last recorded message, or at the first
  client message that differs (listed in ``misses`` like a missed request).
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import socket
import threading
from typing import Any, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlsplit

import requests

from gradio_apps import frames
from replicate_qwen_sdk.testing import LoopbackServer, RecordedRequest
from replicate_qwen_sdk.testing._server import RequestHandler

#: Request headers passed on to the real server.
_FORWARDED = ("Accept", "Content-Type", "Authorization")
#: Upgrade request headers not passed on: the proxy sets the host, and reads
#: frames without extensions (compression).
_NOT_UPGRADED = ("host", "sec-websocket-extensions")
#: Seconds the replay waits for a client message the recording has.
_CLIENT_SILENCE = 30.0


def _normalized(body: Any) -> Any:
    """A request body without what differs on every call."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "session_hash"}
    return body


def _parsed(text: str) -> Any:
    """A websocket text message: its JSON, or the text if it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_upgrade(headers: Any) -> bool:
    return (headers.get("Upgrade") or "").lower() == "websocket"


def _read_head(sock: socket.socket) -> Tuple[bytes, bytes]:
    """A response head from ``sock``, and the bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection before answering the upgrade")
        data += chunk
    end = data.index(b"\r\n\r\n") + 4
    return data[:end], data[end:]


def _head_fields(head: bytes) -> Dict[str, str]:
    """The header fields of a response head, by lowercase name."""
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines if line)}


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up between requests is no news


class RecordingProxy:
    """A proxy on 127.0.0.1 that keeps every exchange with ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.exchanges: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if _is_upgrade(self.headers):
                    proxy._tunnel(self)
                else:
                    proxy._forward(self, "GET")

            def do_POST(self) -> None:
                proxy._forward(self, "POST")

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {name: handler.headers[name] for name in _FORWARDED if handler.headers.get(name)}
        upstream = requests.request(
            method, self.upstream + handler.path, data=raw or None, headers=headers, stream=True, timeout=120
        )
        parts = urlsplit(handler.path)
        exchange: Dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "request": json.loads(raw) if raw else None,
            "status": upstream.status_code,
            "content_type": upstream.headers.get("Content-Type", ""),
            "body": "",
        }
        with self._lock:
            self.exchanges.append(exchange)
        handler.send_response(upstream.status_code)
        handler.send_header("Content-Type", exchange["content_type"])
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        received = bytearray()
        try:
            for chunk in upstream.raw.stream(65536, decode_content=True):
                received += chunk
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (a cancel): the recording ends here
        finally:
            upstream.close()
            exchange["body"] = received.decode("utf-8")

    def _tunnel(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        """Forward a websocket upgrade, then carry the connection's bytes both
        ways, keeping the text messages of each side in order."""
        handler.close_connection = True
        target = urlsplit(self.upstream)
        upstream = socket.create_connection((target.hostname, target.port or 80), timeout=120)
        try:
            head = [f"GET {target.path}{handler.path} HTTP/1.1", f"Host: {target.netloc}"]
            head += [f"{name}: {value}" for name, value in handler.headers.items() if name.lower() not in _NOT_UPGRADED]
            upstream.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            answer, early = _read_head(upstream)
            exchange: Dict[str, Any] = {
                "method": "WS",
                "path": urlsplit(handler.path).path,
                "status": int(answer.split(b" ", 2)[1]),
                "messages": [],
            }
            with self._lock:
                self.exchanges.append(exchange)
            if exchange["status"] != 101:
                return self._refused(handler, upstream, exchange, answer, early)
            handler.connection.sendall(answer)
            from_server = itertools.chain([early], iter(lambda: upstream.recv(65536), b""))
            from_client = iter(lambda: handler.rfile.read1(65536), b"")
            downstream = threading.Thread(
                target=self._relay, args=(from_server, handler.connection, "server", exchange), daemon=True
            )
            downstream.start()
            self._relay(from_client, upstream, "client", exchange)
            downstream.join(30)
        finally:
            upstream.close()

    def _refused(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        upstream: socket.socket,
        exchange: Dict[str, Any],
        answer: bytes,
        early: bytes,
    ) -> None:
        """Pass on an HTTP answer to an upgrade, and keep it like an HTTP exchange's."""
        fields = _head_fields(answer)
        body = early
        while len(body) < int(fields.get("content-length") or 0):
            chunk = upstream.recv(65536)
            if not chunk:
                break
            body += chunk
        exchange.update(content_type=fields.get("content-type", ""), body=body.decode("utf-8", "replace"))
        handler.connection.sendall(answer + body)

    def _relay(self, chunks: Iterable[bytes], sink: socket.socket, side: str, exchange: Dict[str, Any]) -> None:
        """Pass ``side``'s bytes on to ``sink``; each text message is kept
        before the bytes that complete it are passed on, so the recorded
        order is one the other side could see."""
        parser = frames.FrameParser()
        try:
            for chunk in chunks:
                for frame in parser.feed(chunk):
                    text = frame.text()
                    if text is not None:
                        with self._lock:
                            exchange["messages"].append({"from": side, "message": _parsed(text)})
                sink.sendall(chunk)
        except OSError:
            pass  # either side hung up: the other one learns it below
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class _ReplaySocket:
    """The server's side of a websocket connection on the replay server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._parser = frames.FrameParser()
        self._pending: List[frames.Frame] = []

    async def send(self, message: Any) -> None:
        self._writer.write(frames.encode(frames.TEXT, json.dumps(message).encode("utf-8")))
        await self._writer.drain()

    async def receive(self, timeout: float = _CLIENT_SILENCE) -> Any:
        """The client's next text message, parsed; ``None`` once it closes,
        hangs up or stays silent for ``timeout`` seconds."""
        try:
            while True:
                while not self._pending:
                    data = await asyncio.wait_for(self._reader.read(65536), timeout)
                    if not data:
                        return None
                    self._pending += self._parser.feed(data)
                frame = self._pending.pop(0)
                if frame.opcode == frames.CLOSE:
                    return None
                text = frame.text()
                if text is not None:
                    return _parsed(text)
        except (ConnectionError, asyncio.TimeoutError):
            return None

    async def close(self) -> List[Any]:
        """Send a close frame; the messages the client still sends before it closes too."""
        try:
            self._writer.write(frames.close_frame())
            await self._writer.drain()
        except ConnectionError:
            return []  # the client is already gone
        extra: List[Any] = []
        while True:
            message = await self.receive(timeout=5)
            if message is None:
                return extra
            extra.append(message)


class _ReplayHandler(RequestHandler):
    async def do_GET(self) -> None:
        if _is_upgrade(self.headers):
            return await self._play_socket()
        await self._answer("GET", None)

    async def do_POST(self) -> None:
        await self._answer("POST", self.read_json())

    def _miss(self, detail: str) -> str:
        detail = f"not in the recording: {detail}"
        self.owner.misses.append(detail)
        return detail

    async def _answer(self, method: str, body: Any) -> None:
        path = urlsplit(self.path).path
        self.owner.record(RecordedRequest(method, self.path, dict(self.headers), body, path))
        exchange = self.owner.take(method, path, body)
        if exchange is None:
            detail = self._miss(f"{method} {path} {json.dumps(_normalized(body))[:500]}")
            return await self.send_json(599, {"detail": detail})
        payload = exchange["body"].encode("utf-8")
        if exchange["content_type"].startswith("text/event-stream"):
            await self.start_chunked(exchange["content_type"])
            await self.write_chunk(payload)
            return await self.end_chunked()
        await self.send_json(exchange["status"], payload, content_type=exchange["content_type"] or "text/plain")

    async def _play_socket(self) -> None:
        path = urlsplit(self.path).path
        self.owner.record(RecordedRequest("GET", self.path, dict(self.headers), None, path))
        self.close_connection = True
        opening = self.owner.first_socket(path)
        if opening is None:
            return await self.send_json(599, {"detail": self._miss(f"WS {path}")})
        if opening["status"] != 101:
            self.owner.use(opening)
            payload = opening["body"].encode("utf-8")
            return await self.send_json(
                opening["status"], payload, content_type=opening["content_type"] or "text/plain"
            )
        self._writer.write(frames.upgrade_answer(self.headers.get("Sec-WebSocket-Key") or ""))
        ws = _ReplaySocket(self.owner.reader_of(self._writer), self._writer)
        leading = _leading(opening)
        for message in leading:
            await ws.send(message)
        first = await ws.receive() if _first_sent(opening) is not None else None
        exchange = self.owner.take_socket(path, leading, first)
        if exchange is None:
            self._miss(f"WS {path} {_described(first)}")
        else:
            await self._play(ws, path, exchange["messages"][len(leading) :], first)
        for message in await ws.close():
            self._miss(f"WS {path} after the last recorded message: {_described(message)}")

    async def _play(self, ws: _ReplaySocket, path: str, entries: List[Dict[str, Any]], first: Any) -> None:
        """The rest of a recorded connection, in order, ``first`` being the
        client message already received; stops at the first client message
        that differs from the recorded one."""
        received = [first]
        count = 0
        for entry in entries:
            if entry["from"] == "server":
                await ws.send(entry["message"])
                continue
            count += 1
            message = received.pop() if received else await ws.receive()
            if _normalized(message) != _normalized(entry["message"]):
                self._miss(f"WS {path} client message {count}: {_compared(message, entry['message'])}")
                return


def _leading(exchange: Dict[str, Any]) -> List[Any]:
    """The server messages of a recorded connection before the client's first."""
    leading = []
    for entry in exchange["messages"]:
        if entry["from"] == "client":
            break
        leading.append(entry["message"])
    return leading


def _first_sent(exchange: Dict[str, Any]) -> Any:
    """The client's first message in a recorded connection; ``None`` if it sent none."""
    return next((entry["message"] for entry in exchange["messages"] if entry["from"] == "client"), None)


def _same_step(recorded: Any, sent: Any) -> bool:
    """Whether two first client messages join the queue with the same step
    (``None``: no message)."""

    def fn_index(message: Any) -> Any:
        return message.get("fn_index") if isinstance(message, dict) else None

    return (recorded is None) == (sent is None) and fn_index(recorded) == fn_index(sent)


def _described(message: Any) -> str:
    if message is None:
        return "(the client closed the socket or went silent)"
    return json.dumps(_normalized(message))[:500]


def _compared(sent: Any, recorded: Any) -> str:
    """Where a client message first differs from the recorded one, with a little of each around it."""
    if sent is None:
        return f"{_described(sent)}; recorded: {_described(recorded)}"
    mine, theirs = json.dumps(_normalized(sent)), json.dumps(_normalized(recorded))
    at = next((i for i, pair in enumerate(zip(mine, theirs)) if pair[0] != pair[1]), min(len(mine), len(theirs)))
    start = max(at - 30, 0)
    lead = "..." if start else ""
    return f"differs at character {at}: sent {lead}{mine[start : at + 50]}; recorded {lead}{theirs[start : at + 50]}"


class TranscriptServer(LoopbackServer):
    """Answers a client from a list of recorded exchanges."""

    handler_class = _ReplayHandler

    def __init__(self, exchanges: List[Dict[str, Any]]) -> None:
        super().__init__()
        self.unused = list(exchanges)
        #: Requests and websocket messages that matched no recorded exchange.
        self.misses: List[str] = []
        self._take_lock = threading.Lock()
        self._readers: Dict[asyncio.StreamWriter, asyncio.StreamReader] = {}

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._readers[writer] = reader  # an upgraded connection's handler reads its frames
        try:
            await super()._serve_connection(reader, writer)
        finally:
            del self._readers[writer]

    def reader_of(self, writer: asyncio.StreamWriter) -> asyncio.StreamReader:
        """The reading side of the connection ``writer`` writes to."""
        return self._readers[writer]

    def take(self, method: str, path: str, body: Any) -> Optional[Dict[str, Any]]:
        wanted = _normalized(body)
        with self._take_lock:
            for position, exchange in enumerate(self.unused):
                if (
                    exchange["method"] == method
                    and exchange["path"] == path
                    and _normalized(exchange["request"]) == wanted
                ):
                    return self.unused.pop(position)
        return None

    def first_socket(self, path: str) -> Optional[Dict[str, Any]]:
        """The first unused websocket exchange of ``path``, left unused."""
        with self._take_lock:
            return next((e for e in self.unused if e["method"] == "WS" and e["path"] == path), None)

    def use(self, exchange: Dict[str, Any]) -> None:
        """Count ``exchange`` as used."""
        with self._take_lock:
            self.unused[:] = [e for e in self.unused if e is not exchange]

    def take_socket(self, path: str, leading: List[Any], first: Any) -> Optional[Dict[str, Any]]:
        """The first unused upgraded websocket exchange of ``path`` that opens
        with the server messages ``leading`` and whose first client message
        has the ``fn_index`` of ``first`` (``None``: the client sent none)."""
        with self._take_lock:
            for position, exchange in enumerate(self.unused):
                if (
                    exchange["method"] == "WS"
                    and exchange["path"] == path
                    and exchange["status"] == 101
                    and _leading(exchange) == leading
                    and _same_step(_first_sent(exchange), first)
                ):
                    return self.unused.pop(position)
        return None
