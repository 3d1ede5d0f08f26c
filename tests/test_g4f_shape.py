"""The g4f call shape: ``create_completion`` takes g4f's usual extra keywords
the way g4f does (``extra_body`` merged into the model inputs, unknown flags
left out with a warning), where ``stream()`` stays strict."""

import json
import logging
import pathlib

import pytest
import responses
from responses.registries import OrderedRegistry

from replicate_qwen_sdk import InvalidArgumentError, Qwen_Qwen_2_72B, Replicate
from replicate_qwen_sdk.providers import base as base_module
from replicate_qwen_sdk.testing import GradioEmulator

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)
GRADIO_DATA = pathlib.Path(__file__).parent / "data" / "gradio4"
URL = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _warn_afresh(monkeypatch):
    """Each test sees the once-per-name warnings again."""
    monkeypatch.setattr(base_module, "_G4F_WARNED", set())


def create_inputs(emulator):
    return [request.body["input"] for request in emulator.requests if request.route == "create"]


# -- Replicate ----------------------------------------------------------------------------------


def test_extra_body_is_merged_into_the_model_inputs(provider, emulator):
    text = provider.create_completion(None, "hi", max_tokens=5, extra_body={"seed": 7, "min_tokens": 1})
    assert text == "You said: hi"
    assert create_inputs(emulator) == [{"prompt": "hi", "max_tokens": 5, "seed": 7, "min_tokens": 1}]


def test_extra_body_and_extra_data_combine_and_a_conflict_is_refused(provider, emulator):
    provider.create_completion(None, "hi", extra_data={"seed": 1, "top_a": 0}, extra_body={"seed": 1, "min_p": 0.1})
    assert create_inputs(emulator) == [{"prompt": "hi", "seed": 1, "top_a": 0, "min_p": 0.1}]
    with pytest.raises(InvalidArgumentError) as caught:
        provider.create_completion(None, "hi", extra_data={"seed": 1}, extra_body={"seed": 2})
    assert "'seed'" in str(caught.value) and caught.value.argument == "extra_body"
    assert emulator.count("create") == 1  # refused before any request


@pytest.mark.parametrize(
    "extra_body, message",
    [
        (["seed", 1], "must be a dict"),
        ({1: "x"}, "keys must be input names"),
        ({"seed": float("nan")}, "cannot be sent as JSON"),
    ],
    ids=["not-a-dict", "key-not-a-string", "not-json"],
)
def test_a_malformed_extra_body_is_refused_before_any_request(provider, emulator, extra_body, message):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.create_completion(None, "hi", extra_body=extra_body)
    assert message in str(caught.value) and caught.value.argument == "extra_body"
    assert emulator.requests == []


def test_unknown_g4f_flags_are_left_out_with_one_warning(provider, emulator, sdk_log):
    flags = {"web_search": True, "conversation": {"id": "c1"}, "media": None, "response_format": {"type": "text"}}
    for _ in range(2):
        chunks = provider.create_completion(None, "hi", stream=True, **flags)
        assert "".join(chunks) == "You said: hi"
    assert create_inputs(emulator) == [{"prompt": "hi"}] * 2  # none of them sent
    warnings = [r.getMessage() for r in sdk_log.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Replicate.create_completion left out conversation, media, response_format, web_search: "
        "Replicate has no such parameter; model inputs go in extra_body={...}"
    ]


def test_stream_itself_stays_strict(provider, emulator):
    with pytest.raises(TypeError):
        provider.stream(None, "hi", web_search=True)
    with pytest.raises(TypeError):
        provider.stream(None, "hi", extra_body={"seed": 1})
    assert emulator.requests == []


def test_on_the_class_constructor_keywords_build_the_provider_and_flags_are_dropped(emulator, sdk_log):
    text = Replicate.create_completion(
        None,
        [{"role": "user", "content": "hi"}],
        api_key=SECRET,
        base_url=emulator.base_url,
        timeout=30,
        proxy=None,
        headers={"X-Trace": "trace-0001"},
        web_search=False,
        extra_body={"seed": 3},
    )
    assert text == "You said: hi"
    [create] = [r for r in emulator.requests if r.route == "create"]
    assert create.body["input"] == {"prompt": "hi", "seed": 3} and create.headers["X-Trace"] == "trace-0001"
    assert "left out web_search" in sdk_log.text


def test_on_an_instance_constructor_keywords_are_named_in_the_warning_and_never_their_values(
    provider, emulator, sdk_log
):
    assert provider.create_completion(None, "hi", api_key="r8_other_secret_value", proxy="http://u:pw@proxy:1") == (
        "You said: hi"
    )
    assert "left out api_key, proxy" in sdk_log.text and "give them to its constructor" in sdk_log.text
    assert "r8_other_secret_value" not in sdk_log.text and "pw@" not in sdk_log.text
    [create] = [r for r in emulator.requests if r.route == "create"]
    assert create.headers["Authorization"] == f"Bearer {SECRET}"  # the instance's own key


# -- Gradio ------------------------------------------------------------------------------------------


def test_a_gradio_app_leaves_out_flags_it_has_no_input_for(sdk_log):
    with GradioEmulator() as app:
        qwen = Qwen_Qwen_2_72B(url=app.url)
        with qwen:
            stream = qwen.create_completion(None, "2+2?", stream=True, web_search=True, max_tokens=8)
            assert stream.read().endswith("you said: 2+2?")
            assert stream.ignored_parameters == ("max_tokens", "web_search")
            with pytest.raises(InvalidArgumentError):  # stream() itself: unknown app input
                qwen.stream(None, "2+2?", web_search=True)
            with pytest.raises(InvalidArgumentError) as caught:  # extra_body entries must be inputs
                qwen.create_completion(None, "2+2?", extra_body={"web_search": True})
            assert "web_search" in str(caught.value)
    assert "has no input for max_tokens, web_search" in sdk_log.text


def qwen_config_with_a_search_box():
    config = json.loads((GRADIO_DATA / "qwen_space.config.json").read_text())
    config["components"].append({"id": 97, "type": "checkbox", "props": {"label": "Web search", "value": False}})
    chat = next(d for d in config["dependencies"] if d.get("api_name") == "model_chat")
    chat["inputs"] = chat["inputs"] + [97]
    return config


def sse(*messages):
    return "".join(f"data: {json.dumps(message)}\n\n" for message in messages).encode()


@responses.activate(registry=OrderedRegistry)
def test_a_flag_the_app_has_an_input_for_goes_to_that_input():
    event = "e" * 32
    answer = ["", [["q", "4"]], "s"]
    responses.get(f"{URL}/config", json=qwen_config_with_a_search_box())
    responses.post(f"{URL}/queue/join", json={"event_id": event})
    responses.get(
        f"{URL}/queue/data",
        content_type="text/event-stream",
        body=sse({"msg": "process_completed", "event_id": event, "success": True, "output": {"data": answer}}),
    )
    text = Qwen_Qwen_2_72B.create_completion("qwen-2-72b", "q", url=URL, web_search=True, conversation={"id": 1})
    assert text == "4"
    join = json.loads(responses.calls[1].request.body)
    assert join["data"] == ["q", [], "You are a helpful assistant.", True]  # the checkbox, by its label
