"""Emulators in a separate process, so that their CPU is not counted as the client's."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import Dict, Iterator

SERVE_GRADIO = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "gradio_apps", "serve.py"
)


def _serve_replicate(ready, stop, tokens: int, delay: float, batch_bytes: int) -> None:
    from replicate_qwen_sdk.testing import ReplicateEmulator, Script

    script = Script([f"tok{i} " for i in range(tokens)], delay=delay, batch_bytes=batch_bytes)
    emulator = ReplicateEmulator()
    emulator.add_model("bench/model", script)
    with emulator:
        ready.send(emulator.base_url)
        stop.wait()


@contextmanager
def replicate_emulator(tokens: int, *, delay: float = 0.0, batch_bytes: int = 1) -> Iterator[str]:
    """Run a Replicate emulator whose ``bench/model`` sends ``tokens`` tokens;
    yield its base URL."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=_serve_replicate, args=(send, stop, tokens, delay, batch_bytes), daemon=True)
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


@contextmanager
def gradio_apps() -> Iterator[Dict[str, str]]:
    """Start the real Gradio test apps in a child process; yield their URLs."""
    process = subprocess.Popen(
        [sys.executable, SERVE_GRADIO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line: Dict[str, str] = {}
    reader = threading.Thread(target=lambda: line.setdefault("urls", process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(300)
    try:
        if not line.get("urls", "").strip():
            raise RuntimeError("the Gradio apps did not start (is gradio installed?)")
        yield json.loads(line["urls"])
    finally:
        process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
