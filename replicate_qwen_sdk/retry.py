"""When to retry a request, and how long to wait before doing it.

Two policies cover every request the SDK sends:

* :data:`READ` – for requests that are safe to repeat (``GET``, cancel):
  retried on 429, 502, 503, 504 and on any failure to connect or to get a
  response.
* :data:`CREATE` – for a request that starts work on the server (a
  prediction, a queue join). Repeating it after the server may have acted
  would run the model twice, so it is retried only when the server certainly
  did not act: 429, 502, 503, 504, and failures to *connect*. Never on 500,
  never after the request may have reached the server.
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
