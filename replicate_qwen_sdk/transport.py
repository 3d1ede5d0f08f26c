"""HTTP transport: the only module that talks to ``requests``.

One :class:`Transport` per provider instance owns one ``requests.Session``
(created lazily, rebuilt after unpickling), applies the timeouts and the
retry policies, and turns every ``requests``/``urllib3`` failure and every
HTTP error status into an exception from :mod:`replicate_qwen_sdk.errors`.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional
from urllib.parse import urlsplit

# proxy_bypass_environment is in every CPython 3 but not in typeshed.
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

from .__version__ import __version__
from .decoding import ACCEPT_ENCODING, CorruptEncodingError, UnsupportedEncodingError, decoded
from .errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    ResponseError,
    ResponseTooLargeError,
    SDKError,
    detail_from_body,
    error_from_response,
)
from .redaction import shown_url, url_secrets
from .sse import DEFAULT_MAX_EVENT_SIZE
from .retry import MAX_RETRY_AFTER, READ, RetryPolicy, backoff_delay, parse_retry_after
from .timeouts import Deadline, Timeout
from .watchdog import Watch, watch_socket

__all__ = ["DEFAULT_MAX_BODY_SIZE", "DEFAULT_POOL_SIZE", "READ_CHUNK_SIZE", "Transport"]

logger = logging.getLogger("replicate_qwen_sdk")

#: Connections kept open per host; raise it to match your thread count.
DEFAULT_POOL_SIZE = 32
#: Upper bound of one read from a stream. A read returns as soon as *any*
#: bytes are there, so this caps memory, not latency.
READ_CHUNK_SIZE = 65536

#: Bytes a response that is not a stream may take, decoded (a Space's
#: ``/config``, a prediction with a long output): 32 MiB.
DEFAULT_MAX_BODY_SIZE = 32 * 1024 * 1024

#: Of an error response's body, only the start is needed for its message.
_ERROR_BODY_LIMIT = 1024 * 1024

USER_AGENT = f"replicate_qwen_sdk/{__version__} python-requests/{requests.__version__}"


class Transport:
    """Sends requests for one provider instance.

    Thread-safe: the session is created once under a lock, and nothing that
    varies per call is stored on the instance.

    :param timeout: connect / idle-read / total limits.
    :param max_retries: retries after the first attempt, per request.
    :param proxy: proxy URL for every request; ``None`` uses the standard
        ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` environment variables.
    :param pool_size: connections kept per host.
    :param secrets: strings that must never appear in an exception message.
    :param max_event_size: the most bytes one event of an event stream may
        take (see :class:`~replicate_qwen_sdk.sse.EventStream`).
    :param max_body_size: the most bytes (decoded) a response that is not a
        stream may take; a larger one raises :class:`ResponseTooLargeError`.
    """

    def __init__(
        self,
        *,
        timeout: Timeout,
        max_retries: int,
        proxy: Optional[str] = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        secrets: tuple = (),
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError(
                f"max_retries must be an integer >= 0, got {max_retries!r}.", argument="max_retries"
            )
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise InvalidArgumentError(f"pool_size must be an integer >= 1, got {pool_size!r}.")
        if proxy is not None and (not isinstance(proxy, str) or "://" not in proxy):
            raise InvalidArgumentError(
                "proxy must be a URL string such as 'http://host:3128'; the value given is not one "
                "(not shown: a proxy URL may hold a password)."
            )
        self.timeout = timeout
        self.max_retries = max_retries
        for name, value in (("max_event_size", max_event_size), ("max_body_size", max_body_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise InvalidArgumentError(
                    f"{name} must be a number of bytes (an integer >= 1024), got {value!r}.", argument=name
                )
        self.max_event_size = max_event_size
        self.max_body_size = max_body_size
        self.pool_size = pool_size
        self._proxies = {"http": proxy, "https": proxy} if proxy else None
        # The environment is read once, here: requests would re-read all of
        # it (proxies, netrc, CA bundle) on every request, a fifth of the
        # CPU of a short call.
        self._environment_proxies = {} if proxy else _environment_proxies()
        self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        proxy_urls = [proxy] if proxy else list(self._environment_proxies.values())
        secrets = (*secrets, *(secret for url in proxy_urls for secret in url_secrets(url)))
        # Each secret also as Python quotes it (escaped), the form some
        # library errors use. Longest first: masking a short secret inside
        # a longer one first would leave the rest of the longer one shown.
        forms = {form: None for secret in secrets if secret for form in (secret, repr(secret)[1:-1])}
        self._secrets = tuple(sorted(forms, key=len, reverse=True))
        self._session: Optional[requests.Session] = None
        self._lock = threading.Lock()
        #: Replaced in tests to observe backoff without waiting.
        self.sleep: Callable[[float], None] = time.sleep

    # -- lifecycle ---------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        session = self._session
        if session is None:
            with self._lock:
                session = self._session
                if session is None:
                    session = self._session = self._new_session()
        return session

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = _DeadlineAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        # Only what decoding.decoded() can inflate a bounded piece at a time.
        session.headers["Accept-Encoding"] = ACCEPT_ENCODING
        session.trust_env = False  # the environment was read once, in __init__
        session.verify = self._verify
        return session

    def ensure_pool_size(self, size: int) -> None:
        """Keep at least ``size`` connections per host (for that many
        threads). Growing the pool replaces the adapters; connections in use
        finish normally."""
        with self._lock:
            if size <= self.pool_size:
                return
            self.pool_size = size
            if self._session is not None:
                adapter = _DeadlineAdapter(pool_connections=4, pool_maxsize=size, max_retries=0)
                self._session.mount("https://", adapter)
                self._session.mount("http://", adapter)

    def close(self) -> None:
        """Close the pooled connections; a later request opens new ones."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"] = None
        state["_lock"] = None
        state["sleep"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.sleep = time.sleep

    # -- requests ----------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        action: str,
        policy: RetryPolicy = READ,
        deadline: Optional[Deadline] = None,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        stream: bool = False,
        model: Optional[str] = None,
        files: Any = None,
    ) -> requests.Response:
        """Send a request, retrying as ``policy`` allows; return a 2xx/3xx response.

        :param action: what this request does, for messages
            (``"creating a prediction"``).
        :param files: a ``multipart/form-data`` body, as ``requests`` takes
            it (``{"field": (filename, bytes, content_type)}``); bytes, not
            open files, so that a retry sends the same body again.
        :param stream: leave the body unread, to be consumed with
            :meth:`iter_bytes`.
        :param model: named in a 404's message.
        :raises SDKError: a typed error for every failure.
        """
        deadline = deadline or Deadline(self.timeout.total)
        attempt = 0
        while True:
            if deadline.expired():
                raise self._deadline_error(action, deadline)
            retry_after: Optional[float] = None
            try:
                response = self._send(method, url, json, headers, deadline, stream, action, files)
            except requests.RequestException as exc:
                if deadline.expired():
                    if _is_connect_failure(exc):
                        raise self._deadline_error(action, deadline) from None
                    raise APITimeoutError(
                        f"No whole answer within the overall deadline of {deadline.seconds:g} s while {action} "
                        "(the request was sent; the server was still answering). "
                        "Raise timeout=Timeout(total=...) or leave it unset."
                    ) from None
                error = self._translate(exc, action, url)
                # A read timeout (a ReadTimeout is not a ConnectionError) is
                # never retried: the caller's limit on waiting has been spent.
                retryable = _is_connect_failure(exc) or (
                    policy.after_send_failures and isinstance(exc, requests.exceptions.ConnectionError)
                )
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    try:
                        self._read_body(response, action=action, deadline=deadline, watch=None, limit=_ERROR_BODY_LIMIT)
                    except (requests.RequestException, SDKError):
                        response._content = b""  # the status alone tells what failed
                error = self.response_error(response, action=action, model=model)
                response.close()
                retryable = response.status_code in policy.statuses
                # Honoured on any status (503 often carries it), not only 429.
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if not retryable or attempt >= self.max_retries:
                raise error
            delay = retry_after if retry_after is not None else backoff_delay(attempt)
            if delay > MAX_RETRY_AFTER:
                raise error
            left = deadline.remaining()
            if left is not None and delay >= left:
                raise error
            attempt += 1
            logger.warning(
                "%s failed (%s); retry %d of %d in %.2f s",
                action,
                _short_reason(error),
                attempt,
                self.max_retries,
                delay,
            )
            self.sleep(delay)

    def _send(
        self, method, url, json, headers, deadline: Deadline, stream: bool, action: str, files: Any = None
    ) -> requests.Response:
        timeout = (deadline.clamp(self.timeout.connect), deadline.clamp(self.timeout.read))
        started = time.monotonic()
        session = self.session
        # Prepared here and handed to ``Session.send`` rather than through
        # ``Session.request``: that one merges per-call settings we never use
        # (params, auth, hooks, a copy of the cookie jar) at about a fifth of
        # the CPU of a request. The session's headers and cookie jar still apply.
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method,
            url=url,
            headers={**session.headers, **headers} if headers else session.headers,
            json=json,
            files=files,
            cookies=session.cookies,
        )
        # With an overall deadline, the connection that reads the answer is
        # watched from its status line on (see _WatchedConnection).
        watched = deadline.seconds is not None
        if watched:
            _deadline_of_this_thread.deadline = deadline
        try:
            # The body is always read here, not by requests: within the size
            # limit and the deadline, and inflated a bounded piece at a time.
            response = session.send(
                prepared,
                timeout=timeout,
                stream=True,
                proxies=self._proxies or self._proxies_for(url),
                allow_redirects=method == "GET",
            )
        finally:
            watch = _deadline_of_this_thread.__dict__.pop("watch", None) if watched else None
            if watched:
                _deadline_of_this_thread.deadline = None
        try:
            if watch is not None and watch.fired:
                response.close()
                raise requests.exceptions.ConnectionError("the overall deadline passed")
            if not stream:
                self._read_body(
                    response,
                    action=action,
                    deadline=deadline,
                    watch=watch,
                    limit=self.max_body_size,
                )
        finally:
            if watch is not None:
                watch.stop()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %d in %.3f s",
                method,
                _safe_url(url),
                response.status_code,
                time.monotonic() - started,
            )
        return response

    def _read_body(
        self,
        response: requests.Response,
        *,
        action: str,
        deadline: Deadline,
        watch: Optional[Watch],
        limit: int,
    ) -> None:
        """Read the whole body into ``response.content`` (decoded, at most
        ``limit`` bytes) and give the connection back to the pool.

        Failures surface as ``requests`` exceptions, so that
        :meth:`request` retries and translates them like any other.
        """
        raw = response.raw
        pieces: List[bytes] = []
        size = 0
        try:
            for piece in decoded(_raw_chunks(raw), response.headers.get("Content-Encoding"), READ_CHUNK_SIZE):
                size += len(piece)
                if size > limit:
                    response.close()
                    raise ResponseTooLargeError(
                        f"The answer was larger than {limit:,} bytes while {action}; it was not kept. "
                        "Check the base URL; raise max_body_size if the answer is really that large.",
                        status_code=response.status_code,
                    )
                pieces.append(piece)
        except UnsupportedEncodingError as exc:
            response.close()
            raise ResponseError(
                f"The server sent its answer in an encoding the SDK did not ask for ({exc}) while {action}.",
                status_code=response.status_code,
            ) from None
        except CorruptEncodingError as exc:
            response.close()
            raise requests.exceptions.ChunkedEncodingError(f"corrupt compressed body: {exc}") from None
        except (ProtocolError, OSError) as exc:
            response.close()
            raise requests.exceptions.ConnectionError(exc) from None
        if (watch is not None and watch.fired) or deadline.expired():
            response.close()
            raise requests.exceptions.ConnectionError("the overall deadline passed")
        # What requests' own read would leave behind.
        response._content = b"".join(pieces)
        response._content_consumed = True
        raw.release_conn()

    def open_event_stream(
        self, url: str, *, action: str, headers: Mapping[str, str], deadline: Optional[Deadline] = None
    ) -> requests.Response:
        """``GET`` a Server-Sent Events stream, retried as a read; the body is
        left unread for :meth:`iter_bytes`.

        :raises ResponseError: when the answer is not ``text/event-stream``.
        """
        response = self.request("GET", url, action=action, deadline=deadline, headers=headers, stream=True)
        content_type = response.headers.get("Content-Type", "")
        # Media types are case-insensitive; parameters (charset=...) may follow.
        if content_type.partition(";")[0].strip().lower() != "text/event-stream":
            response.close()
            raise ResponseError(
                f"Expected an event stream while {action}, got {self.redact(content_type) or 'no content type'}.",
                status_code=response.status_code,
            )
        return response

    def response_error(self, response: requests.Response, *, action: str, model: Optional[str] = None) -> ResponseError:
        """The typed error for a failed response, secrets masked."""
        return error_from_response(response, action=action, model=model, redact=self.redact)

    def json(self, response: requests.Response, *, action: str) -> Any:
        """The JSON body of a successful response, or a typed error."""
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the JSON reader goes
            content_type = self.redact(response.headers.get("Content-Type", "no content type"))
            raise ResponseError(
                f"The server sent a response that is not JSON while {action} "
                f"(HTTP {response.status_code}, {content_type}). "
                "Check the base URL.",
                status_code=response.status_code,
                detail=detail_from_body(response.content, limit=200, redact=self.redact),
            ) from None

    def _proxies_for(self, url: str) -> Optional[Dict[str, str]]:
        """The environment's proxies for ``url``, unless ``NO_PROXY`` exempts it."""
        proxies = self._environment_proxies
        if not proxies:
            return None
        host = urlsplit(url).hostname or ""
        if proxy_bypass_environment(host, proxies):
            return None
        return {scheme: proxies[scheme] for scheme in ("http", "https") if scheme in proxies} or None

    # -- streaming ---------------------------------------------------------

    def iter_bytes(
        self, response: requests.Response, *, action: str, deadline: Optional[Deadline] = None
    ) -> Iterator[bytes]:
        """Yield a streaming response's body as it arrives, chunk by chunk.

        Each piece is handed on as soon as it arrives (one HTTP chunk of a
        chunked body, or whatever one ``read1`` returns otherwise), so an
        event reaches the parser the moment the server flushes it. Silence longer than the idle-read timeout
        raises :class:`APITimeoutError`; a broken connection raises
        :class:`APIConnectionError`; a clean end of the body just ends the
        iteration. The response is closed when the iterator ends.
        """
        raw = response.raw
        sock = None
        watch: Optional[Watch] = None
        if deadline is not None and deadline.seconds is not None:
            sock = _socket_of(raw)
            left = deadline.remaining()
            if sock is not None and left is not None:
                watch = watch_socket(sock, left)
        try:
            for chunk in decoded(_raw_chunks(raw), response.headers.get("Content-Encoding"), READ_CHUNK_SIZE):
                yield chunk
                if sock is not None and deadline is not None:
                    if deadline.expired():
                        raise self._deadline_error(action, deadline)
                    sock.settimeout(deadline.clamp(self.timeout.read))
            if watch is not None:
                watch.stop()
                if watch.fired:  # the end of the body was the watchdog's doing
                    raise self._deadline_error(action, deadline)  # type: ignore[arg-type]
            # The body ended cleanly: the connection can serve the next
            # request (closing the response would otherwise drop it).
            raw.release_conn()
        except ReadTimeoutError:
            if deadline is not None and deadline.expired():
                raise self._deadline_error(action, deadline) from None
            raise APITimeoutError(
                f"No data for {self.timeout.read:g} s while {action} "
                f"({_host(response.url)}). The server went silent; raise the read timeout "
                "(timeout=Timeout(read=...)) if the model is slow to start."
            ) from None
        except UnsupportedEncodingError as exc:
            raise ResponseError(
                f"The server sent the stream in an encoding the SDK did not ask for ({exc}) while {action}.",
                status_code=response.status_code,
            ) from None
        except (ProtocolError, OSError, ValueError, AttributeError, CorruptEncodingError) as exc:
            # ValueError/AttributeError: the response was closed under us
            # (interrupt() from another thread).
            if deadline is not None and deadline.expired():
                raise self._deadline_error(action, deadline) from None
            reason = f"corrupt compressed data ({exc})" if isinstance(exc, CorruptEncodingError) else _short_reason(exc)
            raise APIConnectionError(
                f"The connection to {_host(response.url)} broke while {action}: {self.redact(reason)}."
            ) from None
        finally:
            if watch is not None:
                watch.stop()
            response.close()

    @staticmethod
    def interrupt(response: Optional[requests.Response]) -> None:
        """Unblock a read in progress on ``response`` from any thread."""
        if response is None:
            return
        sock = _socket_of(response.raw)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- messages ----------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every secret of this transport masked."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def _deadline_error(self, action: str, deadline: Deadline) -> APITimeoutError:
        return APITimeoutError(
            f"The overall deadline of {deadline.seconds:g} s passed while {action}. "
            "Raise timeout=Timeout(total=...) or leave it unset."
        )

    def _translate(self, exc: requests.RequestException, action: str, url: str) -> SDKError:
        host = _host(url)
        reason = self.redact(_short_reason(exc))
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return APITimeoutError(
                f"Could not connect to {host} within {self.timeout.connect:g} s while {action}. "
                "Check the network or proxy, or raise the connect timeout."
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return APITimeoutError(
                f"No response from {host} within {self.timeout.read:g} s while {action}. "
                "The server may be overloaded; try again or raise the read timeout."
            )
        if isinstance(
            exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
        ):
            return InvalidArgumentError(f"Invalid URL {_safe_url(url)!r} while {action}: {reason}.")
        if isinstance(exc, requests.exceptions.ProxyError):
            return APIConnectionError(
                f"The proxy refused or failed the connection to {host} while {action}: {reason}. "
                "Check the proxy URL (proxy= or HTTPS_PROXY/HTTP_PROXY)."
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return APIConnectionError(f"TLS failed with {host} while {action}: {reason}.")
        return APIConnectionError(
            f"Could not reach {host} while {action}: {reason}. Check the network, the base URL and any proxy settings."
        )


def _is_connect_failure(exc: BaseException) -> bool:
    """True when the request certainly never reached the server."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen = set()
    stack: List[Optional[BaseException]] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError)):
            return True
        stack.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
        stack.append(getattr(current, "reason", None))
        stack.append(current.__cause__)
        stack.append(current.__context__)
    return False


def _raw_chunks(raw) -> Iterator[bytes]:
    """The body of a urllib3 response as it came (not decoded), piece by
    piece, each at most :data:`READ_CHUNK_SIZE` bytes, without waiting to
    fill a buffer (``requests``' ``iter_content(None)`` would read a body
    that is not chunked to the end before yielding anything)."""
    if raw.chunked and raw.supports_chunked_reads():
        # Cheapest path: urllib3 parses the chunk framing in one generator.
        yield from raw.read_chunked(READ_CHUNK_SIZE, decode_content=False)
        return
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # urllib3 1.26: http.client's response has read1
        read1 = raw._fp.read1
    else:
        read1 = functools.partial(read1, decode_content=False)
    while True:
        chunk = read1(READ_CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


class _ThreadDeadline(threading.local):
    #: The deadline of the request this thread is sending, if it has one.
    deadline: Optional[Deadline] = None


_deadline_of_this_thread = _ThreadDeadline()


def _watched(connection_class):
    """``connection_class``, with its wait for an answer watched by the
    deadline of the request the thread is sending (if any): a server that
    trickles its status line, headers or body a byte at a time cannot keep
    the call alive past the deadline. The :class:`Watch` is left on the
    thread for :meth:`Transport._send`, which stops it once the body is read.
    """

    class WatchedConnection(connection_class):
        def getresponse(self, *args, **kwargs):
            deadline = _deadline_of_this_thread.deadline
            sock = getattr(self, "sock", None)
            if deadline is not None and sock is not None:
                left = deadline.remaining()
                if left is not None:
                    _deadline_of_this_thread.watch = watch_socket(sock, left)
            return super().getresponse(*args, **kwargs)

    WatchedConnection.__name__ = WatchedConnection.__qualname__ = f"Watched{connection_class.__name__}"
    return WatchedConnection


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _watched(HTTPConnection)


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _watched(HTTPSConnection)


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections honour the overall deadline (see :func:`_watched`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


def _socket_of(raw) -> Optional[socket.socket]:
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


def _short_reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


def _host(url: Optional[str]) -> str:
    """``host[:port]`` of a URL, without any userinfo."""
    try:
        parts = urlsplit(url or "")
        host, port = parts.hostname or "the server", parts.port
    except ValueError:  # a port that is not a number, a broken IPv6 address
        return "the server"
    return f"{host}:{port}" if port else host


def _safe_url(url: str) -> str:
    """The URL without its query string or userinfo (either may hold a secret)."""
    return shown_url(url)


def _environment_proxies() -> Dict[str, str]:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY``/``NO_PROXY``, as urllib reads them."""
    proxies = getproxies_environment()
    if "all" in proxies:
        proxies.setdefault("http", proxies["all"])
        proxies.setdefault("https", proxies["all"])
    return proxies
