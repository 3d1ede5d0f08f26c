"""Import time in fresh interpreters: this SDK against ``requests`` (which it imports)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Dict

STATEMENTS = {
    "requests": "import requests",
    "sdk": "import replicate_qwen_sdk",
    "sdk, everything": "from replicate_qwen_sdk import Client, GradioSpace, Replicate, BackgroundStream",
}


def time_import(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    # Bytecode caches as a normal install has them (the warm-up run writes
    # them), even where PYTHONDONTWRITEBYTECODE is set: compiling source on
    # every import would be measured otherwise.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return float(result.stdout)


def run(runs: int = 9) -> Dict[str, float]:
    """Median seconds per statement, the statements interleaved."""
    times: Dict[str, list] = {name: [] for name in STATEMENTS}
    for statement in STATEMENTS.values():
        time_import(statement)  # warm the file cache and .pyc files
    for _ in range(runs):
        for name, statement in STATEMENTS.items():
            times[name].append(time_import(statement))
    return {name: statistics.median(values) for name, values in times.items()}
