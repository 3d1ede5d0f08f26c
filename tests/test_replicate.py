"""The Replicate provider: request shapes (responses) and behaviour on a real socket (the emulator)."""

import json
import logging
import pickle
import time

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from replicate_qwen_sdk import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    RateLimitError,
    Replicate,
    ServerError,
    TextStream,
    Timeout,
)
from replicate_qwen_sdk.errors import PredictionMayExistError, ResponseError
from replicate_qwen_sdk.providers import replicate as replicate_module
from replicate_qwen_sdk.testing import Script
from replicate_qwen_sdk.testing.replicate import Prediction


SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)
BASE = "http://127.0.0.1:9/v1"
STREAM_URL = "http://127.0.0.2:9/v1/stream/p1"  # another host, as in production
CREATE_URL = f"{BASE}/models/meta/meta-llama-3-70b-instruct/predictions"


def created(**extra):
    prediction = {
        "id": "p1",
        "status": "starting",
        "output": None,
        "error": None,
        "urls": {"get": f"{BASE}/predictions/p1", "cancel": f"{BASE}/predictions/p1/cancel", "stream": STREAM_URL},
    }
    prediction.update(extra)
    return prediction


def sse(*events):
    return "".join(f"event: {name}\nid: {i}\ndata: {data}\n\n" for i, (name, data) in enumerate(events)).encode()


def sse_with_ids(*events):
    """Events given as ``(name, id, data)``; an empty id leaves the ``id:`` line out."""
    lines = [
        f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "") + f"data: {data}\n\n"
        for name, event_id, data in events
    ]
    return "".join(lines).encode()


def polled(output, status="succeeded", **extra):
    return {**created(status=status, output=output), **extra}


def mocked_provider(**kwargs):
    provider = Replicate(api_key=SECRET, base_url=BASE, **kwargs)
    provider._transport.sleep = lambda seconds: None
    return provider


def request_body(call):
    return json.loads(call.request.body)


# -- class attributes and models ---------------------------------------------------


def test_class_attributes_carry_over_from_the_seed():
    assert Replicate.url == "https://replicate.com"
    assert Replicate.login_url == "https://replicate.com/account/api-tokens"
    assert Replicate.working is True and Replicate.needs_auth is True
    assert Replicate.default_model == "meta/meta-llama-3-70b-instruct"
    assert Replicate.default_model in Replicate.models
    assert Replicate.supports_stream and Replicate.supports_system_message and Replicate.supports_message_history
    assert all(target in Replicate.models for target in Replicate.model_aliases.values())


@pytest.mark.parametrize(
    "name, resolved",
    [
        (None, "meta/meta-llama-3-70b-instruct"),
        ("", "meta/meta-llama-3-70b-instruct"),
        ("llama-3-8b", "meta/meta-llama-3-8b-instruct"),
        ("acme/any-model", "acme/any-model"),
        ("acme/m:" + "a" * 64, "acme/m:" + "a" * 64),
        ("b" * 64, "b" * 64),
    ],
)
def test_get_model_resolves_default_aliases_and_any_owner_name(name, resolved):
    assert Replicate.get_model(name) == resolved


@pytest.mark.parametrize("name", ["gpt-4", "../etc/passwd", "acme/", "a/b/c", "acme/m:shortversion"])
def test_get_model_rejects_names_replicate_cannot_have(name):
    with pytest.raises(ModelNotFoundError) as caught:
        Replicate.get_model(name)
    assert "Model not found" in str(caught.value)


# -- configuration and the key ---------------------------------------------------------


def test_key_and_base_url_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", SECRET)
    monkeypatch.setenv("REPLICATE_BASE_URL", "http://127.0.0.1:9/custom/")
    provider = Replicate()
    assert provider.base_url == "http://127.0.0.1:9/custom"
    assert provider._api_key == SECRET
    assert Replicate(api_key="r8_other", base_url=BASE).base_url == BASE


