"""Exceptions raised by replicate_qwen_sdk.

Every failure a caller can meet is an :class:`SDKError`; the builtin classes
mixed into some of them let plain ``except ValueError`` / ``except
TimeoutError`` / ``except ConnectionError`` code keep working::

    SDKError
    ├── MissingAuthError                     no API key or token was found
    ├── InvalidArgumentError (ValueError)    rejected before any request was sent
    ├── APIConnectionError (ConnectionError) the server could not be reached, or the connection broke
    │   └── PredictionMayExistError          a create request's answer was lost; the run may exist
    ├── APITimeoutError (TimeoutError)       connect, idle-read or overall deadline exceeded
    └── ResponseError                        the server answered with an error
        ├── ResponseTooLargeError            an event or an answer passed its size limit
        ├── AuthenticationError              401 / 403
        ├── ModelNotFoundError               404
        ├── RateLimitError                   429, with ``retry_after``
        ├── BadRequestError (ValueError)     400 / 422: the server refused the input
        ├── ServerError                      5xx
        │   └── QueueFullError               a Gradio app's queue is full (503)
        └── PredictionError                  the model run failed, was canceled or aborted

:func:`error_for_status` is the one place that maps an HTTP status (or a
mid-stream error event, which has none) to the right class;
:func:`error_from_response` and :func:`error_from_event_data` feed it from a
failed HTTP response and from a stream's ``error`` event.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional

from .retry import parse_retry_after

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "InvalidArgumentError",
    "MissingAuthError",
    "ModelNotFoundError",
    "PredictionError",
    "PredictionMayExistError",
    "QueueFullError",
    "RateLimitError",
    "ResponseError",
    "ResponseTooLargeError",
    "SDKError",
    "ServerError",
    "error_for_status",
    "error_from_event_data",
    "error_from_response",
    "detail_from_body",
]


class SDKError(Exception):
    """Base class of every exception this package raises.

    :ivar prediction_id: the id of the Replicate prediction the failure
        concerns, once one was created (look it up or cancel it with it);
        ``None`` otherwise.
    """

    prediction_id: Optional[str] = None


class MissingAuthError(SDKError):
    """No credential was given and none was found in the environment."""


class InvalidArgumentError(SDKError, ValueError):
    """An argument is malformed; nothing was sent to the server.

    :ivar argument: the name of the parameter at fault (``"timeout"``,
        ``"temperature"`` ...) when the message starts with it, else ``None``;
        a command line uses it to name its own flag instead.
    """

    def __init__(self, message: str, *, argument: Optional[str] = None) -> None:
        super().__init__(message)
        self.argument = argument


class APIConnectionError(SDKError, ConnectionError):
    """The server could not be reached, or the connection broke mid-way."""

    def __init__(self, message: str) -> None:
        # ConnectionError is an OSError, whose two-argument form means
        # (errno, strerror); always pass exactly one argument.
        super().__init__(message)


class PredictionMayExistError(APIConnectionError):
    """Creating a prediction failed in a way that leaves open whether the
    server received the request (a 502 or 504 from a gateway, a connection
    broken after the request was sent, no answer in time), and no prediction
    it made could be found. The SDK does not send the request again: a second
    one could run, and bill, alongside the first.

    :ivar status_code: the HTTP status of the failed attempt, or ``None``
        when the connection broke or no answer came.
    :ivar created_after: when the lost attempt was made (ISO 8601, UTC):
        look for the prediction among the ones created since.
    """

    def __init__(self, message: str, *, status_code: Optional[int] = None, created_after: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.created_after = created_after


class APITimeoutError(SDKError, TimeoutError):
    """A connect, idle-read or overall deadline was exceeded."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


