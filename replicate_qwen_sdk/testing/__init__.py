"""Loopback emulators for tests, demos and benchmarks; no network needed.

* :class:`ReplicateEmulator` serves the Replicate prediction API;
* :class:`GradioEmulator` serves a Gradio 6 chat app shaped like the
  Qwen2-72B-Instruct Space;
* :class:`Emulators` runs both, with the environment that points the SDK
  at them (``replicate-qwen emulate``).

Both run on ``127.0.0.1``, answer from :class:`Script` objects and fail on
demand (:meth:`~LoopbackServer.inject_fault`, drops, errors, silences).
"""

from ._server import Fault, LoopbackServer, RecordedRequest
from .emulate import Emulators
from .gradio import GradioEmulator, echo_chat
from .replicate import Prediction, ReplicateEmulator, echo_tokens
from .script import Script

__all__ = [
    "Emulators",
    "Fault",
    "GradioEmulator",
    "LoopbackServer",
    "Prediction",
    "RecordedRequest",
    "ReplicateEmulator",
    "Script",
    "echo_chat",
    "echo_tokens",
]