def test_a_bare_host_as_base_url_gets_the_api_version():
    # REPLICATE_BASE_URL as the official client spells it: no /v1.
    assert Replicate(api_key="x", base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9/v1"
    assert Replicate(api_key="x", base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9/v1"
    assert Replicate(api_key="x", base_url="http://127.0.0.1:9/proxy/replicate").base_url.endswith("/replicate")


def test_default_base_url_is_the_public_api():
    assert Replicate(api_key="x").base_url == replicate_module.DEFAULT_BASE_URL
    assert replicate_module.DEFAULT_BASE_URL.endswith("api.replicate.com/v1")


@responses.activate
def test_missing_key_raises_before_any_request():
    provider = Replicate(base_url=BASE)
    with pytest.raises(MissingAuthError) as caught:
        provider.stream(None, "hi")
    assert "REPLICATE_API_TOKEN" in str(caught.value)
    assert len(responses.calls) == 0


@pytest.mark.parametrize("bad", ["r8_abc\ndef", "r8_abc def", "r8_abc\x00", "r8_abc\u2019s"])
def test_a_key_no_header_can_carry_is_refused_without_being_shown(bad, monkeypatch):
    with pytest.raises(InvalidArgumentError) as caught:
        Replicate(api_key=bad, base_url=BASE)
    assert "r8_abc" not in str(caught.value) and "copy it again" in str(caught.value)
    if "\x00" in bad:
        return  # no environment variable can hold a NUL
    monkeypatch.setenv("REPLICATE_API_TOKEN", bad)
    with pytest.raises(InvalidArgumentError) as caught:
        Replicate(base_url=BASE)
    assert "REPLICATE_API_TOKEN" in str(caught.value) and "r8_abc" not in str(caught.value)


def test_surrounding_whitespace_of_a_key_is_dropped(monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", f"  {SECRET}\n")  # as read from a file
    assert Replicate(base_url=BASE)._api_key == SECRET


def test_repr_and_pickles_never_show_the_key():
    provider = Replicate(api_key=SECRET, base_url=BASE)
    assert SECRET not in repr(provider) and "api_key=<set>" in repr(provider)
    assert "api_key=<missing>" in repr(Replicate(base_url=BASE))
    copy = pickle.loads(pickle.dumps(provider))
    assert SECRET not in repr(copy) and copy._api_key == SECRET  # the worker needs it


@pytest.mark.parametrize("bad", ["ftp://x", "api.replicate.com", ""])
def test_bad_base_url_is_rejected(bad):
    with pytest.raises(InvalidArgumentError):
        Replicate(api_key="x", base_url=bad or " ")


# -- request shapes ----------------------------------------------------------------------


@responses.activate
def test_create_request_carries_inputs_as_the_api_expects():
    responses.post(CREATE_URL, status=201, json=created())
    responses.get(STREAM_URL, body=sse(("output", "ok"), ("done", "{}")), content_type="text/event-stream")
    provider = mocked_provider()
    text = provider.complete(
        None,
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "2+2?"},
        ],
        max_tokens=64,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=["</s>", "\n\nUser"],
        extra_data={"temperature": 0.7, "seed": 1},
    )
    assert text == "ok"
    create, stream = responses.calls
    body = request_body(create)
    assert body == {
        "input": {
            "prompt": "User: Hi\nAssistant: Hello\nUser: 2+2?\nAssistant:",
            "system_prompt": "Be brief.",
            "max_tokens": 64,
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 40,
            "stop_sequences": "</s>,\n\nUser",
            "seed": 1,
        }
    }
    assert create.request.headers["Authorization"] == f"Bearer {SECRET}"
    assert stream.request.headers["Accept"] == "text/event-stream"
    assert stream.request.headers["Authorization"] == f"Bearer {SECRET}"


@responses.activate
def test_unset_parameters_are_omitted_and_a_plain_prompt_is_sent_as_is():
    responses.post(CREATE_URL, status=201, json=created())
    responses.get(STREAM_URL, body=sse(("done", "{}")), content_type="text/event-stream")
    mocked_provider().complete(None, "  just this\n")
    assert request_body(responses.calls[0]) == {"input": {"prompt": "  just this\n"}}


@responses.activate
def test_explicit_system_prompt_wins_and_system_messages_stay_in_the_prompt():
    responses.post(CREATE_URL, status=201, json=created())
    responses.get(STREAM_URL, body=sse(("done", "{}")), content_type="text/event-stream")
    mocked_provider().complete(
        None, [{"role": "system", "content": "S1"}, {"role": "user", "content": "U"}], system_prompt="Explicit"
    )
    assert request_body(responses.calls[0])["input"] == {
        "prompt": "System: S1\nUser: U\nAssistant:",
        "system_prompt": "Explicit",
    }


@responses.activate
def test_a_pinned_version_uses_the_predictions_endpoint():
    version = "c" * 64
    responses.post(f"{BASE}/predictions", status=201, json=created())
    responses.get(STREAM_URL, body=sse(("done", "{}")), content_type="text/event-stream")
    mocked_provider().complete(f"acme/model:{version}", "x")
    assert request_body(responses.calls[0]) == {"version": version, "input": {"prompt": "x"}}


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -3}, "top_k"),
        ({"stop": ["a,b"]}, "comma"),
        ({"stop": [""]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"extra_data": ["x"]}, "extra_data"),
        ({"system_prompt": 3}, "system_prompt"),
    ],
)
@responses.activate
def test_bad_arguments_are_rejected_before_any_request(kwargs, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        mocked_provider().stream(None, "hi", **kwargs)
    assert fragment in str(caught.value)
    assert len(responses.calls) == 0


@responses.activate
def test_malformed_messages_are_rejected_before_any_request():
    with pytest.raises(InvalidArgumentError):
        mocked_provider().stream(None, [{"role": "user"}])
    with pytest.raises(InvalidArgumentError):
        mocked_provider().stream(None, [{"role": "system", "content": "only a system message"}])
    assert len(responses.calls) == 0


# -- failures at the call ----------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, cls, fragment",
    [
        (
            401,
            {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token"},
            AuthenticationError,
            "valid authentication token",
        ),
        (403, {"detail": "Forbidden"}, AuthenticationError, "Forbidden"),
        (404, {"detail": "The requested model does not exist"}, ModelNotFoundError, "Model not found"),
        (422, {"detail": "prompt is required"}, BadRequestError, "prompt is required"),
        (500, "Internal Server Error", ServerError, "Internal Server Error"),
    ],
)
@responses.activate(registry=OrderedRegistry)
def test_http_failures_raise_typed_errors_at_the_call(status, body, cls, fragment):
    if isinstance(body, dict):
        responses.post(CREATE_URL, status=status, json=body)
    else:
        responses.post(CREATE_URL, status=status, body=body)
    with pytest.raises(cls) as caught:
        mocked_provider().stream(None, "hi")
    assert caught.value.status_code == status
    assert fragment in str(caught.value)
    assert SECRET not in str(caught.value)
    assert len(responses.calls) == 1  # none of these is retried


@responses.activate(registry=OrderedRegistry)
def test_rate_limit_is_retried_after_the_servers_delay_then_raised_with_retry_after():
    for _ in range(3):
        responses.post(CREATE_URL, status=429, headers={"Retry-After": "2"}, json={"detail": "throttled"})
    provider = mocked_provider()
    slept = []
    provider._transport.sleep = slept.append
    with pytest.raises(RateLimitError) as caught:
        provider.stream(None, "hi")
    assert caught.value.retry_after == 2.0
    assert slept == [2.0, 2.0] and len(responses.calls) == 3


@responses.activate
def test_an_answer_without_a_prediction_id_is_a_clear_error():
    responses.post(CREATE_URL, status=201, json={"hello": "world"})
    with pytest.raises(Exception) as caught:
        mocked_provider().stream(None, "hi")
    assert "prediction id" in str(caught.value)


@responses.activate
def test_a_stream_url_that_answers_html_is_replaced_by_polling(sdk_log):
    responses.post(CREATE_URL, status=201, json=created())
    responses.get(STREAM_URL, body="<html>login</html>", content_type="text/html")
    responses.get(f"{BASE}/predictions/p1", json=polled(["o", "k"]))
    assert mocked_provider().complete(None, "hi") == "ok"
    assert "text/html" in sdk_log.text and "polling instead" in sdk_log.text


# -- streaming on a real socket ------------------------------------------------------------

TRICKY = [
    "\n",
    "Hello",
    " world",
    "\n\n",
    "line one\nline two",
    "  indented",
    "café ✓ 日本",
    "https://example.com/x?y=1",
    '{"json": [0, 1]}',
    "[0, 1]",
    "data: not a field",
    ": not a comment",
    " ",
]


@pytest.mark.parametrize("line_ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("keepalive", [False, True], ids=["plain", "keepalive"])
@pytest.mark.parametrize("batch_bytes", [1, 16384], ids=["event-per-chunk", "coalesced"])
def test_tricky_output_arrives_exactly(provider, emulator, line_ending, keepalive, batch_bytes):
    emulator.add_model(
        "acme/tricky", Script(TRICKY, line_ending=line_ending, keepalive=keepalive, batch_bytes=batch_bytes)
    )
    with provider.stream("acme/tricky", "go") as stream:
        chunks = list(stream)
    assert chunks == TRICKY
    assert stream.text == "".join(TRICKY)
    assert emulator.count("get") == 0  # all of it came from the stream


def test_first_chunk_arrives_before_the_model_finishes(provider, emulator):
    emulator.add_model("acme/slow", Script(["first", " second", " third", " fourth"], delay=0.5))
    with provider.stream("acme/slow", "go") as stream:
        first = next(stream)
        prediction = emulator.prediction(stream.id)
        assert first == "first"
        assert prediction.status(time.monotonic()) == "processing"
        assert stream.read() == "first second third fourth"


def test_prediction_is_created_before_stream_returns(provider, emulator):
    stream = provider.stream(None, "hello")
    assert stream.id in emulator.predictions
    assert emulator.count("create") == 1 and emulator.count("stream") == 1
    stream.close()


TOKENS = ["alpha", " beta", "\n", " gamma", " delta\n", "epsilon"]


@pytest.mark.parametrize("cut_mid_event", [False, True], ids=["between-events", "mid-event"])
@pytest.mark.parametrize("drop_at", range(len(TOKENS) + 1))
def test_a_stream_dropped_at_any_point_resumes_without_duplicates(provider, emulator, drop_at, cut_mid_event):
    emulator.add_model("acme/flaky", Script(TOKENS, drop_after=[drop_at], cut_mid_event=cut_mid_event))
    stream = provider.stream("acme/flaky", "go")
    assert list(stream) == TOKENS
    assert emulator.count("stream") == 2
    resumed = [r for r in emulator.requests if r.route == "stream"][1]
    assert resumed.headers.get("Last-Event-ID") is not None or drop_at == 0


def test_a_stream_that_keeps_dropping_falls_back_to_polling_for_the_exact_tail(provider, emulator):
    tokens = [f"t{i} " for i in range(12)]
    emulator.add_model("acme/flaky", Script(tokens, delay=0.01, drop_after=[2, 4, 6, 8, 10]))
    assert provider.complete("acme/flaky", "go") == "".join(tokens)
    assert emulator.count("stream") == 1 + replicate_module.MAX_STREAM_RESUMES
    assert emulator.count("get") >= 1


def test_a_stream_ending_cleanly_without_done_is_resumed(provider, emulator):
    emulator.add_model("acme/eof", Script(TOKENS, end_without_done=1))
    assert provider.complete("acme/eof", "go") == "".join(TOKENS)
    assert emulator.count("stream") == 2


def test_a_stream_that_cannot_be_resumed_is_completed_by_polling(provider, emulator):
    emulator.add_model("acme/once", Script(TOKENS, delay=0.01, drop_after=[3], resumable=False))
    assert provider.complete("acme/once", "go") == "".join(TOKENS)
    assert emulator.count("get") >= 1


def test_a_server_that_replays_from_the_start_yields_nothing_twice(provider, emulator):
    emulator.add_model("acme/replay", Script(TOKENS, drop_after=[4], replay_on_resume=True))
    assert list(provider.stream("acme/replay", "go")) == TOKENS
    assert emulator.count("stream") == 2 and emulator.count("get") == 0  # replayed events skipped by id


@pytest.mark.parametrize("rewind", [1, 3])
@pytest.mark.parametrize("drop_at", [3, 5])
def test_a_resume_that_replays_from_an_earlier_event_yields_nothing_twice(provider, emulator, drop_at, rewind):
    emulator.add_model("acme/rewind", Script(TOKENS, drop_after=[drop_at], rewind_on_resume=rewind))
    assert list(provider.stream("acme/rewind", "go")) == TOKENS
    assert emulator.count("stream") == 2 and emulator.count("get") == 0
    resumed = [r for r in emulator.requests if r.route == "stream"][1]
    assert resumed.headers.get("Last-Event-ID", "").endswith(f":{drop_at - 1}")


@pytest.mark.parametrize(
    "replay",
    [
        [("output", "1", " BETA"), ("output", "2", " gamma"), ("done", "3", "{}")],  # a known id, other data
        [("output", "", " beta"), ("output", "", " gamma"), ("done", "", "{}")],  # no ids at all
    ],
    ids=["same-id-other-data", "no-ids"],
)
@responses.activate(registry=OrderedRegistry)
def test_a_replay_that_ids_cannot_place_falls_back_to_polling(replay):
    responses.post(CREATE_URL, status=201, json=created())
    first = sse_with_ids(("output", "0", "alpha"), ("output", "1", " beta"))  # then the connection ends
    responses.get(STREAM_URL, body=first, content_type="text/event-stream")
    responses.get(STREAM_URL, body=sse_with_ids(*replay), content_type="text/event-stream")
    responses.get(f"{BASE}/predictions/p1", json=polled(["alpha", " beta", " gamma"]))
    assert list(mocked_provider().stream(None, "hi")) == ["alpha", " beta", " gamma"]
    assert responses.calls[2].request.headers["Last-Event-ID"] == "1"
    assert responses.calls[3].request.url == f"{BASE}/predictions/p1"


@responses.activate(registry=OrderedRegistry)
def test_output_without_ids_is_never_resumed_but_polled():
    responses.post(CREATE_URL, status=201, json=created())
    responses.get(STREAM_URL, body=sse_with_ids(("output", "", "alpha")), content_type="text/event-stream")
    responses.get(f"{BASE}/predictions/p1", json=polled(["alpha", " beta"]))
    assert list(mocked_provider().stream(None, "hi")) == ["alpha", " beta"]
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "GET"]
    assert responses.calls[2].request.url == f"{BASE}/predictions/p1"


# -- polling: an output that trails the stream ----------------------------------------------


@pytest.mark.parametrize("lag", [2, len(TOKENS)], ids=["trailing", "null"])
def test_polling_waits_for_an_output_that_trails_the_stream(provider, emulator, lag):
    emulator.add_model("acme/lag", Script(TOKENS, delay=0.1, drop_after=[4], resumable=False, output_lag=lag))
    stream = provider.stream("acme/lag", "go")
    chunks = list(stream)
    assert chunks[:4] == TOKENS[:4] and "".join(chunks) == "".join(TOKENS)  # the rest in polled pieces
    polls = emulator.prediction(stream.id).polls
    assert any(status != "succeeded" and shown < 4 for status, shown in polls)  # it did trail


def test_an_output_that_never_catches_up_is_bounded_by_the_idle_timeout(emulator):
    emulator.add_model(
        "acme/stuck",
        Script(TOKENS, delay=0.01, drop_after=[3], resumable=False, output_lag=2, silence_after=4, silence=5.0),
    )
    provider = Replicate(api_key=SECRET, base_url=emulator.base_url, timeout=Timeout(connect=2, read=0.5))
    stream = provider.stream("acme/stuck", "go")
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        stream.read()
    assert time.monotonic() - started < 3.0
    assert stream.text == "".join(TOKENS[:3])
    assert caught.value.prediction_id == stream.id and stream.id in str(caught.value)
    provider.close()


@pytest.mark.parametrize(
    "final, cls, fragment",
    [
        (polled(["alpha", " BETA"]), ResponseError, "does not match"),
        (polled(None), ResponseError, "does not match"),  # null, but not removed: a mismatch
        (polled(None, data_removed=True), PredictionError, "no longer available"),
    ],
    ids=["other-text", "null-output", "data-removed"],
)
@responses.activate(registry=OrderedRegistry)
def test_a_finished_output_is_judged_against_the_stream(final, cls, fragment):
    responses.post(CREATE_URL, status=201, json=created())
    first = sse_with_ids(("output", "0", "alpha"), ("output", "1", " beta"))
    responses.get(STREAM_URL, body=first, content_type="text/event-stream")
    responses.get(STREAM_URL, status=410, json={"detail": "gone"})  # the resume
    responses.get(f"{BASE}/predictions/p1", json=polled(["alpha"], status="processing"))  # trails: waited for
    responses.get(f"{BASE}/predictions/p1", json=final)
    stream = mocked_provider().stream(None, "hi")
    with pytest.raises(cls) as caught:
        stream.read()
    assert type(caught.value) is cls and fragment in str(caught.value)
    assert caught.value.prediction_id == "p1" and "p1" in str(caught.value)
    assert stream.text == "alpha beta"


def test_an_error_event_raises_after_the_chunks_before_it(provider, emulator):
    emulator.add_model("acme/broken", Script(TOKENS, error_after=3, error_detail="CUDA out of memory"))
    stream = provider.stream("acme/broken", "go")
    received = []
    with pytest.raises(PredictionError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received == TOKENS[:3] and stream.text == "".join(TOKENS[:3])
    assert "CUDA out of memory" in str(caught.value)
    assert caught.value.prediction_id == stream.id


def test_a_failed_prediction_found_by_polling_raises_its_error(provider, emulator):
    emulator.add_model(
        "acme/broken",
        Script(TOKENS, delay=0.01, error_after=4, drop_after=[2], resumable=False, error_detail="model crashed"),
    )
    stream = provider.stream("acme/broken", "go")
    with pytest.raises(PredictionError) as caught:
        stream.read()
    assert "model crashed" in str(caught.value)
    assert stream.text == "".join(TOKENS[:4])


def test_silence_longer_than_the_idle_timeout_raises_a_timeout(emulator):
    emulator.add_model("acme/stall", Script(TOKENS, silence_after=2, silence=3.0))
    provider = Replicate(api_key=SECRET, base_url=emulator.base_url, timeout=Timeout(connect=2, read=0.4))
    stream = provider.stream("acme/stall", "go")
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        stream.read()
    assert time.monotonic() - started < 2.0
    assert stream.text == "".join(TOKENS[:2])
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.prediction_id == stream.id and stream.id in str(caught.value)
    provider.close()


def test_the_overall_deadline_ends_a_slow_stream(emulator):
    emulator.add_model("acme/slow", Script([f"{i} " for i in range(50)], delay=0.1))
    provider = Replicate(api_key=SECRET, base_url=emulator.base_url, timeout=Timeout(connect=2, read=5, total=0.6))
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        provider.complete("acme/slow", "go")
    assert time.monotonic() - started < 2.0
    assert "deadline" in str(caught.value)


def test_cancel_stops_the_prediction_on_the_server_and_ends_iteration(provider, emulator):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(100)], delay=0.05))
    stream = provider.stream("acme/long", "go")
    received = [next(stream), next(stream)]
    stream.cancel()
    assert list(stream) == []
    assert stream.text == "".join(received)
    assert emulator.count("cancel") == 1
    assert emulator.prediction(stream.id).status(time.monotonic()) == "canceled"
    stream.cancel()  # a second cancel is a no-op
    assert emulator.count("cancel") == 1


