"""Start Gradio test apps in child processes, for the tests and the benchmarks."""

import json
import os
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Dict, Optional, Sequence

HERE = os.path.dirname(os.path.abspath(__file__))
SERVE = os.path.join(HERE, "serve.py")
SPACES_SERVE = os.path.join(HERE, "spaces", "serve.py")


class AppProcess:
    """A serve script run by ``python`` (another virtual environment's, for
    another Gradio): started at once, its URLs read when needed.

    The script prints one JSON line of URLs once its apps are up and serves
    until its stdin closes. Its stderr goes to a file, so a chatty server
    never blocks on a full pipe, and is shown if it fails to start.
    """

    def __init__(self, python: str = sys.executable, script: str = SERVE, args: Sequence[str] = ()) -> None:
        self._errors = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            [python, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, text=True
        )
        self._line: Dict[str, str] = {}
        self._reader = threading.Thread(target=self._read_first_line, daemon=True)
        self._reader.start()

    def _read_first_line(self) -> None:
        self._line["urls"] = self._process.stdout.readline()

    def urls(self, start_timeout: float = 300.0) -> Dict[str, str]:
        """Wait for the apps (importing gradio can take a minute on a busy
        machine) and return their URLs by name."""
        self._reader.join(start_timeout)
        line = self._line.get("urls", "")
        if not line.strip():
            self.stop()
            self._errors.seek(0)
            raise RuntimeError(f"the Gradio test apps did not start: {self._errors.read()[-3000:]}")
        return json.loads(line)

    def stop(self) -> None:
        if self._process.stdin and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        self._errors.close()


@contextmanager
def running_apps(start_timeout: float = 300.0, *, script: str = SERVE, args=(), python: Optional[str] = None):
    """Yield the URLs a serve script prints (``{"qwen": url, "chat": url,
    "busy": url}`` for serve.py) while its apps run."""
    process = AppProcess(python or sys.executable, script, args)
    try:
        yield process.urls(start_timeout)
    finally:
        process.stop()
