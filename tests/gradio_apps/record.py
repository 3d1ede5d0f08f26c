"""Record the scenarios of every Space replica against real Gradio servers.

    python tests/gradio_apps/record.py [MAJOR ...]

For each Gradio major (3, 4, 5 and 6 by default) that a Python here can serve
(``GRADIO<major>_PYTHON``, or this interpreter's own gradio; matrix.py sets
them), the replicas run on a real server and each scenario of
scenarios.py goes through the SDK and a recording proxy (Gradio 3's
websocket queue included). What the server answered is written to
tests/data/gradio_transcripts/gradio<major>/<replica>.json, with the SDK's
chunks, for tests/test_gradio_transcripts.py to replay.
A scenario is recorded only if it passes its checks live.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gradio_apps.launch import SPACES_SERVE, AppProcess  # noqa: E402
from gradio_apps.scenarios import REPLICAS, calls, check, replicas_of  # noqa: E402
from gradio_apps.transcripts import RecordingProxy  # noqa: E402

from replicate_qwen_sdk import GradioSpace, SDKError, Timeout  # noqa: E402

DATA = os.path.join(os.path.dirname(HERE), "data", "gradio_transcripts")


def server_python(major: int):
    sys.path.insert(0, os.path.dirname(HERE))
    from conftest import gradio_server_python

    return gradio_server_python(major)


def record_call(url: str, replica, scenario: str, call) -> dict:
    with RecordingProxy(url) as proxy:
        provider = GradioSpace(proxy.url, timeout=Timeout(connect=5, read=60))
        try:
            with provider.stream(None, call.messages, **call.kwargs) as stream:
                chunks = list(stream)
        except SDKError as exc:
            if not replica.needs_login:
                raise
            result = {"error": type(exc).__name__, "message": str(exc)}
        else:
            check(replica, scenario, stream.text, chunks, stream.ignored_parameters)
            result = {"text": stream.text, "chunks": chunks, "ignored_parameters": list(stream.ignored_parameters)}
        finally:
            provider.close()
    exchanges = [e for e in proxy.exchanges if e["path"] != "/config"]
    config = next(e for e in proxy.exchanges if e["path"] == "/config")
    recorded = {"call": {"messages": call.messages, "kwargs": call.kwargs}, "result": result, "exchanges": exchanges}
    return recorded, config


def main(majors) -> None:
    for major in majors:
        python = server_python(major)
        if python is None:
            print(f"Gradio {major}: no Python serves it here (set GRADIO{major}_PYTHON); skipped", file=sys.stderr)
            continue
        process = AppProcess(python, SPACES_SERVE, replicas_of(major))
        try:
            urls = process.urls()
            folder = os.path.join(DATA, f"gradio{major}")
            os.makedirs(folder, exist_ok=True)
            for name, replica in REPLICAS.items():
                if replica.major != major:
                    continue
                recording = {"replica": name, "scenarios": {}}
                for scenario, call in calls(replica).items():
                    recorded, config = record_call(urls[replica.app], replica, scenario, call)
                    recording["config"] = config
                    recording["gradio"] = json.loads(config["body"]).get("version", "").strip()
                    recording["scenarios"][scenario] = recorded
                path = os.path.join(folder, f"{replica.app}.json")
                with open(path, "w", encoding="utf-8") as out:
                    json.dump(recording, out, ensure_ascii=False, indent=1, sort_keys=True)
                print(f"Gradio {recording['gradio']}: {name}: {len(recording['scenarios'])} scenarios -> {path}")
        finally:
            process.stop()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [3, 4, 5, 6])