def test_cancel_from_another_thread_unblocks_the_reader(provider, emulator, consume):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(100)], delay=0.3))
    stream = provider.stream("acme/long", "go")
    reader = consume(stream)
    assert reader.first.wait(5)
    started = time.monotonic()
    stream.cancel()
    reader.thread.join(5)
    assert not reader.thread.is_alive()
    assert reader.outcome == {"ended": True}
    assert time.monotonic() - started < 2.0
    assert emulator.count("cancel") == 1


def test_close_releases_the_connection_without_canceling(provider, emulator):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(20)], delay=0.05))
    stream = provider.stream("acme/long", "go")
    next(stream)
    stream.close()
    assert stream.finished
    assert emulator.count("cancel") == 0


def test_a_prediction_canceled_by_someone_else_is_not_a_silent_truncation(provider, emulator):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(40)], delay=0.05))
    stream = provider.stream("acme/long", "go")
    next(stream)
    requests.post(f"{emulator.base_url}/predictions/{stream.id}/cancel", headers={"Authorization": f"Bearer {SECRET}"})
    with pytest.raises(PredictionError) as caught:
        stream.read()
    assert "canceled" in str(caught.value)


# -- faults on a real socket ---------------------------------------------------------------


def test_create_is_retried_on_503_and_succeeds(provider, emulator):
    emulator.inject_fault("create", status=503, headers={"Retry-After": "0"})
    assert provider.complete(None, "hello") == "You said: hello"
    assert emulator.count("create") == 2


