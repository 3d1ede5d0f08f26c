"""Client CPU per event of a Replicate stream: this SDK against a hand-written floor.

The floor is the least a client can do with ``requests``: create the
prediction, open the stream, split the bytes on blank lines, keep the
``data:`` of ``output`` events. It has no resume, no typed errors, no
timeouts beyond the socket's: what no SDK can beat by much.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List

import requests

from replicate_qwen_sdk import Replicate
from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

MODEL = "bench/model"


def floor_client(base_url: str) -> str:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    created = session.post(
        f"{base_url}/models/{MODEL}/predictions", json={"input": {"prompt": "go"}}, headers=headers
    ).json()
    response = session.get(created["urls"]["stream"], headers={**headers, "Accept": "text/event-stream"}, stream=True)
    parts: List[str] = []
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        *events, buffer = buffer.split(b"\n\n")
        for event in events:
            name = None
            data = []
            for line in event.split(b"\n"):
                if line.startswith(b"event: "):
                    name = line[7:]
                elif line.startswith(b"data: "):
                    data.append(line[6:])
            if name == b"output":
                parts.append(b"\n".join(data).decode())
            elif name == b"done":
                response.close()
                session.close()
                return "".join(parts)
    raise RuntimeError("stream ended without done")


def sdk_complete(base_url: str) -> str:
    with Replicate(api_key=DEFAULT_TOKEN, base_url=base_url) as provider:
        return provider.complete(MODEL, "go")


def sdk_iterate(base_url: str) -> str:
    parts = []
    with Replicate(api_key=DEFAULT_TOKEN, base_url=base_url) as provider:
        with provider.stream(MODEL, "go") as stream:
            for chunk in stream:
                parts.append(chunk)
    return "".join(parts)


CLIENTS: Dict[str, Callable[[str], str]] = {
    "floor": floor_client,
    "sdk complete()": sdk_complete,
    "sdk iterate": sdk_iterate,
}


def measure(base_url: str, expected: str, runs: int) -> Dict[str, List[float]]:
    """Process CPU seconds per client, runs interleaved so drift hits all alike."""
    results: Dict[str, List[float]] = {name: [] for name in CLIENTS}
    for _ in range(runs):
        for name, client in CLIENTS.items():
            started = time.process_time()
            text = client(base_url)
            results[name].append(time.process_time() - started)
            if text != expected:
                raise AssertionError(f"{name} returned wrong text ({len(text)} chars, expected {len(expected)})")
    return results


def run(tokens: int = 100_000, runs: int = 5, batch_bytes: int = 1) -> Dict[str, float]:
    from .servers import replicate_emulator

    expected = "".join(f"tok{i} " for i in range(tokens))
    with replicate_emulator(tokens, batch_bytes=batch_bytes) as base_url:
        results = measure(base_url, expected, runs)
    return {name: statistics.median(values) for name, values in results.items()}
