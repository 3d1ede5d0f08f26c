"""Synchronous, streaming access to LLMs on Replicate and Hugging Face Gradio Spaces.

>>> from replicate_qwen_sdk import Replicate
>>> with Replicate() as provider:                                  # doctest: +SKIP
...     for chunk in provider.stream(None, "Write a haiku about rain"):
...         print(chunk, end="", flush=True)

Every provider instance is safe to share between threads. Failures raise
exceptions from :mod:`replicate_qwen_sdk.errors`. The library logs through the
standard :mod:`logging` module, under the ``replicate_qwen_sdk`` logger, and
prints nothing.
"""

import logging as _logging

from .__version__ import __version__
from .background import BackgroundStream
from .client import Client, RoutableModel
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    QueueFullError,
    RateLimitError,
    ResponseError,
    SDKError,
    ServerError,
)
from .providers import GradioSpace, Provider, Qwen_Qwen_2_72B, Replicate
from .stream import StreamMetrics, TextStream
from .timeouts import Timeout

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AuthenticationError",
    "BackgroundStream",
    "BadRequestError",
    "Client",
    "GradioSpace",
    "InvalidArgumentError",
    "MissingAuthError",
    "ModelNotFoundError",
    "PredictionError",
    "Provider",
    "QueueFullError",
    "Qwen_Qwen_2_72B",
    "RateLimitError",
    "Replicate",
    "ResponseError",
    "RoutableModel",
    "SDKError",
    "ServerError",
    "StreamMetrics",
    "TextStream",
    "Timeout",
    "__version__",
]