def test_create_is_not_retried_on_500(provider, emulator):
    emulator.inject_fault("create", status=500, body=b"Internal Server Error")
    with pytest.raises(ServerError):
        provider.stream(None, "hello")
    assert emulator.count("create") == 1


@pytest.mark.parametrize(
    "fault",
    [{"status": 504}, {"status": 502}, {"reset": True}],
    ids=["504", "502", "reset-after-sending"],
)
def test_a_create_whose_answer_is_lost_after_creating_continues_with_that_prediction(
    provider, emulator, fault, sdk_log
):
    emulator.add_model("acme/poet", Script(["Roses", " are", " red"], delay=0.2))
    emulator.inject_fault("create", after_create=True, **fault)
    stream = provider.stream("acme/poet", "A poem")
    assert stream.read() == "Roses are red"
    assert list(emulator.predictions) == [stream.id]  # exactly one prediction: nothing runs twice
    assert emulator.count("create") == 1 and emulator.count("list") == 1
    assert emulator.count("stream") == 1  # the prediction found, still running, was streamed
    assert "continuing with prediction" in sdk_log.text and SECRET not in sdk_log.text


def test_a_lost_create_of_a_pinned_version_is_found_by_version(provider, emulator):
    version = "c" * 64
    emulator.add_model(version, Script(["pinned"]))
    emulator.add_model("d" * 64, Script(["other"]))
    provider.complete("d" * 64, "hello")  # same input, another version: not a match
    emulator.inject_fault("create", status=504, after_create=True)
    stream = provider.stream(f"acme/model:{version}", "hello")
    assert stream.read() == "pinned"
    assert emulator.prediction(stream.id).version == version and len(emulator.predictions) == 2


