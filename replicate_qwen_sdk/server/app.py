"""The OpenAI-compatible HTTP API, as a plain WSGI application.

Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST
/v1/chat/completions`` (whole, or streamed as ``data:`` events ending with
``data: [DONE]``) and ``GET /health``. Calls go through a
:class:`~replicate_qwen_sdk.Client` and its ``chat.completions`` shape; the
upstream credentials are the client's (from the server's environment),
never taken from or shown to callers.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import time
from typing import Any, Callable, Dict, Generator, Iterable, Iterator, List, Mapping, Optional, Tuple

from ..client import Client
from ..errors import ModelNotFoundError, SDKError
from ..openai_shape import ChatCompletionStream, compact_json, public_model_name
from ..stream import CANCEL_WAIT
from .disconnects import DisconnectMonitor, disconnect_check
from .errors import HTTPError, error_body, from_sdk_error, internal_error, status_line

__all__ = ["API_KEY_VARIABLE", "DEFAULT_MAX_BODY_BYTES", "NO_AUTH_VARIABLE", "OpenAIServer", "create_app"]

logger = logging.getLogger("replicate_qwen_sdk")

#: The environment variable holding the key callers must send.
API_KEY_VARIABLE = "REPLICATE_QWEN_SERVER_API_KEY"
#: Set to ``1`` to answer clients beyond this machine without a key.
NO_AUTH_VARIABLE = "REPLICATE_QWEN_SERVER_NO_AUTH"
#: Largest request body accepted, in bytes.
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Environment variables whose values never appear in an answer.
_SECRET_VARIABLES = ("REPLICATE_API_TOKEN", "HF_TOKEN", API_KEY_VARIABLE)

StartResponse = Callable[..., Any]


def create_app(
    client: Optional[Client] = None,
    *,
    api_key: Optional[str] = None,
    no_auth: Optional[bool] = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    **client_settings: Any,
) -> "OpenAIServer":
    """The WSGI application, for waitress, gunicorn or any WSGI server::

        gunicorn -k gthread --threads 32 'replicate_qwen_sdk.server:create_app()'

    :param client: the client to serve; by default one built from
        ``client_settings`` (``timeout=``, ``max_retries=``, ``pool_size=``...)
        and the environment (``REPLICATE_API_TOKEN``, ``REPLICATE_BASE_URL``,
        ``HF_TOKEN``, ``QWEN_SPACE_URL``).
    :param api_key: the key callers must send as ``Authorization: Bearer``;
        else ``REPLICATE_QWEN_SERVER_API_KEY``; else none is needed.
    :param no_auth: without a key, answer clients beyond this machine too
        (else ``REPLICATE_QWEN_SERVER_NO_AUTH=1``); by default a server with
        no key answers only clients on loopback.
    :param max_body_bytes: larger request bodies are refused with 413.
    """
    if client is None:
        client = Client(**client_settings)
    elif client_settings:
        raise TypeError("pass either a client or settings for one, not both")
    if api_key is None:
        api_key = os.environ.get(API_KEY_VARIABLE)
    if no_auth is None:
        no_auth = os.environ.get(NO_AUTH_VARIABLE, "").strip().lower() in ("1", "true", "yes")
    return OpenAIServer(client, api_key=(api_key or "").strip() or None, no_auth=no_auth, max_body_bytes=max_body_bytes)


class OpenAIServer:
    """A WSGI application serving one :class:`Client` with OpenAI's API.

    Thread-safe: one instance serves every thread of the server. See
    :func:`create_app`.
    """

    def __init__(self, client: Client, *, api_key: Optional[str], no_auth: bool, max_body_bytes: int) -> None:
        self.client = client
        self._api_key = api_key.encode("utf-8") if api_key else None
        self._no_auth = no_auth
        self._max_body_bytes = max_body_bytes
        self._completions = client.chat.completions
        self._monitor = DisconnectMonitor()
        self._secrets = tuple(value for value in (api_key, *map(os.environ.get, _SECRET_VARIABLES)) if value)

    @property
    def requires_key(self) -> bool:
        """Whether callers must send the API key."""
        return self._api_key is not None

    @property
    def streams_in_progress(self) -> int:
        """Requests whose answer is being generated now."""
        return len(self._monitor)

    def cancel_all(self) -> None:
        """Cancel every run in progress (the server is stopping), waiting at
        most :data:`~replicate_qwen_sdk.stream.CANCEL_WAIT` seconds for the
        upstream."""
        self._monitor.stop_all(CANCEL_WAIT)

    def close(self) -> None:
        """Cancel every run in progress and release the client's connections."""
        self.cancel_all()
        self.client.close()

    def __repr__(self) -> str:
        return f"<OpenAIServer key={'required' if self._api_key else 'none'} client={self.client!r}>"

    # -- WSGI ----------------------------------------------------------------------

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        try:
            status, headers, body = self._route(environ, method, path)
        except HTTPError as refused:
            status, headers, body = _json(refused.status, error_body(refused), refused.headers)
        except SDKError as exc:
            error = from_sdk_error(exc, self._secrets)
            status, headers, body = _json(error.status, error_body(error), error.headers)
        except Exception:
            logger.exception("internal error while answering %s %s", method, path)
            error = internal_error()
            status, headers, body = _json(error.status, error_body(error))
        start_response(status_line(status), headers)
        logger.info("%s %s %d %.1f ms", method, path, status, (time.monotonic() - started) * 1000)
        return body

    def _route(self, environ: Mapping[str, Any], method: str, path: str) -> Tuple[int, List[Tuple[str, str]], Any]:
        if path == "/health":
            _allow(method, "GET", "HEAD")
            return _json(200, {"status": "ok"})
        self._authorize(environ)
        if path == "/v1/chat/completions":
            _allow(method, "POST")
            return self._chat_completions(environ)
        if path in ("/v1/models", "/v1/models/"):
            _allow(method, "GET")
            return _json(200, {"object": "list", "data": [_model(m.name, m.provider) for m in self.client.models()]})
        if path.startswith("/v1/models/"):
            _allow(method, "GET")
            return _json(200, self._model(path[len("/v1/models/") :]))
        raise HTTPError(404, f"No route {method} {path}: this server has /v1/models and /v1/chat/completions.")

    # -- security --------------------------------------------------------------------

    def _authorize(self, environ: Mapping[str, Any]) -> None:
        if self._api_key is None:
            if not self._no_auth and not _is_loopback(environ.get("REMOTE_ADDR", "")):
                raise HTTPError(
                    403,
                    "This server has no API key, so it answers only clients on its own machine. Its operator "
                    f"can set one ({API_KEY_VARIABLE} or --api-key), or allow everyone with --no-auth.",
                    code="no_api_key_configured",
                )
            return
        scheme, _, token = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPError(
                401,
                "Missing API key: send it as 'Authorization: Bearer <key>' (the OpenAI client's api_key).",
                code="invalid_api_key",
                headers=[("WWW-Authenticate", "Bearer")],
            )
        if not hmac.compare_digest(token.strip().encode("utf-8", "replace"), self._api_key):
            raise HTTPError(401, "Invalid API key.", code="invalid_api_key", headers=[("WWW-Authenticate", "Bearer")])

    def _read_json(self, environ: Mapping[str, Any]) -> Any:
        limit = self._max_body_bytes
        too_large = HTTPError(
            413, f"The request body is larger than this server's limit of {limit} bytes.", code="request_too_large"
        )
        stream = environ["wsgi.input"]
        length = str(environ.get("CONTENT_LENGTH") or "").strip()
        if length:
            if not length.isdigit():
                raise HTTPError(400, "Content-Length is not a number.")
            if int(length) > limit:
                raise too_large
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise too_large
        else:
            body = b""
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise HTTPError(400, f"The request body is not valid JSON ({exc}).") from None

    # -- routes ----------------------------------------------------------------------

    def _model(self, name: str) -> Dict[str, Any]:
        for model in self.client.models():
            if model.name == name:
                return _model(model.name, model.provider)
        try:
            provider = self.client.provider_for(name)
        except ModelNotFoundError:
            raise HTTPError(
                404, f"The model {name!r} does not exist here; GET /v1/models lists them.", code="model_not_found"
            ) from None
        return _model(name, type(provider).__name__)

    def _chat_completions(self, environ: Mapping[str, Any]) -> Tuple[int, List[Tuple[str, str]], Any]:
        body = self._read_json(environ)
        if not isinstance(body, dict):
            raise HTTPError(400, "The request body must be a JSON object.")
        for name in ("model", "messages"):
            if name not in body:
                raise HTTPError(400, f"Missing required parameter: {name!r}.", param=name)
        whole = body.get("stream", False) is False and body.get("stream_options") is None
        # A whole answer is read from a stream too, so that a client that
        # leaves before it is complete can have its run cancelled.
        chat_stream = self._completions.create(**({**body, "stream": True} if whole else body))
        assert isinstance(chat_stream, ChatCompletionStream)
        token = self._monitor.watch(disconnect_check(environ), lambda: _cancel_run(chat_stream))
        if whole:
            try:
                completion = chat_stream.completion()
            finally:
                self._monitor.unwatch(token)
            return _json(200, completion.to_dict())
        headers = [
            ("Content-Type", "text/event-stream; charset=utf-8"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
        ]
        return 200, headers, _EventStream(chat_stream, lambda: self._monitor.unwatch(token), self._secrets)


class _EventStream:
    """The body of a streamed answer: one ``data:`` event per chunk, then
    ``data: [DONE]``; a failure after the first byte is sent as an error
    event (and no ``[DONE]``). Closed early (the client left), it cancels
    the run."""

    def __init__(self, chat_stream: ChatCompletionStream, done: Callable[[], None], secrets: Tuple[str, ...]) -> None:
        self._chat_stream = chat_stream
        self._done = done
        self._secrets = secrets
        self._events = self._generate()

    def __iter__(self) -> Iterator[bytes]:
        return self._events

    def _generate(self) -> Generator[bytes, None, None]:
        chat_stream = self._chat_stream
        try:
            with chat_stream:
                for chunk in chat_stream.json_chunks():
                    yield b"data: " + chunk + b"\n\n"
        except SDKError as exc:
            logger.info("stream %s failed: %s", chat_stream.id, exc)
            yield _error_event(from_sdk_error(exc, self._secrets))
            return
        except Exception:
            logger.exception("internal error while streaming %s", chat_stream.id)
            yield _error_event(internal_error())
            return
        finally:
            self._done()
        yield b"data: [DONE]\n\n"

    def close(self) -> None:
        """Called by the server when the response ends, early or not."""
        self._events.close()  # leaving the with block early cancels the run
        self._chat_stream.__exit__(None, None, None)  # in case the body was never iterated
        self._done()


def _cancel_run(chat_stream: ChatCompletionStream) -> None:
    """Stop the run of a client that left (or of a server that stops)."""
    logger.info("the client of %s is gone: cancelling its run", chat_stream.id)
    try:
        chat_stream.cancel()
    except SDKError as exc:
        logger.warning("could not cancel run %s: %s", chat_stream.text_stream.id, exc)


def _error_event(error: HTTPError) -> bytes:
    return b"data: " + _dumps(error_body(error)) + b"\n\n"


_dumps = compact_json


def _json(
    status: int, payload: Any, headers: Iterable[Tuple[str, str]] = ()
) -> Tuple[int, List[Tuple[str, str]], List[bytes]]:
    body = _dumps(payload)
    return (
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers],
        [body],
    )


def _model(name: str, owner: str) -> Dict[str, Any]:
    return {"id": public_model_name(name), "object": "model", "created": 0, "owned_by": owner}


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HTTPError(
            405,
            f"Method {method} is not allowed here; use {' or '.join(allowed)}.",
            headers=[("Allow", ", ".join(allowed))],
        )


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
