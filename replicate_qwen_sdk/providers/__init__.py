"""Providers: one module per wire protocol."""
from .base import Provider
from .replicate import Replicate

__all__ = ["Provider", "Replicate"]
