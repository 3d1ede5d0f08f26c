"""Providers: one module (or package) per wire protocol."""

from .base import Provider
from .gradio import GradioSpace, Qwen_Qwen_2_72B
from .replicate import Replicate

__all__ = ["GradioSpace", "Provider", "Qwen_Qwen_2_72B", "Replicate"]
