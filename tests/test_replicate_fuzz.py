"""Whatever Replicate's API answers, only an SDKError reaches the caller.

Hypothesis writes create answers, polled predictions and stream events of
any JSON shape (wrong types in every field, nested deep or not), and the SDK
must either answer or raise an SDKError, never a TypeError, AttributeError,
KeyError, IndexError or RecursionError.
"""

import json

import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_shapes import DEEP, JSON, ODD

from replicate_qwen_sdk import Replicate, SDKError, Timeout

BASE = "http://127.0.0.1:9/v1"
CREATE = f"{BASE}/models/owner/model/predictions"
GET = f"{BASE}/predictions/p1"
STREAM = "http://127.0.0.1:9/stream/p1"

_STATUS = st.one_of(st.sampled_from(["starting", "processing", "succeeded", "failed", "canceled", "aborted"]), ODD)


def _prediction(status, output, urls, extra):
    prediction = {"id": "p1", "status": status, "output": output, "urls": urls}
    prediction.update(extra)
    return prediction


_PREDICTIONS = st.builds(
    _prediction,
    _STATUS,
    st.one_of(JSON, st.lists(st.text(max_size=4), max_size=4)),
    st.one_of(ODD, st.fixed_dictionaries({"get": st.just(GET)}, optional={"stream": st.just(STREAM), "cancel": ODD})),
    st.dictionaries(st.sampled_from(["id", "error", "logs", "metrics", "created_at", "model"]), ODD, max_size=3),
)
_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["output", "done", "error", "logs", "other"]),
        st.one_of(st.text(max_size=6), JSON.map(json.dumps)),
    ),
    max_size=6,
)


def _event_stream(events):
    return "".join(f"event: {name}\nid: {index}\ndata: {data}\n\n" for index, (name, data) in enumerate(events))


def _run():
    # A prediction polled as still running gives up after 0.2 s without progress.
    provider = Replicate(api_key="r8_test", base_url=BASE, max_retries=0, timeout=Timeout(connect=1, read=0.2))
    provider._transport.sleep = lambda seconds: None
    try:
        provider.stream("owner/model", "hi").read()
    except SDKError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(JSON, _PREDICTIONS), st.booleans())
def test_a_create_answer_of_any_shape_is_an_answer_or_a_typed_error(created, deep):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        if deep:
            mock.post(CREATE, body=DEEP, content_type="application/json", status=201)
        else:
            mock.post(CREATE, json=created, status=201)
        mock.get(GET, json={"id": "p1", "status": "succeeded", "output": ["ok"]})
        mock.get(STREAM, body=_event_stream([("output", "ok"), ("done", "{}")]), content_type="text/event-stream")
        _run()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_PREDICTIONS, JSON), min_size=1, max_size=3), st.booleans())
def test_polled_predictions_of_any_shape_are_an_answer_or_a_typed_error(polls, deep):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(CREATE, json={"id": "p1", "status": "starting", "urls": {"get": GET}}, status=201)
        for poll in polls:
            mock.get(GET, json=poll)
        if deep:
            mock.get(GET, body=DEEP, content_type="application/json")
        mock.get(GET, json={"id": "p1", "status": "succeeded", "output": ["ok"]})
        _run()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_EVENTS, st.one_of(_PREDICTIONS, JSON))
def test_stream_events_of_any_shape_are_an_answer_or_a_typed_error(events, final):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(CREATE, json={"id": "p1", "status": "starting", "urls": {"get": GET, "stream": STREAM}}, status=201)
        mock.get(STREAM, body=_event_stream(events), content_type="text/event-stream")
        mock.get(GET, json=final)
        _run()


def test_a_create_answer_nested_too_deep_says_it_is_not_json():
    with responses.RequestsMock() as mock:
        mock.post(CREATE, body=DEEP, content_type="application/json", status=201)
        provider = Replicate(api_key="r8_test", base_url=BASE, max_retries=0)
        try:
            provider.complete("owner/model", "hi")
        except SDKError as error:
            assert "not JSON" in str(error)
        else:
            raise AssertionError("a create answer nested 100,000 deep was accepted")
