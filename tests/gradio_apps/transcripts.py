"""Record what a real Gradio server answers the SDK, and answer the same
again from the recording.

* :class:`RecordingProxy` sits on 127.0.0.1 in front of a real server,
  forwards every request and keeps each exchange: method, path, request
  body, status, content type and the exact response bytes (event streams
  included, forwarded as they arrive).
* :class:`TranscriptServer` answers from those exchanges: each request gets
  the response of the first unused exchange with the same method, path and
  body (the session hash aside, which is random per call). A request the
  real server never saw gets HTTP 599 naming it, so a change in what the SDK
  sends fails a replay as plainly as a change in what it understands.
"""

from __future__ import annotations

import http.server
import json
import threading
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

import requests

from replicate_qwen_sdk.testing import LoopbackServer, RecordedRequest
from replicate_qwen_sdk.testing._server import RequestHandler

#: Request headers passed on to the real server.
_FORWARDED = ("Accept", "Content-Type", "Authorization")


def _normalized(body: Any) -> Any:
    """A request body without what differs on every call."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "session_hash"}
    return body


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


class _ReplayHandler(RequestHandler):
    async def do_GET(self) -> None:
        await self._answer("GET", None)

    async def do_POST(self) -> None:
        await self._answer("POST", self.read_json())

    async def _answer(self, method: str, body: Any) -> None:
        path = urlsplit(self.path).path
        self.owner.record(RecordedRequest(method, self.path, dict(self.headers), body, path))
        exchange = self.owner.take(method, path, body)
        if exchange is None:
            detail = f"not in the recording: {method} {path} {json.dumps(_normalized(body))[:500]}"
            self.owner.misses.append(detail)
            return await self.send_json(599, {"detail": detail})
        payload = exchange["body"].encode("utf-8")
        if exchange["content_type"].startswith("text/event-stream"):
            await self.start_chunked(exchange["content_type"])
            await self.write_chunk(payload)
            return await self.end_chunked()
        await self.send_json(exchange["status"], payload, content_type=exchange["content_type"] or "text/plain")


class TranscriptServer(LoopbackServer):
    """Answers a client from a list of recorded exchanges."""

    handler_class = _ReplayHandler

    def __init__(self, exchanges: List[Dict[str, Any]]) -> None:
        super().__init__()
        self.unused = list(exchanges)
        #: Requests that matched no recorded exchange.
        self.misses: List[str] = []
        self._take_lock = threading.Lock()

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
