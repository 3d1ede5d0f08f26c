"""GradioSpace against replicas of real chat Spaces (tests/gradio_apps/spaces):
each Space's own app.py with its model replaced by a fake that echoes what it
received, served by a real Gradio server of the major the Space declares.

The installed Gradio's replicas always run; the other majors run where
tests/gradio_apps/matrix.py made their virtual environments (CI replays
recordings of them instead: tests/test_gradio_transcripts.py).
"""

import time

import pytest

from gradio_apps.scenarios import HISTORY, REPLICAS, calls, check, echoed
from replicate_qwen_sdk import AuthenticationError, GradioSpace, Qwen_Qwen_2_72B, Timeout

CASES = [(name, scenario) for name, replica in REPLICAS.items() for scenario in calls(replica)]
OPEN = [name for name, replica in REPLICAS.items() if not replica.needs_login]


@pytest.fixture
def space(space_replicas, request):
    replica = REPLICAS[request.param]
    url = space_replicas(replica.major)[replica.app]
    with GradioSpace(url, timeout=Timeout(connect=5, read=60)) as provider:
        yield replica, provider


@pytest.mark.parametrize("space, scenario", CASES, indirect=["space"], ids=[f"{n}-{s}" for n, s in CASES])
def test_each_replica_answers_each_scenario(space, scenario):
    replica, provider = space
    call = calls(replica)[scenario]
    if replica.needs_login:
        # The template's respond() takes a gr.OAuthToken: only a visitor
        # signed in with Hugging Face may call it, never an API client.
        with pytest.raises(AuthenticationError) as caught:
            provider.complete(None, call.messages, **call.kwargs)
        message = str(caught.value)
        assert "cannot sign in" in message and "hf_token does not replace" in message
        assert message.endswith(".") and ".." not in message
        return
    started = time.monotonic()
    with provider.stream(None, call.messages, **call.kwargs) as stream:
        chunks = list(stream)
    assert not stream.rewritten
    check(replica, scenario, stream.text, chunks, stream.ignored_parameters)
    assert stream.metrics.time_to_first_chunk is not None
    assert stream.metrics.time_to_first_chunk <= time.monotonic() - started


@pytest.mark.parametrize("space", OPEN, indirect=True)
def test_cancel_mid_stream_stops_the_answer(space):
    _, provider = space
    stream = provider.stream(None, "LONG 400")  # 400 words, 0.05 s apart: 20 s in all
    first = next(stream)
    assert first.startswith("w0")
    started = time.monotonic()
    stream.cancel()
    assert stream.finished and time.monotonic() - started < 5
    assert list(stream) == []
    assert not stream.text.endswith("w399")
    # The app is free for the next call at once.
    assert provider.complete(None, "SAY:next") == "next"


@pytest.mark.parametrize("space", OPEN, indirect=True)
def test_two_threads_at_once_get_their_own_answers(space, run_in_threads):
    _, provider = space

    def ask(index):
        return provider.complete(None, f"thread {index} asks")

    results, errors = run_in_threads(2, ask)
    assert errors == []
    for index in (0, 1):
        users = [m for m in echoed(results[index])["messages"] if m.get("role") == "user"]
        assert f"thread {index} asks" in str(users[-1]["content"])


def test_the_qwen_preset_on_its_own_space_takes_the_readme_call(space_replicas):
    """The README's call, max_tokens included, on the Qwen2-72B-Instruct
    Space's own app (Gradio 4.44): the app has no such input, so it is left
    out, said once, and listed on the stream."""
    url = space_replicas(4)["qwen2_72b_instruct"]
    with Qwen_Qwen_2_72B(url=url, timeout=Timeout(connect=5, read=60)) as qwen:
        with qwen.stream("qwen-2-72b", HISTORY, max_tokens=256) as stream:
            text = stream.read()
    assert stream.ignored_parameters == ("max_tokens",)
    received = echoed(text)["messages"]
    assert received[0] == {"role": "system", "content": "Be brief."}
    assert received[-1] == {"role": "user", "content": "What is 2+2?"}
