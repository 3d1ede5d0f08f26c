"""Gradio apps (Hugging Face Spaces or any URL), through the queue protocol."""

from .space import GradioSpace, Qwen_Qwen_2_72B, space_url

__all__ = ["GradioSpace", "Qwen_Qwen_2_72B", "space_url"]
