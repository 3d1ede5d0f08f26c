"""Shared fixtures: loopback emulators and providers pointed at them."""

import logging

import pytest

from replicate_qwen_sdk import Replicate, Timeout
from replicate_qwen_sdk.testing import ReplicateEmulator

SECRET = "r8_test_secret_value_0123456789abcdefghij"


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch):
    """Tests talk to 127.0.0.1 only; a developer's proxy settings must not
    reroute them. Tests of proxy support set these themselves."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_BASE_URL", "QWEN_SPACE_URL", "REPLICATE_QWEN_SERVER_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_prediction_claimed_by_earlier_tests(monkeypatch):
    """The process remembers which predictions its calls took over after a
    lost create, so two calls never share one; tests reuse ids such as
    ``p1``, so each starts with a fresh record (else the order of the test
    files would decide what a lookup may take)."""
    from replicate_qwen_sdk.providers import replicate

    monkeypatch.setattr(replicate, "_CLAIMS", replicate._Claims())


@pytest.fixture
def emulator():
    with ReplicateEmulator(api_token=SECRET) as server:
        yield server


@pytest.fixture
def provider(emulator):
    """A Replicate provider on the emulator, with short timeouts and instant backoff."""
    client = Replicate(api_key=SECRET, base_url=emulator.base_url, timeout=Timeout(connect=5, read=5))
    client._transport.sleep = lambda seconds: None
    with client:
        yield client


@pytest.fixture
def sdk_log(caplog):
    """Everything the SDK logs, at every level."""
    caplog.set_level(logging.DEBUG, logger="replicate_qwen_sdk")
    return caplog


@pytest.fixture(scope="session")
def gradio_apps():
    """Real Gradio apps (tests/gradio_apps) on 127.0.0.1, started once per
    test session in their own process: ``{"qwen": url, "chat": url, "busy": url,
    "vision": url}``."""
    pytest.importorskip("gradio", reason="gradio needs Python 3.10+; the Gradio 4 replays still run")
    from gradio_apps.launch import running_apps

    with running_apps() as urls:
        yield urls


def gradio_server_python(major):
    """The Python that serves Gradio ``major`` here: ``GRADIO<major>_PYTHON``
    (a virtual environment made by tests/gradio_apps/matrix.py), else this
    interpreter when its gradio is of that major, else ``None``."""
    import os
    import sys
    from importlib import metadata

    python = os.environ.get(f"GRADIO{major}_PYTHON")
    if python:
        return python
    try:
        installed = metadata.version("gradio")
    except metadata.PackageNotFoundError:
        return None
    return sys.executable if installed.split(".")[0] == str(major) else None


@pytest.fixture(scope="session")
def space_replicas():
    """``space_replicas(major)`` -> ``{replica: url}``: the Space replicas of
    tests/gradio_apps/spaces on a real server of that Gradio major, one
    process per major, all started together on first use and stopped at the
    end of the session. Skips a major no Python here can serve."""
    from gradio_apps.launch import SPACES_SERVE, AppProcess
    from gradio_apps.scenarios import REPLICAS, replicas_of

    processes = {}

    def urls(major):
        if not processes:
            for wanted in sorted({replica.major for replica in REPLICAS.values()}):
                python = gradio_server_python(wanted)
                if python is not None:
                    processes[wanted] = AppProcess(python, SPACES_SERVE, replicas_of(wanted))
            processes.setdefault(None, None)  # started once, even if none can run
        if processes.get(major) is None:
            pytest.skip(f"no Gradio {major} here: run tests/gradio_apps/matrix.py, or set GRADIO{major}_PYTHON")
        return processes[major].urls()

    yield urls
    for process in processes.values():
        if process is not None:
            process.stop()


@pytest.fixture(scope="session")
def dask_cluster():
    """A real Dask cluster of two worker processes on 127.0.0.1, once per session."""
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=8, processes=True, dashboard_address=":0", host="127.0.0.1"
    ) as cluster:
        yield cluster


class Consumer:
    """Iterates a stream in its own thread: ``first`` is set at the first
    chunk; ``outcome`` ends as ``{"ended": True}`` or ``{"error": exc}``."""

    def __init__(self, stream):
        import threading

        self.first = threading.Event()
        self.outcome = {}
        self.thread = threading.Thread(target=self._run, args=(stream,))
        self.thread.start()

    def _run(self, stream):
        try:
            for _ in stream:
                self.first.set()
            self.outcome["ended"] = True
        except BaseException as exc:  # reported by the test through outcome
            self.outcome["error"] = exc


@pytest.fixture
def consume():
    """Start iterating a stream in another thread (see :class:`Consumer`)."""
    return Consumer


@pytest.fixture
def run_in_threads():
    """``run_in_threads(count, call)`` runs ``call(index)`` in ``count``
    threads at once; returns ``{index: result}`` and the exceptions raised."""
    import threading

    def run(count, call, timeout=120):
        results, errors = {}, []

        def one(index):
            try:
                results[index] = call(index)
            except BaseException as exc:  # reported to the test
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(index,)) for index in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
        return results, errors

    return run
