"""Loopback emulators for tests, demos and benchmarks; no network needed.

:class:`ReplicateEmulator` serves the Replicate prediction API on
``127.0.0.1`` from :class:`Script` objects, and can fail on demand
(:meth:`~ReplicateEmulator.inject_fault`, drops, error events, silences).
"""

from ._server import Fault, LoopbackServer, RecordedRequest
from .replicate import Prediction, ReplicateEmulator, Script, echo_tokens

__all__ = [
    "Fault",
    "LoopbackServer",
    "Prediction",
    "RecordedRequest",
    "ReplicateEmulator",
    "Script",
    "echo_tokens",
]
