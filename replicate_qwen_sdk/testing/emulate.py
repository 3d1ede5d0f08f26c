"""Both emulators at once, for trying the SDK and its command line offline.

``replicate-qwen emulate`` runs :func:`serve_until_interrupted`: the
Replicate API and the Qwen Space on ``127.0.0.1`` until Ctrl-C, with the
environment lines that point the SDK (and ``replicate-qwen``) at them::

    with Emulators() as emulators:
        os.environ.update(emulators.environment)
        print(Client().complete("qwen-2-72b", "Hello"))     # answered locally
"""

from __future__ import annotations

import time
from typing import Dict, Optional, TextIO

from .gradio import GradioEmulator
from .replicate import ReplicateEmulator

__all__ = ["Emulators", "serve_until_interrupted"]


class Emulators:
    """A :class:`ReplicateEmulator` and a :class:`GradioEmulator` started
    and stopped together.

    :param replicate_port: the Replicate emulator's port (0: any free one).
    :param qwen_port: the Qwen Space emulator's port (0: any free one).
    """

    def __init__(self, *, replicate_port: int = 0, qwen_port: int = 0) -> None:
        self.replicate = ReplicateEmulator(port=replicate_port)
        self.qwen = GradioEmulator(port=qwen_port)

    @property
    def environment(self) -> Dict[str, str]:
        """The variables that send the SDK's calls to the emulators."""
        return {
            "REPLICATE_BASE_URL": self.replicate.base_url,
            "REPLICATE_API_TOKEN": self.replicate.api_token or "r8_any_token",
            "QWEN_SPACE_URL": self.qwen.url,
        }

    def start(self) -> "Emulators":
        self.replicate.start()
        try:
            self.qwen.start()
        except BaseException:
            self.replicate.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            self.qwen.stop()
        finally:
            self.replicate.stop()

    def __enter__(self) -> "Emulators":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def describe(emulators: Emulators) -> str:
    """What :func:`serve_until_interrupted` prints: where the emulators are,
    what they serve, and the lines to paste into another shell."""
    models = ", ".join(ReplicateEmulator.DEFAULT_MODELS)
    exports = "\n".join(f"export {name}={value}" for name, value in emulators.environment.items())
    return (
        f"Replicate API emulator: {emulators.replicate.base_url}\n"
        f"  models: {models} (each answers with an echo of the prompt)\n"
        f"Qwen Space emulator:    {emulators.qwen.url}\n"
        "  model: qwen-2-72b (answers with what it received: system prompt, turns, question);\n"
        "  gradio_client can use it too: Client(QWEN_SPACE_URL)\n"
        "\n"
        "Point the SDK and replicate-qwen at them, in another shell (no key, no internet needed):\n"
        "\n"
        f"{exports}\n"
        "\n"
        "Serving until Ctrl-C.\n"
    )


def serve_until_interrupted(
    out: TextIO, *, replicate_port: int = 0, qwen_port: int = 0, emulators: Optional[Emulators] = None
) -> None:
    """Start both emulators, write :func:`describe` to ``out``, and serve
    until ``KeyboardInterrupt`` (Ctrl-C), which stops them and returns."""
    emulators = emulators or Emulators(replicate_port=replicate_port, qwen_port=qwen_port)
    with emulators:
        try:  # from the first line on: a Ctrl-C as soon as it is printed is a clean stop too
            out.write(describe(emulators))
            out.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            out.write("Stopped.\n")
            out.flush()
