"""A small HTTP/1.1 server on 127.0.0.1, the base of the emulators.

It runs an asyncio event loop in one background thread: hundreds of paced
streams cost one thread, not one each, so the emulators stay light enough to
load-test a client on the same machine.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, TypeVar

__all__ = ["Fault", "Headers", "LoopbackServer", "RecordedRequest", "RequestHandler"]


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


class Headers:
    """Request headers: looked up without regard to case, kept as sent."""

    def __init__(self, pairs: List[Tuple[str, str]]) -> None:
        self._pairs = pairs
        self._by_name = {name.lower(): value for name, value in pairs}

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self._by_name.get(name.lower(), default)

    def keys(self) -> List[str]:
        return [name for name, _ in self._pairs]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value


class RequestHandler:
    """One request, answered by a ``do_<METHOD>`` coroutine of a subclass.

    Everything runs on the server's event loop, in one thread, however many
    clients stream at once: a handler that waits uses ``await asyncio.sleep``.
    """

    def __init__(
        self,
        owner: "LoopbackServer",
        writer: asyncio.StreamWriter,
        command: str,
        path: str,
        headers: Headers,
        body: bytes,
    ) -> None:
        self.owner = owner
        self.command = command
        self.path = path
        self.headers = headers
        self.body = body
        self.close_connection = (headers.get("Connection") or "").lower() == "close"
        self._writer = writer

    def read_json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return self.body

    async def send_json(
        self,
        status: int,
        payload: Any,
        headers: Optional[Mapping[str, str]] = None,
        content_type: str = "application/json",
    ) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = [f"HTTP/1.1 {status} {_reason(status)}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self._writer.write("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body)
        await self._writer.drain()

    async def start_chunked(self, content_type: str = "text/event-stream") -> None:
        self._writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-store\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode("latin-1")
        )
        await self._writer.drain()

    async def write_chunk(self, data: bytes) -> None:
        if data:
            self._writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await self._writer.drain()

    async def end_chunked(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()

    def abort_connection(self) -> None:
        """End the TCP connection now, mid-response if need be (what was
        written is still delivered, then the connection closes)."""
        self.close_connection = True
        self._writer.close()

    async def apply_fault(self, fault: Optional[Fault]) -> bool:
        """Answer with ``fault`` if there is one; True when answered."""
        if fault is None:
            return False
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            self.abort_connection()
            return True
        body = (
            fault.body
            if fault.body is not None
            else {"detail": f"injected fault {fault.status}", "status": fault.status}
        )
        await self.send_json(
            fault.status or 500,
            body,
            fault.headers,
            content_type="application/problem+json" if not isinstance(body, bytes) else "text/plain",
        )
        return True


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _read_request(reader: asyncio.StreamReader) -> Optional[Tuple[str, str, Headers, bytes]]:
    """The next request on a connection, or None when the client is done."""
    line = await reader.readline()
    if not line.strip():
        return None
    command, path, _version = line.decode("latin-1").split(" ", 2)
    pairs: List[Tuple[str, str]] = []
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        pairs.append((name.strip(), value.strip()))
    headers = Headers(pairs)
    length = int(headers.get("Content-Length") or 0)
    body = await reader.readexactly(length) if length else b""
    return command, path, headers, body


_Server_T = TypeVar("_Server_T", bound="LoopbackServer")


class LoopbackServer:
    """Runs a handler class on ``127.0.0.1`` in a background thread.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    handler_class: Type[RequestHandler] = RequestHandler

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.Server] = None
        self._thread: Optional[threading.Thread] = None
        self._lock = threading.Lock()
        self._faults: Dict[str, List[Fault]] = {}
        self.requests: List[RecordedRequest] = []
        self.stopping = threading.Event()

    # -- lifecycle -----------------------------------------------------------

    def start(self: _Server_T) -> _Server_T:
        """Start serving (in a background thread running an event loop)."""
        self.stopping.clear()
        loop = self._loop = asyncio.new_event_loop()
        started = threading.Event()
        failure: List[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_connection, "127.0.0.1", self._port, backlog=1024)
                )
            except BaseException as exc:  # reported by start()
                failure.append(exc)
                started.set()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=serve, name=f"{type(self).__name__}-server", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving; streams in progress are cut."""
        self.stopping.set()
        loop, server = self._loop, self._server
        if loop is not None and server is not None and not loop.is_closed():

            def shut_down() -> None:
                server.close()
                loop.stop()

            loop.call_soon_threadsafe(shut_down)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = self._server = self._loop = None

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not self.stopping.is_set():
                request = await _read_request(reader)
                if request is None:
                    break
                handler = self.handler_class(self, writer, *request)
                answer = getattr(handler, f"do_{handler.command}", None)
                if answer is None:
                    await handler.send_json(501, {"detail": f"{handler.command} is not supported"})
                else:
                    await answer()
                if handler.close_connection or writer.is_closing():
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # a client hanging up, or a request this server cannot read
        except asyncio.CancelledError:
            pass  # stop(): end quietly (asyncio would report a cancelled connection task)
        finally:
            writer.close()

    def __enter__(self: _Server_T) -> _Server_T:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._server.sockets[0].getsockname()[1]

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
