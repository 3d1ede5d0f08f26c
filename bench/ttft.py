"""Time to first chunk over loopback: this SDK minus the hand-written floor.

Both create a prediction on the Replicate emulator (its own process), open
the stream and wait for the first ``output`` event, which the emulator
sends at once. Runs alternate between the two; the figure is the median of
the per-pair differences, in milliseconds.
"""

from __future__ import annotations

import statistics
import time
from typing import Dict

import requests

from replicate_qwen_sdk import Replicate
from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

MODEL = "bench/model"


def floor_first_chunk(session: requests.Session, base_url: str) -> float:
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    started = time.perf_counter()
    created = session.post(
        f"{base_url}/models/{MODEL}/predictions", json={"input": {"prompt": "go"}}, headers=headers
    ).json()
    response = session.get(created["urls"]["stream"], headers={**headers, "Accept": "text/event-stream"}, stream=True)
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        if b"event: output" in buffer and b"\n\n" in buffer.split(b"event: output", 1)[1]:
            elapsed = time.perf_counter() - started
            response.close()
            return elapsed
    raise RuntimeError("no output event")


def sdk_first_chunk(provider: Replicate) -> float:
    started = time.perf_counter()
    with provider.stream(MODEL, "go") as stream:
        next(stream)
        return time.perf_counter() - started


def run(runs: int = 40) -> Dict[str, float]:
    from .servers import replicate_emulator

    with replicate_emulator(3, delay=0.5, batch_bytes=1) as base_url:
        session = requests.Session()
        provider = Replicate(api_key=DEFAULT_TOKEN, base_url=base_url)
        floor_first_chunk(session, base_url)  # warm connections
        sdk_first_chunk(provider)
        floors, sdks = [], []
        for _ in range(runs):
            floors.append(floor_first_chunk(session, base_url))
            sdks.append(sdk_first_chunk(provider))
        provider.close()
    return {
        "floor_ms": statistics.median(floors) * 1000,
        "sdk_ms": statistics.median(sdks) * 1000,
        "difference_ms": statistics.median(s - f for s, f in zip(sdks, floors)) * 1000,
    }
