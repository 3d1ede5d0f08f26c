"""The server's failures in OpenAI's error shape.

Every failure is answered as ``{"error": {"message", "type", "param",
"code"}}`` with the status an OpenAI client expects: the SDK's exceptions
are mapped here, in one place::

    InvalidArgumentError, BadRequestError   400  invalid_request_error
    (the server's own key missing/wrong)    401  invalid_request_error / invalid_api_key
    ModelNotFoundError                      404  invalid_request_error / model_not_found
    (request body too large)                413  invalid_request_error / request_too_large
    RateLimitError                          429  rate_limit_error (+ Retry-After)
    MissingAuthError                        500  server_error / upstream_credentials_missing
    AuthenticationError (upstream refused   502  upstream_error / upstream_authentication_failed
      the server's credentials), ServerError, PredictionError, APIConnectionError, other SDKError
    QueueFullError                          503  upstream_error / upstream_busy
    APITimeoutError                         504  upstream_error / upstream_timeout

The upstream's refusal of the server's own credentials is a 502, never a
401: an OpenAI client would take a 401 for a wrong key of its own.
"""

from __future__ import annotations

import math
import re
from typing import Dict, Iterable, List, Optional, Tuple

from ..errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    QueueFullError,
    RateLimitError,
    SDKError,
)

__all__ = ["HTTPError", "error_body", "from_sdk_error"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def status_line(status: int) -> str:
    """``"404 Not Found"``, as WSGI's ``start_response`` takes it."""
    return f"{status} {_REASONS.get(status, 'Error')}"


class HTTPError(Exception):
    """A failure answered with ``status`` and OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: Optional[str] = None,
        param: Optional[str] = None,
        headers: Iterable[Tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers: List[Tuple[str, str]] = list(headers)


def error_body(error: HTTPError) -> Dict[str, Dict[str, Optional[str]]]:
    """OpenAI's error object for ``error``."""
    return {"error": {"message": error.message, "type": error.type, "param": error.param, "code": error.code}}


def from_sdk_error(exc: SDKError, secrets: Iterable[str] = ()) -> HTTPError:
    """The answer to a call that failed with ``exc``; ``secrets`` (and any
    password in a URL) are masked in the message, as a last guard."""
    message = _mask(str(exc), secrets)
    if isinstance(exc, InvalidArgumentError):
        return HTTPError(400, message, param=exc.argument)
    if isinstance(exc, BadRequestError):
        return HTTPError(400, message, code="upstream_rejected_input")
    if isinstance(exc, ModelNotFoundError):
        return HTTPError(404, message, code="model_not_found", param="model")
    if isinstance(exc, RateLimitError):
        headers = [] if exc.retry_after is None else [("Retry-After", str(max(1, math.ceil(exc.retry_after))))]
        return HTTPError(429, message, type="rate_limit_error", code="rate_limit_exceeded", headers=headers)
    if isinstance(exc, MissingAuthError):
        return HTTPError(
            500,
            f"This server has no credentials for the upstream service; its operator must set them. {message}",
            type="server_error",
            code="upstream_credentials_missing",
        )
    if isinstance(exc, AuthenticationError):
        return HTTPError(
            502,
            "The upstream service refused this server's credentials; its operator must check them "
            f"(REPLICATE_API_TOKEN, HF_TOKEN). {message}",
            type="upstream_error",
            code="upstream_authentication_failed",
        )
    if isinstance(exc, QueueFullError):
        return HTTPError(503, message, type="upstream_error", code="upstream_busy")
    if isinstance(exc, APITimeoutError):
        return HTTPError(504, message, type="upstream_error", code="upstream_timeout")
    code = "model_failed" if isinstance(exc, PredictionError) else "upstream_failed"
    return HTTPError(502, message, type="upstream_error", code=code)


def internal_error() -> HTTPError:
    """The answer to a failure of this server itself (logged, not shown)."""
    return HTTPError(500, "The server failed to handle this request; its log has the details.", type="server_error")


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]*@")


def _mask(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _USERINFO.sub(r"\1", text)