def test_the_lookup_reads_further_pages_of_the_list(provider, emulator):
    emulator.LIST_PAGE_SIZE = 2
    for index in range(3):  # newer than anything the call will make, other input
        model = "meta/meta-llama-3-70b-instruct"
        emulator.predictions[f"newer{index}"] = Prediction(
            f"newer{index}", model, "hidden", {"prompt": f"other {index}"}, Script(["x"]), created_at=time.time() + 5
        )
    emulator.inject_fault("create", status=504, after_create=True)
    assert provider.complete(None, "hello") == "You said: hello"
    assert emulator.count("list") == 2 and len(emulator.predictions) == 4


@pytest.mark.parametrize("fault", [{"status": 504}, {"reset": True}], ids=["504", "reset-after-sending"])
def test_a_lost_create_with_no_prediction_to_find_raises_prediction_may_exist(provider, emulator, fault):
    emulator.inject_fault("create", **fault)  # the request never reached the model
    with pytest.raises(PredictionMayExistError) as caught:
        provider.stream(None, "hello")
    error = caught.value
    assert "may have been created" in str(error) and "not sent again" in str(error)
    assert isinstance(error, APIConnectionError) and isinstance(error, ConnectionError)
    assert error.status_code == fault.get("status") and error.created_after.endswith("Z")
    assert SECRET not in str(error)
    assert emulator.count("create") == 1 and emulator.predictions == {}
    assert emulator.count("list") == replicate_module.LOOKUP_ATTEMPTS  # looked again before giving up


