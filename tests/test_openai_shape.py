"""The OpenAI call shape (client.chat.completions.create) and token usage."""

import json
import logging

import pytest

from replicate_qwen_sdk import Client, GradioSpace, InvalidArgumentError, PredictionError, Qwen_Qwen_2_72B
from replicate_qwen_sdk.openai_shape import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionStream,
    Choice,
    ChunkChoice,
    Delta,
    Message,
    Usage,
    compact_json,
    public_model_name,
)
from replicate_qwen_sdk.stream import RunUsage, StreamSource, TextStream
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)

openai_types = pytest.importorskip("openai.types.chat", reason="the openai package checks the JSON shape")

TEXT = ["Line one,\n", "  indented «ünïcödé» ", "🚀\n", "", '{"json": true}', " end"]


@pytest.fixture
def qwen_app():
    with GradioEmulator() as app:
        yield app


@pytest.fixture
def client(emulator, qwen_app):
    emulator.add_model("acme/poet", Script(TEXT, delay=0.002))
    with Client(replicate_api_key=SECRET, replicate_base_url=emulator.base_url, qwen_url=qwen_app.url) as client:
        yield client


def user(text):
    return [{"role": "user", "content": text}]


# -- records --------------------------------------------------------------------------


def test_records_give_the_json_openai_parses():
    completion = ChatCompletion("chatcmpl-1", 1700000000, "m", [Choice(Message("hi\n"))], Usage(3, 2, 5))
    parsed = openai_types.ChatCompletion.model_validate(completion.to_dict())
    assert parsed.choices[0].message.content == "hi\n" and parsed.choices[0].finish_reason == "stop"
    assert parsed.usage.total_tokens == 5 and parsed.object == "chat.completion"
    assert completion.to_dict()["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert ChatCompletion("c", 1, "m", [Choice(Message(""))]).to_dict()["usage"] is None

    first = ChatCompletionChunk("c", 1, "m", [ChunkChoice(Delta("é", "assistant"))])
    assert first.to_dict()["choices"][0]["delta"] == {"role": "assistant", "content": "é"}
    assert "usage" not in first.to_dict()
    last = ChatCompletionChunk("c", 1, "m", [ChunkChoice(Delta(), "stop")], with_usage=True)
    assert last.to_dict()["choices"][0]["delta"] == {} and last.to_dict()["usage"] is None
    for chunk in (first, last, ChatCompletionChunk("c", 1, "m", [], Usage(1, 1, 2), with_usage=True)):
        parsed_chunk = openai_types.ChatCompletionChunk.model_validate(chunk.to_dict())
        assert parsed_chunk.object == "chat.completion.chunk"


def test_usage_is_built_only_from_both_reported_counts():
    assert Usage.from_run(RunUsage(7, 5, 0.3)) == Usage(7, 5, 12)
    assert Usage.from_run(RunUsage(None, 5, 0.3)) is None
    assert Usage.from_run(RunUsage(predict_time=0.3)) is None
    assert Usage.from_run(None) is None


# -- non-streamed and streamed calls ------------------------------------------------------


def test_a_whole_completion_from_replicate_has_exact_text_and_reported_usage(client, emulator):
    completion = client.chat.completions.create(model="acme/poet", messages=user("two words"), max_tokens=50)
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "".join(TEXT)
    assert completion.choices[0].message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    prediction = next(iter(emulator.predictions.values()))
    assert completion.id == f"chatcmpl-{prediction.id}" and completion.model == "acme/poet"
    # The emulator's metrics: the prompt's words, the script's tokens.
    assert completion.usage == Usage(2, len(TEXT), 2 + len(TEXT))
    assert openai_types.ChatCompletion.model_validate(completion.to_dict()).usage.prompt_tokens == 2


def test_a_stream_of_chunks_adds_up_to_the_text_and_ends_with_finish_reason(client):
    stream = client.chat.completions.create(
        model="acme/poet", messages=user("go"), stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, ChatCompletionStream)
    with stream:
        chunks = list(stream)
    texts = [chunk.choices[0].delta.content for chunk in chunks[:-2]]
    assert texts == [token for token in TEXT if token]  # an empty token is no chunk
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[1].choices[0].delta.role is None
    assert [chunk.choices[0].finish_reason for chunk in chunks[:-1]] == [None] * len(texts) + ["stop"]
    assert chunks[-2].choices[0].delta == Delta()
    assert chunks[-1].choices == [] and chunks[-1].usage == Usage(1, len(TEXT), 1 + len(TEXT))
    assert len({(chunk.id, chunk.created, chunk.model) for chunk in chunks}) == 1
    assert all("usage" in chunk.to_dict() for chunk in chunks)


def test_the_qwen_space_reports_no_usage_and_none_is_invented(client):
    completion = client.chat.completions.create(model="qwen-2-72b", messages=user("hi\nthere ü"))
    assert (
        completion.choices[0].message.content
        == "[system=You are a helpful assistant.] [turns=0: ] you said: hi\nthere ü"
    )
    assert completion.usage is None and completion.to_dict()["usage"] is None
    stream = client.chat.completions.create(
        model="qwen-2-72b", messages=user("hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is None
    assert chunks[-1].to_dict()["usage"] is None


def test_openai_messages_developer_role_text_parts_and_history(client, emulator):
    messages = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "first"}], "name": "ann"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "second"},
    ]
    client.chat.completions.create(model="llama-3-8b", messages=messages)
    sent = [r.body for r in emulator.requests if r.route == "create"][-1]["input"]
    assert sent["system_prompt"] == "Be terse."
    assert sent["prompt"] == "User: first\nAssistant: \nUser: second\nAssistant:"