class ResponseError(SDKError):
    """The server answered with an error.

    :ivar status_code: the HTTP status, or ``None`` for an error reported
        inside a stream.
    :ivar detail: the server's own explanation, as plain text (may be empty).
    """

    def __init__(self, message: str, *, status_code: Optional[int] = None, detail: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail

    def __reduce__(self):  # keyword-only fields survive pickling (thread pools, Dask)
        return (_rebuild, (type(self), self.args, self.__dict__))


class AuthenticationError(ResponseError):
    """The credential was refused (HTTP 401 or 403)."""


class ModelNotFoundError(ResponseError):
    """The model (or endpoint) does not exist, or is not visible to this credential."""


class RateLimitError(ResponseError):
    """Too many requests (HTTP 429).

    :ivar retry_after: seconds the server asked to wait, or ``None``.
    """

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class BadRequestError(ResponseError, ValueError):
    """The server refused the request's input (HTTP 400 or 422)."""


class ServerError(ResponseError):
    """The server failed (HTTP 5xx)."""


class QueueFullError(ServerError):
    """A Gradio app's queue is full (HTTP 503 on joining), even after retries."""


class ResponseTooLargeError(ResponseError):
    """An event of a stream, or a response body, passed its size limit
    (``max_event_size`` / ``max_body_size``); what arrived beyond it was not kept."""


class PredictionError(ResponseError):
    """The model run itself failed, was canceled by someone else, or was aborted.

    :ivar prediction_id: the id of the run, when known.
    """

    def __init__(self, message: str, *, prediction_id: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.prediction_id = prediction_id


def _rebuild(cls, args, state):
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


_ADVICE = {
    400: "Check the model's input parameters.",
    401: "Check the API key or token you passed (or the environment variable it came from).",
    402: "Set up billing with the provider, then try again.",
    403: "Check that your credential has access to this resource.",
    404: "Check the model name; for a private model, check that your credential can see it.",
    409: "The resource is in a conflicting state; fetch it again before retrying.",
    413: "Send a smaller request.",
    422: "Check the model's input parameters.",
    429: "Slow down, or try again after the delay the server asked for.",
}
_SERVER_ADVICE = "The server failed; try again later."


def detail_from_body(
    body: bytes | str | None, limit: int = 500, redact: Callable[[str], str] = lambda text: text
) -> str:
    """Extract the server's explanation from an error body.

    Understands RFC 7807 problem JSON (``detail``/``title``), ``{"error": ...}``
    and ``{"message": ...}`` shapes; any other body is returned as trimmed text.

    :param redact: masks secrets in the text, before it is cut to ``limit``
        (a cut through a secret would leave its start unmasked).
    """
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else str(body)
    text = text.strip()
    try:
        parsed = json.loads(text)
        detail = _detail_from_json(parsed)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than the reader goes
        return _shorten(redact(text), limit)
    return _shorten(redact(detail or text), limit)


def _detail_from_json(parsed: Any) -> str:
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, Mapping):
        for key in ("detail", "error", "message", "title"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, (Mapping, list)) and value:
                return _detail_from_json(value) or json.dumps(value)
    if isinstance(parsed, list) and parsed:
        parts = [_detail_from_json(item) for item in parsed]
        return "; ".join(part for part in parts if part)
    return ""


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for_status(
    status_code: Optional[int],
    detail: str,
    *,
    action: str,
    retry_after: Optional[float] = None,
    model: Optional[str] = None,
    prediction_id: Optional[str] = None,
) -> ResponseError:
    """Build the exception that matches an HTTP status.

    :param status_code: the HTTP status; ``None`` means an error reported by the
        model run itself (a stream ``error`` event or a failed prediction).
    :param detail: the server's explanation (see :func:`detail_from_body`).
    :param action: what the SDK was doing, e.g. ``"creating a prediction"``.
    """
    fields: dict = {"status_code": status_code, "detail": detail}
    explained = f": {detail}" if detail else ""
    if status_code is None:
        return PredictionError(
            f"The model run failed while {action}{explained}. "
            "The text streamed before the failure is in the stream's .text.",
            prediction_id=prediction_id,
            **fields,
        )
    if status_code == 404:
        what = f"Model not found: {model!r}" if model else "Model not found"
        return ModelNotFoundError(f"{what} (HTTP 404 while {action}){explained}. {_ADVICE[404]}", **fields)
    head = f"HTTP {status_code} while {action}{explained}."
    if status_code in (401, 403):
        return AuthenticationError(f"{head} {_ADVICE[401 if status_code == 401 else 403]}", **fields)
    if status_code == 429:
        wait = f" The server asked to wait {retry_after:g} s." if retry_after is not None else ""
        return RateLimitError(f"{head}{wait} {_ADVICE[429]}", retry_after=retry_after, **fields)
    if status_code in (400, 422):
        return BadRequestError(f"{head} {_ADVICE[status_code]}", **fields)
    if status_code >= 500:
        return ServerError(f"{head} {_SERVER_ADVICE}", **fields)
    advice = _ADVICE.get(status_code, "")
    return ResponseError(f"{head} {advice}".rstrip(), **fields)


def error_from_event_data(
    data: str,
    *,
    action: str,
    prediction_id: Optional[str] = None,
    redact: Callable[[str], str] = lambda text: text,
) -> ResponseError:
    """Build the exception for an ``error`` event received inside a stream.

    :param redact: masks secrets in the server's text before it is kept.
    """
    return error_for_status(
        None, detail_from_body(data, redact=redact) or "no detail given", action=action, prediction_id=prediction_id
    )


def error_from_response(
    response: Any,
    *,
    action: str,
    model: Optional[str] = None,
    redact: Callable[[str], str] = lambda text: text,
) -> ResponseError:
    """Build the exception for a failed HTTP response (reads its body).

    :param response: a ``requests.Response`` (anything with ``status_code``,
        ``headers`` and ``content``).
    :param redact: masks secrets in the server's text before it is kept.
    """
    try:
        body = response.content
    except Exception:  # the body could not be read; the status still tells
        body = b""
    return error_for_status(
        response.status_code,
        detail_from_body(body, redact=redact),
        action=action,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        model=model,
    )
