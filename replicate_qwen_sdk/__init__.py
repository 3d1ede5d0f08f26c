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

import importlib as _importlib
import logging as _logging
from typing import TYPE_CHECKING

from .__version__ import __version__
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    PredictionMayExistError,
    QueueFullError,
    RateLimitError,
    ResponseError,
    ResponseTooLargeError,
    SDKError,
    ServerError,
)
from .providers import Provider, Replicate
from .stream import StreamMetrics, TextStream
from .timeouts import Timeout

if TYPE_CHECKING:
    from .background import BackgroundStream
    from .client import Client, RoutableModel
    from .providers.gradio import GradioSpace, Qwen_Qwen_2_72B

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

# Imported on first use, so that a script that needs only Replicate does not
# pay for the Gradio provider, the client and its thread pools.
_LAZY = {
    "BackgroundStream": ".background",
    "Client": ".client",
    "GradioSpace": ".providers.gradio",
    "Qwen_Qwen_2_72B": ".providers.gradio",
    "RoutableModel": ".client",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
    "PredictionMayExistError",
    "Provider",
    "QueueFullError",
    "Qwen_Qwen_2_72B",
    "RateLimitError",
    "Replicate",
    "ResponseError",
    "ResponseTooLargeError",
    "RoutableModel",
    "SDKError",
    "ServerError",
    "StreamMetrics",
    "TextStream",
    "Timeout",
    "__version__",
]
