"""Emulators in a separate process, so that their CPU is not counted as the client's."""

from __future__ import annotations

import multiprocessing
import os
import sys
from contextlib import contextmanager
from typing import Iterator

SERVE_GRADIO = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "gradio_apps", "serve.py"
)


def bench_tokens(tokens: int, newlines: bool = False) -> list:
    """The bench model's tokens: ``tok<i> ``; with ``newlines``, 2 in 12
    end a line instead, as real model output does (each is then sent as a
    multi-line ``data:`` event)."""
    return [f"tok{i}\n" if newlines and i % 6 == 5 else f"tok{i} " for i in range(tokens)]


def _serve_replicate(ready, stop, tokens: int, delay: float, batch_bytes: int, newlines: bool) -> None:
    from replicate_qwen_sdk.testing import ReplicateEmulator, Script

    script = Script(bench_tokens(tokens, newlines), delay=delay, batch_bytes=batch_bytes)
    emulator = ReplicateEmulator()
    emulator.add_model("bench/model", script)
    with emulator:
        ready.send(emulator.base_url)
        stop.wait()


@contextmanager
def replicate_emulator(
    tokens: int, *, delay: float = 0.0, batch_bytes: int = 1, newlines: bool = False
) -> Iterator[str]:
    """Run a Replicate emulator whose ``bench/model`` sends ``tokens`` tokens
    (see :func:`bench_tokens`); yield its base URL."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    arguments = (send, stop, tokens, delay, batch_bytes, newlines)
    process = context.Process(target=_serve_replicate, args=arguments, daemon=True)
    process.start()
    try:
        if not receive.poll(60):
            raise RuntimeError("the emulator did not start within 60 s")
        yield receive.recv()
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()


def gradio_apps():
    """Start the real Gradio test apps in a child process (the tests' own
    launcher, ``tests/gradio_apps/launch.py``); a context manager yielding their URLs."""
    sys.path.insert(0, os.path.dirname(SERVE_GRADIO))
    try:
        from launch import running_apps
    finally:
        sys.path.pop(0)
    return running_apps()
