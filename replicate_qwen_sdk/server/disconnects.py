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
    is gone; :meth:`stop_all` does so for every request in progress.

    Its thread looks every ``interval`` seconds; a request never wakes it, so
    that nothing competes with a request for the processor on its way to the
    first chunk.
    """

    def __init__(self, interval: float = CHECK_INTERVAL) -> None:
        self._interval = interval
        self._entries: Dict[int, "tuple[Optional[Callable[[], bool]], Callable[[], None]]"] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def watch(self, is_gone: Optional[Callable[[], bool]], on_gone: Callable[[], None]) -> int:
        """Start watching a request; the token for :meth:`unwatch`."""
        with self._lock:
            self._next += 1
            self._entries[self._next] = (is_gone, on_gone)
            if is_gone is not None and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="replicate_qwen_sdk-disconnects", daemon=True)
                self._thread.start()
            return self._next

    def unwatch(self, token: int) -> None:
        with self._lock:
            self._entries.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def stop_all(self, wait: float) -> None:
        """Call every ``on_gone`` now (the server is shutting down), and wait
        at most ``wait`` seconds for them all to return."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        threads = [_start(on_gone) for _, on_gone in entries]
        deadline = time.monotonic() + wait
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            with self._lock:
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
                    with self._lock:
                        found = self._entries.pop(token, None) is not None
                    if found:
                        _start(on_gone)


def _start(action: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=action, name="replicate_qwen_sdk-cancel", daemon=True)
    thread.start()
    return thread
