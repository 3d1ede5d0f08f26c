"""Gradio 3 apps: one event on the app's websocket queue.

Gradio 3.x runs queued steps over ``ws(s)://host/queue/join``, one
connection per event (wire facts in the project's protocol notes):

1. the app sends ``send_hash``; the client answers ``{fn_index, session_hash}``;
2. the app sends ``estimation`` messages while the event waits, or
   ``queue_full`` (and closes);
3. the app sends ``send_data``; the client answers with the inputs;
4. ``process_starts``, ``process_generating`` (full values each time),
   ``log`` and ``progress`` messages follow, then ``process_completed``.

The client closes the connection itself right after ``process_completed``:
an app waiting for the client's side of the close holds its worker for
ten seconds or more. Canceling is closing the connection and then
``POST /reset`` with the same ``fn_index`` and ``session_hash``; the POST is
the caller's.

Needs the optional ``websocket-client`` package, imported only when a
connection is opened.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import urlsplit, urlunsplit

from ...errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    ModelNotFoundError,
    QueueFullError,
    ResponseError,
    SDKError,
    detail_from_body,
    error_for_status,
)
from ...redaction import shown_url, url_secrets
from ...timeouts import Deadline
from ..base import SECRET_MIN_LENGTH

__all__ = ["QueueSocket", "queue_url"]

logger = logging.getLogger("replicate_qwen_sdk")

_CONNECTING = "connecting"
_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def queue_url(base_url: str) -> str:
    """The queue's websocket URL of the app at ``base_url``:
    ``http://h:p/sub`` → ``ws://h:p/sub/queue/join`` (``https`` → ``wss``)."""
    parts = urlsplit(base_url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise InvalidArgumentError(f"The app's URL must be an http(s) URL, got {shown_url(base_url)!r}.")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/queue/join", parts.query, ""))


def _websocket_module() -> ModuleType:
    try:
        import websocket
    except ImportError:
        raise InvalidArgumentError(
            "Gradio 3 apps are reached over a websocket: pip install 'replicate_qwen_sdk[gradio3]' "
            "(websocket-client) and retry."
        ) from None
    return websocket


class _Closed(Exception):
    """The socket was closed (by :meth:`QueueSocket.close`) before or during a call."""


class QueueSocket:
    """One event on a Gradio 3 app's websocket queue.

    Call :meth:`open`, then iterate :meth:`messages`. :meth:`close` may be
    called from any thread, at any time and more than once; a read blocked
    in another thread then ends at once.

    :param base_url: the app's http(s) URL (``http://host:port/sub``).
    :param fn_index: the queued step to run.
    :param session_hash: the session the event belongs to (the app keeps
        ``gr.State`` values under it).
    :param data: the step's inputs, JSON-ready.
    :param headers: sent with the websocket handshake only (``Authorization``, ...).
    :param connect_timeout: seconds to open the connection and upgrade it.
    :param read_timeout: the longest silence between two messages, waiting
        in the queue included.
    :param deadline: the call's overall deadline.
    """

    def __init__(
        self,
        base_url: str,
        *,
        fn_index: int,
        session_hash: str,
        data: list,
        headers: dict,
        connect_timeout: float,
        read_timeout: float,
        deadline: Deadline,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.url = queue_url(base_url)
        self.fn_index = fn_index
        self.session_hash = session_hash
        self._data = data
        self._headers: Dict[str, str] = dict(headers)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._deadline = deadline
        self._where = shown_url(self.url)
        self._secrets = sorted({*_secrets_of(self._headers), *url_secrets(base_url)}, key=len, reverse=True)
        self._provider_redact = redact  # the provider's secrets (its token, its URL's credentials)
        self._lib: Optional[ModuleType] = None
        self._lock = threading.Lock()
        self._ws: Any = None  # websocket.WebSocket, until released
        self._busy = False  # a call of this object's owner is using the socket
        self._closed = False

    # -- the handshake -------------------------------------------------------

    def open(self) -> None:
        """Connect and hand the event to the queue: answer ``send_hash``,
        wait for the event's turn, answer ``send_data``. Returns once the
        inputs are sent.

        :raises QueueFullError: the app's queue turned the event away.
        :raises APIConnectionError: the connection was refused or dropped
            (an unknown ``fn_index`` is dropped by the app), or
            :meth:`close` was called.
        :raises APITimeoutError: the connect or read timeout, or the
            deadline, expired (waiting for the event's turn counts).
        :raises ResponseError: the websocket upgrade was refused with an
            HTTP status (:class:`AuthenticationError` for 401/403,
            :class:`ModelNotFoundError` for 404), or a message is not JSON.
        """
        try:
            self._connect()
            self._handshake()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> None:
        lib = self._lib = _websocket_module()
        ws = lib.WebSocket()
        with self._lock:
            if self._closed:
                raise self._interrupted(_CONNECTING)
            self._ws = ws
        timeout = self._time_left(self._connect_timeout, _CONNECTING)
        logger.debug("opening %s for fn_index %d", self._where, self.fn_index)
        try:
            with self._using() as ws:
                ws.connect(self.url, header=self._headers, timeout=timeout)
        except _Closed:
            raise self._interrupted(_CONNECTING) from None
        except (lib.WebSocketException, OSError) as exc:
            if self._closed:
                raise self._interrupted(_CONNECTING) from None
            raise self._failure(exc, _CONNECTING, timeout) from None

    def _handshake(self) -> None:
        doing = "waiting for the app's queue to greet the event"
        sent_hash = False
        while True:
            message = self._receive(doing)
            if message is None:
                raise self._dropped(doing, sent_hash)
            kind = message.get("msg")
            if kind == "send_hash":
                self._send({"fn_index": self.fn_index, "session_hash": self.session_hash}, doing)
                sent_hash = True
                doing = "waiting for the event's turn in the app's queue"
            elif kind == "send_data":
                payload = {
                    "data": self._data,
                    "event_data": None,
                    "fn_index": self.fn_index,
                    "session_hash": self.session_hash,
                }
                self._send(payload, "sending the event's inputs")
                logger.debug("event fn_index %d sent to %s", self.fn_index, self._where)
                return
            elif kind == "queue_full":
                raise QueueFullError(
                    f"The app's queue at {self._where} is full and turned the event away. Try again later.",
                    status_code=None,
                    detail="queue_full",
                )
            elif kind == "estimation":
                logger.debug(
                    "queue at %s: rank %s of %s, about %s s",
                    self._where,
                    message.get("rank"),
                    message.get("queue_size"),
                    message.get("rank_eta"),
                )
            else:
                logger.debug("ignoring %r from %s before the event started", kind, self._where)

    # -- the event -----------------------------------------------------------

    def messages(self) -> Iterator[dict]:
        """The app's messages about the event, parsed, in order, up to and
        including ``process_completed`` (the socket is closed before that
        one is handed on).

        The iteration just ends if the connection closes first (by the app,
        or by :meth:`close`): the caller decides what an unfinished event
        means. The socket is closed whenever the iteration stops.

        :raises APITimeoutError: the read timeout or the deadline expired.
        :raises APIConnectionError: the connection broke (reset, TLS error).
        :raises ResponseError: a message is not a JSON object.
        """
        doing = "reading the event's updates"
        try:
            while True:
                message = self._receive(doing)
                if message is None:
                    logger.debug("%s closed before the event completed", self._where)
                    return
                if message.get("msg") == "process_completed":
                    self.close()
                    yield message
                    return
                yield message
        finally:
            self.close()

    def close(self) -> None:
        """Close the connection. Safe from any thread, and more than once.

        A read or handshake in progress in another thread is woken at once
        (it then ends the iteration, or raises :class:`APIConnectionError`
        from :meth:`open`) and releases the socket itself. Only a TCP
        connect still in progress runs on, bounded by the connect timeout.
        """
        with self._lock:
            self._closed = True
            ws = self._ws
            if ws is None:
                return
            if self._busy:
                _wake(ws)
                return
            self._ws = None
        _release(ws)

    # -- the socket ----------------------------------------------------------

    @contextmanager
    def _using(self) -> Iterator[Any]:
        """The socket, marked busy so that :meth:`close` from another thread
        only wakes it; released here if it was closed meanwhile."""
        with self._lock:
            ws = self._ws
            if ws is None or self._closed:
                raise _Closed
            self._busy = True
        try:
            yield ws
        finally:
            with self._lock:
                self._busy = False
                release = self._closed and self._ws is ws
                if release:
                    self._ws = None
            if release:
                _release(ws)

    def _receive(self, doing: str) -> Optional[Dict[str, Any]]:
        """The next message; ``None`` once the connection is closed."""
        lib = self._lib
        assert lib is not None, "open() was not called"
        timeout = self._time_left(self._read_timeout, doing)
        try:
            with self._using() as ws:
                ws.settimeout(timeout)
                raw = ws.recv()
                if not raw and not ws.connected:  # the app's close frame
                    return None
        except _Closed:
            return None
        except UnicodeDecodeError:
            raise ResponseError(
                f"The app's queue at {self._where} sent a message that is not UTF-8 while {doing}."
            ) from None
        except (lib.WebSocketException, OSError) as exc:
            if self._closed or isinstance(exc, lib.WebSocketConnectionClosedException):
                return None
            raise self._failure(exc, doing, timeout) from None
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            raise ResponseError(
                f"The app's queue at {self._where} sent a message that is not a JSON object while {doing}: "
                f"{self._redact(text)[:100]!r}."
            )
        return message

    def _send(self, payload: Dict[str, Any], doing: str) -> None:
        lib = self._lib
        assert lib is not None, "open() was not called"
        text = json.dumps(payload)
        timeout = self._time_left(self._read_timeout, doing)
        try:
            with self._using() as ws:
                ws.settimeout(timeout)
                ws.send(text)
        except _Closed:
            raise self._interrupted(doing) from None
        except (lib.WebSocketException, OSError) as exc:
            if self._closed:
                raise self._interrupted(doing) from None
            if isinstance(exc, lib.WebSocketConnectionClosedException):
                raise self._dropped(doing, "data" in payload) from None
            raise self._failure(exc, doing, timeout) from None

    # -- errors --------------------------------------------------------------

    def _time_left(self, limit: float, doing: str) -> float:
        """``limit``, shortened to the deadline; raises once the deadline has passed."""
        if self._deadline.expired():
            raise self._deadline_error(doing)
        return max(self._deadline.clamp(limit), 0.001)

    def _deadline_error(self, doing: str) -> APITimeoutError:
        return APITimeoutError(
            f"The overall deadline of {self._deadline.seconds:g} s passed while {doing} ({self._where}). "
            "Raise timeout=Timeout(total=...) or leave it unset."
        )

    def _interrupted(self, doing: str) -> APIConnectionError:
        return APIConnectionError(
            f"The connection to the app's queue at {self._where} was closed by the caller while {doing}."
        )

    def _dropped(self, doing: str, sent_hash: bool) -> APIConnectionError:
        check = (
            f" and that fn_index {self.fn_index} is one of its queued steps (Gradio drops the connection of an "
            "unknown one)"
            if sent_hash
            else ""
        )
        return APIConnectionError(
            f"The app closed the queue connection at {self._where} while {doing}. Check that the app is running{check}."
        )

    def _failure(self, exc: BaseException, doing: str, timeout: float) -> SDKError:
        lib = self._lib
        assert lib is not None
        if isinstance(exc, (lib.WebSocketTimeoutException, socket.timeout)):
            limit = self._connect_timeout if doing == _CONNECTING else self._read_timeout
            if self._deadline.expired() or timeout < limit:
                return self._deadline_error(doing)
            if doing == _CONNECTING:
                return APITimeoutError(
                    f"Could not connect to the app's queue at {self._where} within {timeout:g} s. "
                    "Check the network or proxy, or raise the connect timeout."
                )
            return APITimeoutError(
                f"No message from the app's queue at {self._where} for {timeout:g} s while {doing}. "
                "The app went silent; raise the read timeout (timeout=Timeout(read=...)) if it is slow to "
                "start or its queue is long."
            )
        if isinstance(exc, lib.WebSocketBadStatusException):
            return self._refused(exc)
        reason = self._redact(str(exc) or type(exc).__name__)[:300]
        if doing == _CONNECTING:
            return APIConnectionError(
                f"Could not reach the app's queue at {self._where}: {reason}. "
                "Check the URL and that the app is running."
            )
        return APIConnectionError(f"The connection to the app's queue at {self._where} broke while {doing}: {reason}.")

    def _refused(self, exc: Any) -> SDKError:
        """The websocket upgrade answered with an HTTP status."""
        status = exc.status_code
        detail = detail_from_body(getattr(exc, "resp_body", None), redact=self._redact)
        if status == 404:
            return ModelNotFoundError(
                f"No websocket queue at {self._where} (HTTP 404): the app is not a Gradio 3 app with its "
                "queue enabled, or the URL is wrong.",
                status_code=404,
                detail=detail,
            )
        return error_for_status(status, detail, action=f"opening the app's queue at {self._where}")

    def _redact(self, text: str) -> str:
        text = self._provider_redact(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _secrets_of(headers: Dict[str, str]) -> List[str]:
    """The credentials among ``headers``, to mask in error messages: the
    token, and the values of a provider's custom headers (a gateway's key)."""
    secrets = []
    for name, value in headers.items():
        lowered = name.lower()
        credential = lowered in ("authorization", "cookie", "proxy-authorization")
        if value and (credential or (lowered != "accept" and len(str(value).strip()) >= SECRET_MIN_LENGTH)):
            secrets.append(str(value))
            secrets.extend(part for part in str(value).split() if len(part) >= 8)
    return sorted(set(secrets), key=len, reverse=True)


def _wake(ws: Any) -> None:
    """Unblock a read or write on ``ws`` in another thread."""
    sock = ws.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _release(ws: Any) -> None:
    """Send a close frame if the connection is still up, without waiting for
    the app's reply, and free the socket."""
    try:
        ws.close(timeout=0)
    finally:
        ws.shutdown()
