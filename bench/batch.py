"""Wall time and memory of many paced streams run at once.

Each job streams ``tokens`` tokens ``delay`` seconds apart from the
Replicate emulator (in its own process). The figure is the batch's wall
time divided by one stream's alone, for this SDK (``Client.batch``) and for
its peers run the way a user would run them (a ``ThreadPoolExecutor`` as
wide as the batch): the hand-written ``requests`` floor on one shared
session, and replicate-python on one shared client. Each measurement runs
in a fresh interpreter, so the peak RSS counts nothing run before.
"""

from __future__ import annotations

import json
import resource
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

from .replicate_stream import MODEL, floor_text, output_text

#: ``sockets`` is a reference, not a peer: HTTP/1.1 written by hand on raw
#: sockets, to show what the same batch costs below any HTTP library.
KINDS = ("sdk", "floor", "replicate-python", "sockets")


def _sdk(base_url: str, workers: int):
    from replicate_qwen_sdk import Client
    from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

    client = Client(replicate_api_key=DEFAULT_TOKEN, replicate_base_url=base_url)

    def one(prompt: str) -> str:
        return client.complete(MODEL, prompt)

    def many(prompts: List[str]) -> List[str]:
        return client.batch([{"model": MODEL, "prompt": prompt} for prompt in prompts], max_workers=workers)

    return one, many


def _floor(base_url: str, workers: int):
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=workers))

    def one(prompt: str) -> str:
        return floor_text(session, base_url, prompt)

    return one, _on_threads(one, workers)


def _replicate_python(base_url: str, workers: int):
    import httpx
    import replicate

    from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    client = replicate.Client(
        api_token=DEFAULT_TOKEN, base_url=base_url[: -len("/v1")], transport=httpx.HTTPTransport(limits=limits)
    )

    def one(prompt: str) -> str:
        events = client.stream(MODEL, input={"prompt": prompt})
        return "".join(event.data for event in events if event.event == event.EventType.OUTPUT)

    return one, _on_threads(one, workers)


def _sockets(base_url: str, workers: int):
    from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

    parts = urlsplit(base_url)
    auth = f"Host: {parts.netloc}\r\nAuthorization: Bearer {DEFAULT_TOKEN}\r\n"

    def one(prompt: str) -> str:
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = sock.makefile("rb")
            body = json.dumps({"input": {"prompt": prompt}}).encode()
            sock.sendall(
                f"POST {parts.path}/models/{MODEL}/predictions HTTP/1.1\r\n{auth}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            created = json.loads(reader.read(int(_head(reader)["content-length"])))
            stream = urlsplit(created["urls"]["stream"]).path
            sock.sendall(f"GET {stream} HTTP/1.1\r\n{auth}Accept: text/event-stream\r\n\r\n".encode())
            _head(reader)
            return output_text(_chunked_body(reader))

    return one, _on_threads(one, workers)


def _head(reader) -> Dict[str, str]:
    """Skip the status line; the headers, names lowercased."""
    reader.readline()
    headers = {}
    for line in iter(reader.readline, b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _chunked_body(reader) -> Iterator[bytes]:
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            return
        yield reader.read(size)
        reader.read(2)


def _on_threads(one: Callable[[str], str], workers: int) -> Callable[[List[str]], List[str]]:
    def many(prompts: List[str]) -> List[str]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, prompts))

    return many


def measure(kind: str, base_url: str, jobs: int, workers: int) -> Dict[str, float]:
    """Run in a fresh interpreter (see :func:`run`)."""
    clients = {"sdk": _sdk, "floor": _floor, "replicate-python": _replicate_python, "sockets": _sockets}
    one, many = clients[kind](base_url, workers)
    started = time.monotonic()
    alone = one("one")
    single = time.monotonic() - started
    started = time.monotonic()
    results = many([f"job {i}" for i in range(jobs)])
    wall = time.monotonic() - started
    if len(results) != jobs or any(result != alone for result in results):
        raise AssertionError(f"{kind}: a batch result differs from the single stream's text")
    return {"single": single, "wall": wall, "ratio": wall / single, "peak_rss_mib": _peak_rss_kib() / 1024}


def _peak_rss_kib() -> float:
    """This process's peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss``
    (the fallback off Linux) also counts the forking parent's pages."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def installed(kind: str) -> bool:
    if kind != "replicate-python":
        return True
    try:
        import httpx  # noqa: F401
        import replicate  # noqa: F401
    except ImportError:
        return False
    return True


def run(
    jobs: int = 200, workers: int = 200, tokens: int = 50, delay: float = 0.02, runs: int = 3, kinds=KINDS
) -> Dict[str, Optional[Dict[str, float]]]:
    """Medians over ``runs`` rounds, the clients taking turns within each
    round; a peer that is not installed maps to None."""
    from .servers import replicate_emulator

    measured: Dict[str, List[Dict[str, float]]] = {kind: [] for kind in kinds if installed(kind)}
    with replicate_emulator(tokens, delay=delay, batch_bytes=16384) as base_url:
        for _ in range(runs):
            for kind in measured:
                output = subprocess.run(
                    [sys.executable, "-m", "bench.batch", kind, base_url, str(jobs), str(workers)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                measured[kind].append(json.loads(output))
    medians: Dict[str, Optional[Dict[str, float]]] = {kind: None for kind in kinds}
    for kind, results in measured.items():
        medians[kind] = {key: statistics.median(result[key] for result in results) for key in results[0]}
    return medians


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
