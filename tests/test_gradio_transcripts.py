"""GradioSpace on every Gradio major, replayed from recordings of real servers.

tests/gradio_apps/record.py ran each scenario of each Space replica against a
real Gradio 3, 4, 5 and 6 server through a recording proxy
(tests/data/gradio_transcripts). Here a loopback server answers with those
exact bytes (Gradio 3's websocket queue with the same messages, in the same
order), and only if the SDK sends exactly what it sent then: so the majors
that are not installed are still covered, by what their servers really
said.
"""

import json
import pathlib

import pytest

from gradio_apps.scenarios import REPLICAS, check
from gradio_apps.transcripts import TranscriptServer
from replicate_qwen_sdk import GradioSpace, SDKError

DATA = pathlib.Path(__file__).parent / "data" / "gradio_transcripts"

RECORDINGS = sorted(DATA.glob("gradio*/*.json"))
CASES = [
    (path, scenario) for path in RECORDINGS for scenario in json.loads(path.read_text(encoding="utf-8"))["scenarios"]
]


def test_every_major_and_replica_was_recorded():
    recorded = {(path.parent.name, path.stem) for path in RECORDINGS}
    for replica in REPLICAS.values():
        assert (f"gradio{replica.major}", replica.app) in recorded, replica.name


@pytest.mark.parametrize("path, scenario", CASES, ids=[f"{p.parent.name}-{p.stem}-{s}" for p, s in CASES])
def test_the_sdk_sends_and_reads_what_the_real_server_did(path, scenario):
    recording = json.loads(path.read_text(encoding="utf-8"))
    if path.parent.name == "gradio3":
        pytest.importorskip("websocket", reason="Gradio 3's queue needs the websocket-client extra")
    replica = next(r for r in REPLICAS.values() if r.app == path.stem and f"gradio{r.major}" == path.parent.name)
    recorded = recording["scenarios"][scenario]
    call, result = recorded["call"], recorded["result"]
    with TranscriptServer([recording["config"], *recorded["exchanges"]]) as server:
        try:
            with GradioSpace(server.url) as provider:
                replay(provider, replica, scenario, call, result)
        finally:  # a miss is the cause of any failure it brings: it is what the test reports
            assert server.misses == [], "the SDK sent requests the real server was never sent"
        assert server.unused == [], "the SDK skipped requests the real server was sent"


def replay(provider, replica, scenario, call, result):
    """Make the recorded call and compare what the SDK shows with the recording."""
    if "error" in result:
        with pytest.raises(SDKError) as caught:
            provider.complete(None, call["messages"], **call["kwargs"])
        assert type(caught.value).__name__ == result["error"]
        assert str(caught.value) == result["message"]
        return
    with provider.stream(None, call["messages"], **call["kwargs"]) as stream:
        chunks = list(stream)
    assert chunks == result["chunks"]
    assert list(stream.ignored_parameters) == result["ignored_parameters"]
    check(replica, scenario, stream.text, chunks, stream.ignored_parameters)
