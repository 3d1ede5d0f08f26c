"""Whatever a Gradio server answers, only an SDKError reaches the caller.

Hypothesis mutates a real /config (a recording of Gradio 4.44.1's, see
tests/data/gradio4) field by field into the wrong types, and writes queue
messages of any JSON shape, nested deep or not, and the SDK must either
answer or raise an SDKError, never a TypeError, AttributeError, KeyError,
IndexError or RecursionError.
"""

import copy
import json
import pathlib

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_shapes import DEEP, JSON, ODD

from replicate_qwen_sdk import GradioSpace, SDKError
from replicate_qwen_sdk.providers.gradio.app import parse_config

URL = "http://127.0.0.1:9"
CONFIG = json.loads((pathlib.Path(__file__).parent / "data" / "gradio4" / "qwen_space.config.json").read_text())
EVENT = "e" * 32


def _paths(config):
    """Where a field can go wrong: top-level keys, and each component's and step's."""
    yield ("components",)
    yield ("api_prefix",)
    yield ("protocol",)
    yield ("version",)
    for index in range(len(config["components"])):
        yield ("components", index, "props")
        yield ("components", index, "id")
        yield ("components", index, "type")
    for index in range(len(config["dependencies"])):
        for key in ("inputs", "outputs", "targets", "api_name", "id", "trigger_after", "queue", "backend_fn"):
            yield ("dependencies", index, key)


PATHS = list(_paths(CONFIG))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), ODD), min_size=1, max_size=4))
def test_a_config_of_the_wrong_shape_is_a_typed_error(mutations):
    config = copy.deepcopy(CONFIG)
    for path, value in mutations:
        target = config
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this field's parent
    try:
        app = parse_config(config)
        steps = app.route(with_history=True)
        app.answer_location(steps[-1])
    except SDKError:
        pass


def _sse(*messages):
    return "".join(f"data: {json.dumps(m) if not isinstance(m, str) else m}\n\n" for m in messages)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"msg": st.sampled_from(["process_generating", "process_completed", "log", "estimation"])},
            optional={"output": st.one_of(JSON, st.fixed_dictionaries({"data": JSON})), "success": ODD},
        ).map(lambda m: {**m, "event_id": EVENT}),
        max_size=5,
    ),
    st.booleans(),
)
def test_queue_messages_of_any_shape_are_typed_errors(messages, deep):
    first = {"msg": "process_generating", "event_id": EVENT, "output": {"data": ["", [["q", "start"]], "s"]}}
    extra = [DEEP] if deep else []  # nested past the JSON reader's recursion limit
    with responses.RequestsMock() as mock:
        mock.get(f"{URL}/config", json=CONFIG)
        mock.post(f"{URL}/queue/join", json={"event_id": EVENT})
        mock.get(f"{URL}/queue/data", content_type="text/event-stream", body=_sse(first, *messages, *extra))
        try:
            GradioSpace(URL, max_retries=0).stream(None, "q").read()
        except SDKError:
            pass


def test_an_append_that_is_not_text_is_not_taken_for_text():
    body = _sse(
        {"msg": "process_generating", "event_id": EVENT, "output": {"data": ["", [["q", "start"]], "s"]}},
        {"msg": "process_generating", "event_id": EVENT, "output": {"data": [[], [["append", [0, 1], 5]], []]}},
        {
            "msg": "process_completed",
            "event_id": EVENT,
            "success": True,
            "output": {"data": ["", [["q", "start!"]], "s"]},
        },
    )
    with responses.RequestsMock() as mock:
        mock.get(f"{URL}/config", json=CONFIG)
        mock.post(f"{URL}/queue/join", json={"event_id": EVENT})
        mock.get(f"{URL}/queue/data", content_type="text/event-stream", body=body)
        assert GradioSpace(URL).complete(None, "q") == "start!"


@pytest.mark.parametrize(
    "field, value",
    [("components", None), ("api_prefix", 5), ("components", {"a": 1})],
)
def test_each_malformed_config_field_says_so(field, value):
    config = copy.deepcopy(CONFIG)
    config[field] = value
    with pytest.raises(SDKError) as caught:
        parse_config(config)
    assert "malformed" in str(caught.value) and field in str(caught.value)
