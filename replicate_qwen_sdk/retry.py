"""When to retry a request, and how long to wait before doing it.

Three policies cover every request the SDK sends:

* :data:`READ` – for requests that are safe to repeat (``GET``, cancel):
  retried on 429, 502, 503, 504 and on any failure to connect or to get a
  response.
* :data:`CREATE_PREDICTION` – for the request that creates a Replicate
  prediction, which runs (and bills) the model every time it is received.
  Retried only where Replicate certainly did nothing: 429 and 503 (answered
  before any work is done) and failures to *connect*. A 502 or 504 comes from
  a gateway that may already have passed the request on, and a connection
  that breaks after sending may have delivered it; the provider then looks
  for the prediction instead of sending the request again.
* :data:`CREATE` – for other requests that start work on the server (a
  Gradio queue join): retried on 429, 502, 503, 504 and failures to connect;
  never on 500, never after a connection broke once the request was sent.
  A 502 or 504 does not prove the server behind the gateway did nothing, so
  a retry may repeat the work.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from typing import FrozenSet, NamedTuple, Optional

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "CREATE",
    "CREATE_PREDICTION",
    "DEFAULT_MAX_RETRIES",
    "MAX_RETRY_AFTER",
    "READ",
    "RetryPolicy",
    "backoff_delay",
    "parse_retry_after",
]

#: Retries after the first attempt, unless the caller sets ``max_retries``.
DEFAULT_MAX_RETRIES = 2
#: First backoff step, in seconds; doubles with each attempt.
BACKOFF_BASE = 0.5
#: Longest backoff step, in seconds.
BACKOFF_CAP = 8.0
#: The longest ``Retry-After`` the SDK waits out by itself; a longer one is
#: raised as :class:`~replicate_qwen_sdk.errors.RateLimitError` at once, so
#: the caller decides.
MAX_RETRY_AFTER = 60.0


class RetryPolicy(NamedTuple):
    """Which failures of one kind of request are worth another attempt."""

    name: str
    statuses: FrozenSet[int]
    #: Retry when the request may already have reached the server (a reset or
    #: a timeout while waiting for the response). Only safe for idempotent
    #: requests.
    after_send_failures: bool


READ = RetryPolicy("read", frozenset({429, 502, 503, 504}), after_send_failures=True)
CREATE = RetryPolicy("create", frozenset({429, 502, 503, 504}), after_send_failures=False)
CREATE_PREDICTION = RetryPolicy("create-prediction", frozenset({429, 503}), after_send_failures=False)


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Delay before retry number ``attempt`` (0-based): capped exponential
    growth with "equal jitter" (half fixed, half random), so that many clients
    failing together do not retry together."""
    step = min(cap, base * (2**attempt))
    return step / 2 + random.uniform(0, step / 2)


def parse_retry_after(value: Optional[str], *, now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an
    HTTP-date); ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
