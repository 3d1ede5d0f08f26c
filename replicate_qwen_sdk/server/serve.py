"""Running the application on waitress: what ``replicate-qwen serve`` does."""

from __future__ import annotations

import ipaddress
import logging
import signal
import sys
import threading
from typing import Any, Callable, Optional, TextIO

from ..client import Client
from ..errors import InvalidArgumentError
from .app import API_KEY_VARIABLE, DEFAULT_MAX_BODY_BYTES, create_app

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_THREADS",
    "base_url",
    "is_loopback_host",
    "listening_port",
    "make_server",
    "serve",
]

logger = logging.getLogger("replicate_qwen_sdk")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: Worker threads: each request being answered (a stream) holds one.
DEFAULT_THREADS = 32


def is_loopback_host(host: str) -> bool:
    """Whether binding ``host`` lets only this machine connect."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """``http://HOST:PORT/v1`` (an IPv6 address in brackets)."""
    host = host.strip("[]")
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def serve(
    client: Client,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    threads: int = DEFAULT_THREADS,
    api_key: Optional[str] = None,
    no_auth: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    out: Optional[TextIO] = None,
) -> None:
    """Serve ``client`` with OpenAI's API on waitress until Ctrl-C (or
    SIGTERM); print one line, the base URL, once it accepts connections.

    :param port: 0 picks a free port (the line has the real one).
    :param threads: requests answered at once (each stream holds a thread);
        the client's connection pools grow to match.
    :param api_key: else ``REPLICATE_QWEN_SERVER_API_KEY``.
    :param no_auth: allow a host beyond loopback without a key.
    :raises InvalidArgumentError: for a host beyond loopback with no key and
        no ``no_auth``, or when waitress is not installed.
    """
    out = out or sys.stdout
    app = create_app(client, api_key=api_key, no_auth=no_auth or None, max_body_bytes=max_body_bytes)
    if not app.requires_key and not no_auth and not is_loopback_host(host):
        raise InvalidArgumentError(
            f"Refusing to serve on {host} without an API key: anyone who can reach it could spend your "
            f"Replicate credits. Set {API_KEY_VARIABLE} (or --api-key), or pass --no-auth to allow it."
        )
    for provider in client.providers:
        provider._transport.ensure_pool_size(threads)
    server = make_server(app, host=host, port=port, threads=threads, max_body_bytes=max_body_bytes)
    out.write(base_url(host, listening_port(server)) + "\n")
    out.flush()
    restore = _stop_on_signals(app.cancel_all)
    try:
        server.run()  # returns once a stop signal has closed it
    finally:
        restore()
        app.close()
        server.close()


def make_server(app: Any, *, host: str, port: int, threads: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Any:
    """A waitress server of ``app``, bound and listening (``.run()`` serves,
    ``.close()`` stops).

    :raises InvalidArgumentError: when waitress is not installed.
    """
    try:
        from waitress.server import create_server
    except ImportError:
        raise InvalidArgumentError(
            "serving needs waitress: pip install 'replicate_qwen_sdk[server]' (or run the app under "
            "another WSGI server: replicate_qwen_sdk.server:create_app())."
        ) from None
    return create_server(
        app,
        host=host.strip("[]"),
        port=port,
        threads=threads,
        connection_limit=max(100, 2 * threads),
        # Keeps a connection readable while its request runs, so that a
        # client that leaves is noticed (see .disconnects).
        channel_request_lookahead=1,
        asyncore_use_poll=True,
        max_request_body_size=2 * max_body_bytes,
        ident="replicate-qwen",
    )


def listening_port(server: Any) -> int:
    """The port a server from :func:`make_server` listens on."""
    port = getattr(server, "effective_port", None)
    if port is None:  # several sockets (a name with IPv4 and IPv6 addresses)
        port = server.effective_listen[0][1]
    return int(port)


def _stop_on_signals(cancel_all: Callable[[], None]) -> Callable[[], None]:
    """Make Ctrl-C and SIGTERM cancel the runs in progress, then stop the
    server (waitress waits for its threads, which end once their runs are
    cancelled); the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, frame: Any) -> None:
        logger.info("stopping: cancelling the runs in progress")
        cancel_all()
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