def test_the_lookup_never_takes_a_prediction_of_another_call_model_or_input(provider, emulator):
    provider.complete(None, "hello")  # same model and input, but this process's own: claimed
    headers = {"Authorization": f"Bearer {SECRET}"}
    requests.post(
        f"{emulator.base_url}/models/meta/meta-llama-3-70b-instruct/predictions",
        json={"input": {"prompt": "hello", "seed": 1}},
        headers=headers,
    )
    requests.post(
        f"{emulator.base_url}/models/meta/meta-llama-3-8b-instruct/predictions",
        json={"input": {"prompt": "hello"}},
        headers=headers,
    )
    emulator.inject_fault("create", status=504)
    with pytest.raises(PredictionMayExistError):
        provider.stream(None, "hello")
    assert len(emulator.predictions) == 3


@responses.activate(registry=OrderedRegistry)
def test_a_create_that_could_not_connect_is_not_looked_for():
    refused = requests.exceptions.ConnectionError(
        "HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded (Caused by NewConnectionError("
        "'<urllib3.connection.HTTPConnection object>: Failed to establish a new connection: [Errno 111] "
        "Connection refused'))"
    )
    responses.post(CREATE_URL, body=refused)
    with pytest.raises(APIConnectionError) as caught:
        mocked_provider(max_retries=0).stream(None, "hi")
    assert not isinstance(caught.value, PredictionMayExistError)
    assert len(responses.calls) == 1  # no lookup: nothing can have been created


