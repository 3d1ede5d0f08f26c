"""Noticing clients that went away while their answer is being generated.

A WSGI application learns that a client disconnected only when a write to it
fails, and a model that is still thinking writes nothing: its run would go
on (and bill) for nobody. One daemon thread therefore checks, several times
a second, the connections of the requests in progress, with what the server
offers:

* waitress (with ``channel_request_lookahead`` above 0, as ``serve`` sets
  it) puts a ``waitress.client_disconnected`` callable in the environment;
* gunicorn puts the client's socket in ``gunicorn.socket``: a peek that
  finds the end of the stream means the client closed it.

Under another server the failed write still ends the run, at the next chunk.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional

__all__ = ["DisconnectMonitor", "disconnect_check"]

logger = logging.getLogger("replicate_qwen_sdk")

#: Seconds between two looks at the connections.
CHECK_INTERVAL = 0.25

_PEEK_FLAGS = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)


def disconnect_check(environ: Mapping[str, Any]) -> Optional[Callable[[], bool]]:
    """A callable that tells whether the client of this request is gone, or
    ``None`` when the server gives no way to know."""
    check = environ.get("waitress.client_disconnected")
    if callable(check):
        return check
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket) and getattr(socket, "MSG_DONTWAIT", None) is not None:
        return lambda: _peer_closed(sock)
    return None


def _peer_closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, _PEEK_FLAGS) == b""
    except BlockingIOError:
        return False  # connected, nothing sent: the usual case
    except ValueError:
        return False  # a TLS socket takes no flags: no way to know
    except OSError:
        return True  # reset, or already closed


class DisconnectMonitor:
    """Calls ``on_gone()`` (in a thread of its own) for a request whose client
    is gone; :meth:`stop_all` does so for every request in progress."""

    def __init__(self, interval: float = CHECK_INTERVAL) -> None:
        self._interval = interval
        self._entries: Dict[int, "tuple[Optional[Callable[[], bool]], Callable[[], None]]"] = {}
        self._next = 0
        self._wake = threading.Condition()
        self._thread: Optional[threading.Thread] = None

    def watch(self, is_gone: Optional[Callable[[], bool]], on_gone: Callable[[], None]) -> int:
        """Start watching a request; the token for :meth:`unwatch`."""
        with self._wake:
            idle = not self._checkable()
            self._next += 1
            self._entries[self._next] = (is_gone, on_gone)
            if is_gone is not None:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="replicate_qwen_sdk-disconnects", daemon=True
                    )
                    self._thread.start()
                elif idle:
                    self._wake.notify()  # else its next round sees the new entry
            return self._next

    def _checkable(self) -> bool:
        return any(is_gone is not None for is_gone, _ in self._entries.values())

    def unwatch(self, token: int) -> None:
        with self._wake:
            self._entries.pop(token, None)

    def __len__(self) -> int:
        with self._wake:
            return len(self._entries)

    def stop_all(self, wait: float) -> None:
        """Call every ``on_gone`` now (the server is shutting down), and wait
        at most ``wait`` seconds for them all to return."""
        with self._wake:
            entries, self._entries = list(self._entries.values()), {}
        threads = [_start(on_gone) for _, on_gone in entries]
        deadline = time.monotonic() + wait
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._checkable():
                    self._wake.wait()
                # Each round waits first: a request's first moments (its
                # first chunk) go by without the cost of a check.
                self._wake.wait(self._interval)
                entries = list(self._entries.items())
            for token, (is_gone, on_gone) in entries:
                if is_gone is None:
                    continue
                try:
                    gone = is_gone()
                except Exception:  # a server's check that fails tells nothing
                    logger.debug("could not check a client connection", exc_info=True)
                    gone = False
                if gone:
                    with self._wake:
                        found = self._entries.pop(token, None) is not None
                    if found:
                        _start(on_gone)


def _start(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, name="replicate_qwen_sdk-cancel", daemon=True)
    thread.start()
    return thread
