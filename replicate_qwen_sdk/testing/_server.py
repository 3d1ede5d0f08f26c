"""A threaded HTTP/1.1 server on 127.0.0.1, the base of the emulators."""

from __future__ import annotations

import json
import socket
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar

__all__ = ["Fault", "LoopbackServer", "RecordedRequest", "RequestHandler"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Any = None
    route: str = ""


@dataclass
class Fault:
    """An injected failure for the next ``times`` requests of one route.

    :ivar status: the HTTP status to answer with (``None`` with ``reset``).
    :ivar headers: extra response headers (``Retry-After`` ...).
    :ivar body: a JSON-able body, or ``bytes`` sent as they are.
    :ivar reset: close the connection without answering.
    :ivar delay: seconds to wait before answering (or resetting).
    """

    status: Optional[int] = 503
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    reset: bool = False
    delay: float = 0.0
    times: int = 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # many clients connecting at once must not wait for a SYN retry

    def __init__(self, address, handler, owner: "LoopbackServer") -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up (a closed keep-alive connection, a cancelled
        stream) are normal here; anything else is printed, as the stdlib does."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Shared plumbing: JSON bodies, chunked streams, faults, recording."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Send each small write at once, as real servers do; otherwise a
        # client's delayed ACK holds the first event back by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None  # keep test output clean

    @property
    def owner(self) -> "LoopbackServer":
        return self.server.owner

    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def send_json(
        self,
        status: int,
        payload: Any,
        headers: Optional[Mapping[str, str]] = None,
        content_type: str = "application/json",
    ) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def start_chunked(self, content_type: str = "text/event-stream") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def abort_connection(self) -> None:
        """Drop the TCP connection at once, mid-response if need be."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def apply_fault(self, fault: Optional[Fault]) -> bool:
        """Answer with ``fault`` if there is one; True when answered."""
        if fault is None:
            return False
        if fault.delay:
            self.owner.stopping.wait(fault.delay)
        if fault.reset:
            self.abort_connection()
            return True
        body = (
            fault.body
            if fault.body is not None
            else {"detail": f"injected fault {fault.status}", "status": fault.status}
        )
        self.send_json(
            fault.status or 500,
            body,
            fault.headers,
            content_type="application/problem+json" if not isinstance(body, bytes) else "text/plain",
        )
        return True


_Server_T = TypeVar("_Server_T", bound="LoopbackServer")


class LoopbackServer:
    """Runs a handler class on ``127.0.0.1`` in a background thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    handler_class: Type[RequestHandler] = RequestHandler

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._faults: Dict[str, List[Fault]] = {}
        self.requests: List[RecordedRequest] = []
        self.stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------

    def start(self: _Server_T) -> _Server_T:
        self.stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), self.handler_class, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self: _Server_T) -> _Server_T:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # -- faults and records ----------------------------------------------------

    def inject_fault(self, route: str, fault: Optional[Fault] = None, **fields: Any) -> Fault:
        """Make the next request(s) of ``route`` fail as ``fault`` says
        (or as the :class:`Fault` fields given by keyword)."""
        fault = fault or Fault(**fields)
        with self._lock:
            self._faults.setdefault(route, []).append(fault)
        return fault

    def take_fault(self, route: str) -> Optional[Fault]:
        with self._lock:
            queue = self._faults.get(route)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def count(self, route: str) -> int:
        """How many requests of ``route`` arrived."""
        with self._lock:
            return sum(1 for request in self.requests if request.route == route)

    def clear(self) -> None:
        """Forget recorded requests and pending faults."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
