"""Client CPU of a long Replicate stream: this SDK, a hand-written floor, replicate-python.

The floor is the least a client can do with ``requests``: create the
prediction, open the stream, split the bytes on blank lines, keep the
``data:`` of ``output`` events. It has no resume, no typed errors, no
timeouts beyond the socket's: what no SDK can beat by much. The official
``replicate`` package (if installed) is pointed at the same emulator.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, Iterable, List, Optional

import requests

from replicate_qwen_sdk import Replicate
from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

MODEL = "bench/model"


def floor_client(base_url: str) -> str:
    with requests.Session() as session:
        return floor_text(session, base_url)


def floor_text(session: requests.Session, base_url: str, prompt: str = "go") -> str:
    """One prediction's text through ``session``, the least a client can do."""
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    created = session.post(
        f"{base_url}/models/{MODEL}/predictions", json={"input": {"prompt": prompt}}, headers=headers
    ).json()
    response = session.get(created["urls"]["stream"], headers={**headers, "Accept": "text/event-stream"}, stream=True)
    try:
        return output_text(response.iter_content(chunk_size=None))
    finally:
        response.close()


def output_text(chunks: Iterable[bytes]) -> str:
    """The data of the ``output`` events up to ``done``: a byte split, nothing more."""
    parts: List[str] = []
    buffer = b""
    for chunk in chunks:
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


def replicate_python_client(base_url: str) -> str:
    import replicate

    client = replicate.Client(api_token=DEFAULT_TOKEN, base_url=base_url[: -len("/v1")])
    parts = [
        event.data for event in client.stream(MODEL, input={"prompt": "go"}) if event.event == event.EventType.OUTPUT
    ]
    return "".join(parts)


def clients() -> Dict[str, Optional[Callable[[str], str]]]:
    """The clients to compare; a peer that is not installed maps to None."""
    found: Dict[str, Optional[Callable[[str], str]]] = {
        "floor": floor_client,
        "sdk": sdk_complete,
        "sdk iterate": sdk_iterate,
    }
    try:
        import replicate  # noqa: F401
    except ImportError:
        found["replicate-python"] = None
    else:
        found["replicate-python"] = replicate_python_client
    return found


def measure(base_url: str, expected: str, runs: int) -> Dict[str, Optional[float]]:
    """Median process CPU seconds per client, runs interleaved so drift hits all alike."""
    results: Dict[str, List[float]] = {name: [] for name in clients()}
    for _ in range(runs):
        for name, client in clients().items():
            if client is None:
                continue
            started = time.process_time()
            text = client(base_url)
            results[name].append(time.process_time() - started)
            if text != expected:
                raise AssertionError(f"{name} returned wrong text ({len(text)} chars, expected {len(expected)})")
    return {name: statistics.median(values) if values else None for name, values in results.items()}


def run(
    tokens: int = 100_000, runs: int = 5, batch_bytes: int = 1, newlines: bool = False
) -> Dict[str, Optional[float]]:
    """Medians for a stream of ``tokens`` events; ``batch_bytes=1`` sends each
    event in its own HTTP chunk, as a server does with tokens made one by one;
    ``newlines`` makes 2 tokens in 12 end a line (multi-line events)."""
    from .servers import bench_tokens, replicate_emulator

    expected = "".join(bench_tokens(tokens, newlines))
    with replicate_emulator(tokens, batch_bytes=batch_bytes, newlines=newlines) as base_url:
        return measure(base_url, expected, runs)
