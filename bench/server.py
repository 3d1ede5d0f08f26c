"""The OpenAI-compatible server: what it adds to the first chunk, and many
streams through it at once.

The Replicate emulator runs in its own process, and so does the server
(``replicate-qwen serve`` on waitress, as a user starts it), so that the
server's peak RSS is its own. The server's clients speak HTTP/1.1 by hand on
raw sockets (as the batch figure's reference does), so that the figures are
the server's, not an HTTP library's: on two cores, 100 ``requests`` clients
would take CPU from the server they measure.

* Time to first chunk: a streamed chat completion through the server until
  its first ``data:`` event with text, against the same call made directly
  with the SDK (``Replicate.stream`` until its first chunk). Runs alternate;
  the figure is the median of the per-pair differences, in milliseconds.
* Concurrency: ``streams`` streamed completions at once, each 50 tokens 20 ms
  apart, read to ``[DONE]`` and checked; wall time over one stream's alone.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

from urllib.parse import urlsplit

from replicate_qwen_sdk import Replicate
from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

from .batch import _chunked_body
from .servers import bench_tokens, replicate_emulator
from .ttft import MODEL, sdk_first_chunk

TOKENS = 50
DELAY = 0.02


@contextmanager
def openai_server(replicate_base_url: str, threads: int) -> Iterator[Tuple[str, int]]:
    """``replicate-qwen serve`` in a child process; its base URL and pid."""
    command = [sys.executable, "-m", "replicate_qwen_sdk", "--replicate-base-url", replicate_base_url]
    command += ["serve", "--port", "0", "--threads", str(threads)]
    env = dict(os.environ, REPLICATE_API_TOKEN=DEFAULT_TOKEN)
    env.pop("REPLICATE_QWEN_SERVER_API_KEY", None)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        url = process.stdout.readline().strip() if process.stdout else ""
        if not url.startswith("http://"):
            raise RuntimeError("the server did not start (is waitress installed? pip install -e '.[bench]')")
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(30)


def _events(url: str, prompt: str) -> Iterator[bytes]:
    """POST a streamed chat completion; the data of its events as they come
    (closing the generator closes the connection)."""
    parts = urlsplit(url)
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True}).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = sock.makefile("rb")
        sock.sendall(
            f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        if reader.readline().split()[1:2] != [b"200"]:
            raise RuntimeError("the server refused the request")
        _head_rest(reader)
        buffer = b""
        for data in _chunked_body(reader):
            buffer += data
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if event.startswith(b"data: "):
                    yield event[len(b"data: ") :]


def _head_rest(reader) -> None:
    for line in iter(reader.readline, b"\r\n"):
        if not line:
            raise RuntimeError("the connection closed in the response head")


def server_first_chunk(url: str) -> float:
    started = time.perf_counter()
    events = _events(url, "go")
    for data in events:
        if b'"content"' in data:
            elapsed = time.perf_counter() - started
            events.close()  # the server notices, and cancels the run
            return elapsed
    raise RuntimeError("no chunk with text")


def stream_text(url: str, prompt: str) -> str:
    """A whole streamed answer, from its events; checks it ends with [DONE]."""
    parts: List[str] = []
    for data in _events(url, prompt):
        if data == b"[DONE]":
            return "".join(parts)
        chunk = json.loads(data)
        parts.extend(choice["delta"].get("content", "") for choice in chunk["choices"])
    raise RuntimeError("a stream ended without [DONE]")


def _peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _concurrent(url: str, streams: int) -> Dict[str, float]:
    expected = "".join(bench_tokens(TOKENS))
    started = time.monotonic()
    if stream_text(url, "one") != expected:
        raise AssertionError("the single stream's text differs")
    single = time.monotonic() - started
    results: Dict[int, str] = {}
    released: List[float] = []
    barrier = threading.Barrier(streams, action=lambda: released.append(time.monotonic()))

    def one(index: int) -> None:
        barrier.wait()
        results[index] = stream_text(url, f"job {index}")

    threads = [threading.Thread(target=one, args=(index,)) for index in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - released[0]  # from the moment all were let go
    if len(results) != streams or any(text != expected for text in results.values()):
        raise AssertionError("a concurrent stream's text was lost or mixed")
    return {"single": single, "wall": wall, "ratio": wall / single}


def run(runs: int = 40, streams: int = 100) -> Dict[str, float]:
    """Medians: ``server_ms``, ``direct_ms``, ``difference_ms`` (time to
    first chunk), and for ``streams`` concurrent streams ``wall``,
    ``single``, ``ratio`` and the server's ``peak_rss_mib``."""
    with replicate_emulator(TOKENS, delay=DELAY, batch_bytes=1) as base_url:
        with openai_server(base_url, threads=streams + 8) as (url, pid):
            provider = Replicate(api_key=DEFAULT_TOKEN, base_url=base_url)
            server_first_chunk(url)  # warm connections
            sdk_first_chunk(provider)
            direct, through = [], []
            for _ in range(runs):
                direct.append(sdk_first_chunk(provider))
                through.append(server_first_chunk(url))
                time.sleep(0.1)  # the server cancels the run it was left with: not part of the next figure
            provider.close()
            rounds = [_concurrent(url, streams) for _ in range(max(1, min(3, runs // 10)))]
            peak = _peak_rss_mib(pid)
    figures = {key: statistics.median(result[key] for result in rounds) for key in rounds[0]}
    return {
        "server_ms": statistics.median(through) * 1000,
        "direct_ms": statistics.median(direct) * 1000,
        "difference_ms": statistics.median(t - d for t, d in zip(through, direct)) * 1000,
        "peak_rss_mib": peak,
        **figures,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 40), indent=2))
