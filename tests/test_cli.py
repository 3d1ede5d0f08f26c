"""The command line, run as a user runs it: in a subprocess."""

import subprocess
import sys


def test_demo_streams_offline_and_succeeds():
    result = subprocess.run(
        [sys.executable, "-m", "replicate_qwen_sdk", "demo", "--delay", "0.005"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Once upon a time, a small SDK streamed its first tokens.\n" in result.stdout
    assert "identical text" in result.stdout
    assert result.stderr == ""


def test_no_command_prints_usage_and_exits_2():
    result = subprocess.run([sys.executable, "-m", "replicate_qwen_sdk"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "usage" in result.stderr