@responses.activate(registry=OrderedRegistry)
def test_a_lookup_that_fails_still_raises_prediction_may_exist():
    responses.post(CREATE_URL, status=504, body="<html>504 Gateway Time-out</html>")
    responses.get(f"{BASE}/predictions", status=403, json={"detail": "token cannot list predictions"})
    with pytest.raises(PredictionMayExistError) as caught:
        mocked_provider(max_retries=0).stream(None, "hi")
    assert "looking for it failed too" in str(caught.value) and "cannot list" in str(caught.value)
    assert len(responses.calls) == 2 and "created_after=" in responses.calls[1].request.url


# -- a stream that will not open, and errors once the prediction exists ----------------------------


@pytest.mark.parametrize("status", [200, 404, 410], ids=["html-page", "404", "410"])
def test_a_stream_url_that_will_not_serve_events_is_replaced_by_polling(provider, emulator, status, sdk_log):
    emulator.add_model("acme/nostream", Script(TOKENS, delay=0.01, stream_unavailable=status))
    assert provider.complete("acme/nostream", "go") == "".join(TOKENS)
    assert emulator.count("stream") == 1 and emulator.count("get") >= 1
    assert "polling instead" in sdk_log.text


@pytest.mark.parametrize(
    "fault, cls",
    [
        ({"status": 500}, ServerError),
        ({"status": 403}, AuthenticationError),
        ({"status": 200, "body": b"<html>maintenance</html>"}, ResponseError),
    ],
    ids=["500", "403", "not-json"],
)
def test_errors_while_polling_carry_the_prediction_id(provider, emulator, fault, cls):
    emulator.add_model("acme/nostream", Script(TOKENS, stream_unavailable=410))
    stream = provider.stream("acme/nostream", "go")
    emulator.inject_fault("get", **fault)
    with pytest.raises(cls) as caught:
        stream.read()
    assert caught.value.prediction_id == stream.id and stream.id in str(caught.value)


