"""Wall time and memory of many paced streams through ``Client.batch``.

Each job streams ``tokens`` tokens ``delay`` seconds apart from the
Replicate emulator (in its own process). The figure is the batch's wall
time divided by one stream's alone, and the peak RSS of the client process
(measured in a fresh interpreter, so nothing run before counts).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Dict


def measure(base_url: str, jobs: int, workers: int) -> Dict[str, float]:
    """Run in a fresh interpreter (see :func:`run`)."""
    from replicate_qwen_sdk import Client
    from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN

    with Client(replicate_api_key=DEFAULT_TOKEN, replicate_base_url=base_url) as client:
        started = time.monotonic()
        alone = client.complete("bench/model", "one")
        single = time.monotonic() - started
        started = time.monotonic()
        results = client.batch(
            [{"model": "bench/model", "prompt": f"job {i}"} for i in range(jobs)], max_workers=workers
        )
        wall = time.monotonic() - started
    if any(result != alone for result in results):
        raise AssertionError("a batch result differs from the single stream's text")
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


def run(jobs: int = 200, workers: int = 200, tokens: int = 50, delay: float = 0.02) -> Dict[str, float]:
    from .servers import replicate_emulator

    with replicate_emulator(tokens, delay=delay, batch_bytes=16384) as base_url:
        output = subprocess.run(
            [sys.executable, "-m", "bench.batch", base_url, str(jobs), str(workers)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return json.loads(output)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
