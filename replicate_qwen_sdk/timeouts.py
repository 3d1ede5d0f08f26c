"""Timeouts: how long the SDK waits, in one place.

Three limits apply to every call:

* ``connect`` – to open a TCP (and TLS) connection;
* ``read`` – the longest *silence*: time without a single new byte from the
  server while waiting for a response or reading a stream;
* ``total`` – an optional deadline for the whole call, retries and stream
  included (``None``: no overall limit; the idle limit still prevents hangs).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple, Optional, Union

from .errors import InvalidArgumentError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_TOTAL_TIMEOUT",
    "MAX_TIMEOUT",
    "Deadline",
    "Timeout",
    "TimeoutLike",
]

#: Seconds to open a connection.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Longest silence between bytes, in seconds. Generous because a model that
#: boots cold can stay silent for a minute or more before its first token.
DEFAULT_READ_TIMEOUT = 120.0
#: No overall deadline unless the caller asks for one.
DEFAULT_TOTAL_TIMEOUT: Optional[float] = None
#: The longest limit accepted, in seconds (30 days): far beyond any call, and
#: within what sockets and locks can wait on every platform.
MAX_TIMEOUT = 30 * 24 * 3600.0


def _is_seconds(value: object) -> bool:
    """Whether ``value`` is a number of seconds a limit can be: more than 0,
    finite, at most :data:`MAX_TIMEOUT`."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and 0 < value <= MAX_TIMEOUT
    )


def _requirement(value: object) -> str:
    return f"must be a positive number of seconds up to {MAX_TIMEOUT:.0f} (30 days), got {value!r}."


class _TimeoutFields(NamedTuple):
    connect: float
    read: float
    total: Optional[float]


class Timeout(_TimeoutFields):
    """The three limits, in seconds: ``Timeout(connect=10, read=120, total=None)``.
    Immutable, so safe to share."""

    __slots__ = ()

    def __new__(
        cls,
        connect: float = DEFAULT_CONNECT_TIMEOUT,
        read: float = DEFAULT_READ_TIMEOUT,
        total: Optional[float] = DEFAULT_TOTAL_TIMEOUT,
    ) -> "Timeout":
        for name, value in (("connect", connect), ("read", read), ("total", total)):
            if value is None and name == "total":
                continue
            if not _is_seconds(value):
                hint = " (None: no overall limit)" if name == "total" else ""
                raise InvalidArgumentError(f"Timeout.{name}{hint} {_requirement(value)}")
        return super().__new__(cls, connect, read, total)

    @classmethod
    def coerce(cls, value: "TimeoutLike") -> "Timeout":
        """Accept a :class:`Timeout`, a number (used for both connect and read,
        as in ``requests``), or ``None`` (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, Timeout):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidArgumentError(
                f"timeout must be a number of seconds or a Timeout(...), got {value!r}.", argument="timeout"
            )
        if not _is_seconds(value):
            raise InvalidArgumentError(f"timeout {_requirement(value)}", argument="timeout")
        return cls(connect=float(value), read=float(value))


TimeoutLike = Union[Timeout, float, int, None]


class Deadline:
    """The moment a call must be over by; ``None`` means never."""

    __slots__ = ("_at", "seconds")

    def __init__(self, seconds: Optional[float]) -> None:
        self.seconds = seconds
        self._at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> Optional[float]:
        """Seconds left (never negative), or ``None`` without a deadline."""
        if self._at is None:
            return None
        return max(0.0, self._at - time.monotonic())

    def expired(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at

    def clamp(self, seconds: float) -> float:
        """``seconds``, shortened so that it ends no later than the deadline."""
        left = self.remaining()
        return seconds if left is None else min(seconds, left)
