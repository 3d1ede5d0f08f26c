"""GradioSpace against real Gradio apps (tests/gradio_apps), served on 127.0.0.1 once per session."""

import socket
import time

import pytest

from replicate_qwen_sdk import (
    APIConnectionError,
    APITimeoutError,
    GradioSpace,
    InvalidArgumentError,
    ModelNotFoundError,
    PredictionError,
    QueueFullError,
    Qwen_Qwen_2_72B,
    Timeout,
)

TRICKY = ["\n", "[0, 1]", " ", '{"json": [1, 2]}', "  two spaces", "\n\n", "é ✓ 日本", " data: x", "\r\n", "end"]


@pytest.fixture
def qwen(gradio_apps):
    with Qwen_Qwen_2_72B(url=gradio_apps["qwen"], timeout=Timeout(connect=5, read=60)) as provider:
        yield provider


@pytest.fixture
def chat(gradio_apps):
    with GradioSpace(gradio_apps["chat"], timeout=Timeout(connect=5, read=60)) as provider:
        yield provider


def test_the_endpoint_is_found_by_name_not_by_a_fixed_fn_index(qwen):
    app = qwen.app()
    endpoint = app.endpoint(None, qwen.default_api_name)
    assert endpoint.api_name == "model_chat"
    assert endpoint.fn_index != 0  # other endpoints come first in this app
    assert app.api_prefix == "/gradio_api" and app.protocol == "sse_v3"


def test_exact_text_arrives_as_many_deltas(qwen):
    with qwen.stream(None, "TRICKY") as stream:
        chunks = list(stream)
    # Gradio's Chatbot runs inspect.cleandoc on each message at every update:
    # the leading newline never leaves the server, the first line streams
    # token by token, and the lines after it (which a later line could still
    # re-indent) come with the final value. The text is the app's own.
    assert stream.text == "".join(chunks) == "".join(TRICKY).strip()
    assert chunks[:3] == ["[0, 1]", ' {"json": [1, 2]}', "  two spaces"]
    assert not stream.rewritten
    assert isinstance(stream.id, str) and len(stream.id) == 32


def test_history_and_system_prompt_reach_the_app(qwen):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! [0, 1]"},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Fine."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    text = qwen.complete("qwen-2-72b", messages)
    assert text == "[system=Be brief.] [turns=2: Hi | How are you?] you said: What is 2+2?"
    assert qwen.complete(None, "Hi", system_prompt="Explicit.").startswith("[system=Explicit.] [turns=0: ]")


def test_a_long_answer_streams_in_many_deltas(qwen):
    with qwen.stream(None, "LONG 300") as stream:
        chunks = list(stream)
    assert "".join(chunks) == "".join(f"w{i} " for i in range(300))
    assert len(chunks) > 100


def test_the_first_chunk_arrives_before_the_app_finishes(qwen):
    started = time.monotonic()
    with qwen.stream(None, "SLOW") as stream:
        next(stream)
        first = time.monotonic() - started
        stream.read()
        total = time.monotonic() - started
    assert total - first > 1.0  # the rest took the app's pauses


def test_an_app_error_is_raised_with_its_message_after_the_chunks_before_it(qwen):
    stream = qwen.stream(None, "FAIL")
    received = []
    with pytest.raises(PredictionError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert "the model failed on purpose" in str(caught.value)
    assert "".join(received) == stream.text and len(received) == 2


def test_a_hidden_exception_says_how_to_see_it(qwen):
    with pytest.raises(PredictionError) as caught:
        qwen.complete(None, "CRASH")
    assert "show_error=True" in str(caught.value)
    assert "secret internal detail" not in str(caught.value)


def test_eight_threads_share_one_instance(qwen, run_in_threads):
    results, errors = run_in_threads(8, lambda i: qwen.complete(None, [{"role": "user", "content": f"question {i}"}]))
    assert errors == []
    assert results == {i: f"[system=You are a helpful assistant.] [turns=0: ] you said: question {i}" for i in range(8)}


def test_chat_interface_gets_history_system_message_and_parameters(chat):
    messages = [
        {"role": "system", "content": "Talk like a pirate."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "how are you"},
    ]
    with chat.stream(None, messages, max_tokens=64) as stream:
        chunks = list(stream)
    assert stream.text == "echo:how are you [system=Talk like a pirate.] [max=64] [turns=1: hi]"
    assert len(chunks) > 3


def test_chat_interface_defaults_apply_when_nothing_is_given(chat):
    assert chat.complete(None, "plain") == "echo:plain [system=You are a friendly Chatbot.] [max=512] [turns=0: ]"


def test_unknown_parameters_and_models_are_rejected(chat, qwen):
    with pytest.raises(InvalidArgumentError) as caught:
        chat.stream(None, "x", colour="blue")
    assert "colour" in str(caught.value) and "Max new tokens" in str(caught.value)
    with pytest.raises(ModelNotFoundError) as not_found:
        qwen.stream("gpt-4", "x")
    assert "Model not found" in str(not_found.value)


def test_unknown_api_name_lists_the_endpoints(gradio_apps):
    provider = GradioSpace(gradio_apps["qwen"], api_name="/nope")
    with pytest.raises(ModelNotFoundError) as caught:
        provider.stream(None, "x")
    message = str(caught.value)
    assert "/nope" in message and "/model_chat" in message and "/ping" in message


def test_silence_longer_than_the_idle_timeout_raises(gradio_apps):
    provider = Qwen_Qwen_2_72B(url=gradio_apps["qwen"], timeout=Timeout(connect=5, read=0.1))
    stream = provider.stream(None, "SLOW")
    with pytest.raises(APITimeoutError):
        stream.read()


def test_connection_refused_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = GradioSpace(f"http://127.0.0.1:{port}", max_retries=0)
    with pytest.raises(APIConnectionError):
        provider.stream(None, "x")


def test_cancel_frees_the_apps_slot(gradio_apps):
    provider = GradioSpace(gradio_apps["busy"], api_name="slow", timeout=Timeout(connect=5, read=60))
    first = provider.stream(None, "first")
    assert next(first).startswith("first")
    first.cancel()
    assert list(first) == []
    started = time.monotonic()
    second = provider.stream(None, "second")
    assert next(second) == "second 0"
    assert time.monotonic() - started < 3.0  # not queued behind the 4 s of the first
    second.cancel()


def test_a_full_queue_is_retried_then_reported(gradio_apps):
    provider = GradioSpace(gradio_apps["busy"], api_name="slow", max_retries=1, timeout=Timeout(connect=5, read=60))
    running = provider.stream(None, "running")
    next(running)
    waiting = provider.stream(None, "waiting")  # fills the one-slot queue
    try:
        with pytest.raises(QueueFullError) as caught:
            provider.stream(None, "rejected")
        assert caught.value.status_code == 503 and "queue is full" in str(caught.value).lower()
    finally:
        running.cancel()
        waiting.cancel()