def test_a_failed_cancel_carries_the_prediction_id(provider, emulator):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(100)], delay=0.05))
    stream = provider.stream("acme/long", "go")
    next(stream)
    emulator.inject_fault("cancel", status=500, times=3)
    with pytest.raises(ServerError) as caught:
        stream.cancel()
    assert caught.value.prediction_id == stream.id and stream.id in str(caught.value)


def test_stream_open_is_retried_on_502(provider, emulator):
    emulator.inject_fault("stream", status=502, times=2)
    assert provider.complete(None, "hello") == "You said: hello"
    assert emulator.count("stream") == 3


def test_a_stream_that_will_not_open_is_replaced_by_polling(provider, emulator):
    emulator.inject_fault("stream", status=500)
    assert provider.complete(None, "hello there") == "You said: hello there"
    assert emulator.count("get") >= 1


def test_unknown_model_and_wrong_key_on_the_emulator(provider, emulator, sdk_log):
    with pytest.raises(ModelNotFoundError) as not_found:
        provider.stream("acme/nothing-here", "hi")
    assert "Model not found" in str(not_found.value) and "acme/nothing-here" in str(not_found.value)
    wrong = Replicate(api_key="r8_wrong_key", base_url=emulator.base_url)
    with pytest.raises(AuthenticationError) as refused:
        wrong.stream(None, "hi")
    assert refused.value.status_code == 401
    assert "r8_wrong_key" not in str(refused.value)
    assert SECRET not in sdk_log.text and "r8_wrong_key" not in sdk_log.text


def test_keys_never_cross_instances_or_calls(emulator):
    first = Replicate(api_key=SECRET, base_url=emulator.base_url)
    other_key = "r8_other_key"
    emulator.api_token = None  # accept any key, to see which one arrives
    second = Replicate(api_key=other_key, base_url=emulator.base_url)
    first.complete(None, "a")
    second.complete(None, "b")
    creates = [r for r in emulator.requests if r.route == "create"]
    assert [r.headers["Authorization"] for r in creates] == [f"Bearer {SECRET}", f"Bearer {other_key}"]
    with pytest.raises(MissingAuthError):
        Replicate(base_url=emulator.base_url).stream(None, "c")
    assert len([r for r in emulator.requests if r.route == "create"]) == 2


def test_forty_threads_share_one_provider_and_each_gets_its_own_text(provider, run_in_threads):
    results, errors = run_in_threads(40, lambda i: provider.complete(None, f"prompt number {i} with some words"))
    assert errors == []
    assert results == {index: f"You said: prompt number {index} with some words" for index in range(40)}


def test_no_secret_in_logs_at_debug_level(provider, emulator, sdk_log):
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    emulator.add_model("acme/flaky", Script(TOKENS, drop_after=[2]))
    provider.complete("acme/flaky", "go")
    assert sdk_log.records and SECRET not in sdk_log.text


# -- the stream object and the g4f entry point ----------------------------------------------


def test_metrics_describe_the_stream(provider, emulator):
    emulator.add_model("acme/m", Script(["a", "bc", "def"], delay=0.02))
    stream = provider.stream("acme/m", "go")
    assert stream.metrics.time_to_first_chunk is None
    stream.read()
    metrics = stream.metrics
    assert metrics.chunks == 3 and metrics.characters == 6
    assert 0 < metrics.time_to_first_chunk <= metrics.duration


def test_create_completion_on_the_class_builds_and_closes_a_provider(emulator):
    text = Replicate.create_completion(None, "hi", api_key=SECRET, base_url=emulator.base_url)
    assert text == "You said: hi"
    chunks = Replicate.create_completion(None, "hi there", stream=True, api_key=SECRET, base_url=emulator.base_url)
    assert isinstance(chunks, TextStream)
    assert "".join(chunks) == "You said: hi there"


def test_create_completion_on_an_instance_uses_it(provider):
    assert provider.create_completion(None, "x y", max_tokens=5) == "You said: x y"
    assert "".join(provider.create_completion(None, "x y", stream=True)) == "You said: x y"