def test_a_failure_mid_stream_is_raised_after_the_chunks_before_it(client, emulator):
    emulator.add_model("acme/broken", Script(["a", "b", "c"], error_after=2))
    stream = client.chat.completions.create(model="acme/broken", messages=user("x"), stream=True)
    received = []
    with pytest.raises(PredictionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["a", "b"]


# -- parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, argument",
    [
        ({"n": 2}, "n"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),  # without stream=True
        ({"stream": "yes"}, "stream"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens"),
    ],
)
def test_what_cannot_be_honoured_is_refused_before_any_request(client, emulator, params, argument):
    with pytest.raises(InvalidArgumentError) as caught:
        client.chat.completions.create(model="llama-3-8b", messages=user("x"), **params)
    assert caught.value.argument == argument
    assert emulator.count("create") == 0


def test_harmless_values_of_refused_parameters_pass(client):
    completion = client.chat.completions.create(
        model="llama-3-8b", messages=user("x"), n=1, tools=[], tool_choice="none", response_format={"type": "text"}
    )
    assert completion.choices[0].message.content == "You said: x"


def test_tool_turns_are_refused(client):
    for message in ({"role": "tool", "content": "42", "tool_call_id": "1"}, {"role": "assistant", "tool_calls": [{}]}):
        with pytest.raises(InvalidArgumentError, match="tool calling is not supported"):
            client.chat.completions.create(model="llama-3-8b", messages=[*user("x"), message])


def test_standard_parameters_without_equivalent_are_left_out_once_warned(client, emulator, caplog):
    caplog.set_level(logging.WARNING, logger="replicate_qwen_sdk")
    for _ in range(2):
        completion = client.chat.completions.create(
            model="llama-3-8b", messages=user("x"), seed=7, presence_penalty=0.5, logprobs=False, user=None
        )
        assert completion.ignored_parameters == ("presence_penalty", "seed")
    sent = [r.body for r in emulator.requests if r.route == "create"][-1]["input"]
    assert not {"seed", "presence_penalty", "logprobs", "user"} & set(sent)
    warnings = [r.getMessage() for r in caplog.records if "presence_penalty, seed" in r.getMessage()]
    assert len(warnings) == 1
    with pytest.raises(InvalidArgumentError, match="strict=True") as caught:
        client.chat.completions.create(model="llama-3-8b", messages=user("x"), seed=7, strict=True)
    assert caught.value.argument == "seed"


def test_parameters_go_to_the_model_and_gradio_hints_are_listed(client, emulator):
    client.chat.completions.create(
        model="llama-3-8b",
        messages=user("x"),
        max_completion_tokens=9,
        temperature=0.2,
        top_p=0.5,
        stop=["END"],
        top_k=4,
        extra_data={"min_tokens": 2},
    )
    sent = [r.body for r in emulator.requests if r.route == "create"][-1]["input"]
    assert {k: sent[k] for k in ("max_tokens", "temperature", "top_p", "stop_sequences", "top_k", "min_tokens")} == {
        "max_tokens": 9,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop_sequences": "END",
        "top_k": 4,
        "min_tokens": 2,
    }
    completion = client.chat.completions.create(model="qwen-2-72b", messages=user("x"), max_tokens=9, seed=1)
    assert completion.ignored_parameters == ("seed", "max_tokens")


def test_a_parameter_the_provider_does_not_take_is_named(client, emulator):
    with pytest.raises(InvalidArgumentError, match="frobnicate is not a parameter of Replicate") as caught:
        client.chat.completions.create(model="llama-3-8b", messages=user("x"), frobnicate=1)
    assert caught.value.argument == "frobnicate" and emulator.count("create") == 0


# -- usage on the stream -----------------------------------------------------------------


def test_usage_reads_the_finished_prediction_once_and_only_when_asked(provider, emulator):
    emulator.add_model("acme/poet", Script(["a", " b"], delay=0.001))
    with provider.stream("acme/poet", "one two three") as stream:
        assert stream.usage() is None  # not finished: nothing is asked
        assert stream.read() == "a b"
    gets = emulator.count("get")
    assert gets == 0  # streaming alone never polls
    usage = stream.usage()
    assert usage is not None and (usage.input_tokens, usage.output_tokens) == (3, 2)
    assert usage.predict_time is not None and usage.predict_time >= 0
    assert stream.usage() == usage
    assert emulator.count("get") == 1


def test_usage_costs_no_request_when_the_prediction_was_polled_to_its_end(provider, emulator):
    emulator.add_model("acme/poll", Script(["x", "y"], stream_unavailable=404))
    with provider.stream("acme/poll", "a") as stream:
        assert stream.read() == "xy"
    gets = emulator.count("get")
    assert stream.usage() == RunUsage(1, 2, stream.usage().predict_time)
    assert emulator.count("get") == gets


def test_finished_predictions_report_metrics_like_the_api(provider, emulator):
    with provider.stream("meta/meta-llama-3-8b-instruct", "count me", system_prompt="sys tem") as stream:
        stream.read()
    import requests

    answer = requests.get(
        f"{emulator.base_url}/predictions/{stream.id}", headers={"Authorization": f"Bearer {SECRET}"}, timeout=5
    ).json()
    assert set(answer["metrics"]) == {"predict_time", "total_time", "input_token_count", "output_token_count"}
    assert answer["metrics"]["input_token_count"] == 4
    assert answer["metrics"]["output_token_count"] == len(answer["output"])


# -- QWEN_SPACE_URL --------------------------------------------------------------------------


def test_qwen_space_url_points_the_preset_and_the_client_unless_a_url_is_given(monkeypatch, qwen_app):
    monkeypatch.setenv("QWEN_SPACE_URL", qwen_app.url + "/")
    assert Qwen_Qwen_2_72B().base_url == qwen_app.url
    assert Qwen_Qwen_2_72B(url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9"
    with Client(replicate_api_key=SECRET) as client:
        assert client.complete("qwen-2-72b", "hi").endswith("you said: hi")
    monkeypatch.setenv("QWEN_SPACE_URL", "  ")
    assert Qwen_Qwen_2_72B().base_url == Qwen_Qwen_2_72B.url


# -- the server's JSON --------------------------------------------------------------------


class _Texts(StreamSource):
    def __init__(self, texts):
        self.id = "run1"
        self._texts = texts

    def chunks(self, delivered):
        yield from self._texts

    def interrupt(self):
        pass

    def cancel(self):
        pass


@pytest.mark.parametrize("include_usage", [False, True])
def test_json_chunks_are_the_records_json_exactly(include_usage):
    texts = ['say "hi"', "back\\slash", "\n", "\x00\x1f\x7f", "é🚀", "\u2028\u2029", "", "</script>"]

    def stream():
        return ChatCompletionStream(
            TextStream(_Texts(texts)), id="c", created=1, model="m/é", include_usage=include_usage
        )

    expected = [compact_json(chunk.to_dict()) for chunk in stream()]
    assert list(stream().json_chunks()) == expected
    decoded = [json.loads(chunk) for chunk in expected]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in decoded if c["choices"]) == "".join(texts)


def test_a_model_named_by_a_url_is_shown_without_its_credentials(qwen_app):
    assert public_model_name("https://user:pw@host.hf.space/app?token=1#x") == "https://host.hf.space/app"
    assert public_model_name("meta/meta-llama-3-8b-instruct") == "meta/meta-llama-3-8b-instruct"
    secret_url = qwen_app.url.replace("http://", "http://someone:pw-secret@")
    with Client(providers=[GradioSpace(secret_url, api_name="/model_chat")]) as client:
        completion = client.chat.completions.create(model=None, messages=user("hi"))
    assert completion.model == qwen_app.url and "pw-secret" not in json.dumps(completion.to_dict())
