"""Start the test apps (serve.py) in a child process, for the tests and the benchmarks."""

import json
import os
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager

SERVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve.py")


@contextmanager
def running_apps(start_timeout: float = 300.0, *, script: str = SERVE, args=(), python: str = sys.executable):
    """Yield the JSON line a serve script prints (``{"qwen": url, "chat":
    url, "busy": url}`` for serve.py) while the apps run, under ``python``
    (a virtual environment with another Gradio, for instance).

    Importing gradio can take a minute on a busy machine, hence the long
    start timeout. The child's stderr goes to a file, so a chatty server
    never blocks on a full pipe, and is shown if it fails to start.
    """
    errors = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        [python, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
    )
    first_line = {}
    reader = threading.Thread(target=lambda: first_line.setdefault("urls", process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(start_timeout)
    try:
        if not first_line.get("urls", "").strip():
            process.kill()
            errors.seek(0)
            raise RuntimeError(f"the Gradio test apps did not start: {errors.read()[-3000:]}")
        yield json.loads(first_line["urls"])
    finally:
        process.stdin.close()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        errors.close()
