"""Providers: one module (or package) per wire protocol."""

import importlib as _importlib
from typing import TYPE_CHECKING

from .base import Provider
from .replicate import Replicate

if TYPE_CHECKING:
    from .gradio import GradioSpace, Qwen_Qwen_2_72B

__all__ = ["GradioSpace", "Provider", "Qwen_Qwen_2_72B", "Replicate"]


def __getattr__(name: str):
    if name in ("GradioSpace", "Qwen_Qwen_2_72B"):  # imported on first use
        value = getattr(_importlib.import_module(".gradio", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
