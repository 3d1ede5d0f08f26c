"""An OpenAI-compatible HTTP server over :class:`~replicate_qwen_sdk.Client`.

``create_app()`` is a plain WSGI application (no framework; waitress is
needed only to run it with ``replicate-qwen serve``)::

    gunicorn -k gthread --threads 32 'replicate_qwen_sdk.server:create_app()'
"""

from .app import OpenAIServer, create_app

__all__ = ["OpenAIServer", "create_app"]
