"""The exception hierarchy and the status → exception factory."""

import pickle

import pytest

from replicate_qwen_sdk import errors
from replicate_qwen_sdk.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InvalidArgumentError,
    ModelNotFoundError,
    PredictionError,
    RateLimitError,
    ResponseError,
    SDKError,
    ServerError,
    detail_from_body,
    error_for_status,
    error_from_event_data,
)


@pytest.mark.parametrize(
    "status, cls",
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, ResponseError),
        (403, AuthenticationError),
        (404, ModelNotFoundError),
        (409, ResponseError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
    ],
)
def test_each_status_maps_to_its_class_with_status_and_detail(status, cls):
    error = error_for_status(status, "the server says why", action="doing a thing")
    assert type(error) is cls
    assert isinstance(error, ResponseError) and isinstance(error, SDKError)
    assert error.status_code == status
    assert error.detail == "the server says why"
    assert "the server says why" in str(error)
    assert "doing a thing" in str(error)


def test_not_found_message_says_model_not_found_and_names_it():
    error = error_for_status(404, "", action="creating a prediction", model="acme/nope")
    assert "Model not found" in str(error) and "acme/nope" in str(error)


def test_rate_limit_carries_retry_after():
    error = error_for_status(429, "slow down", action="x", retry_after=7.5)
    assert error.retry_after == 7.5 and "7.5" in str(error)
    assert error_for_status(429, "", action="x").retry_after is None


def test_error_event_becomes_prediction_error_without_status():
    error = error_from_event_data('{"detail": "CUDA out of memory"}', action="streaming", prediction_id="p1")
    assert type(error) is PredictionError
    assert error.status_code is None and error.prediction_id == "p1"
    assert "CUDA out of memory" in str(error)
    assert "plain text failure" in str(error_from_event_data("plain text failure", action="streaming"))


def test_builtin_bases_let_plain_except_clauses_work():
    assert isinstance(APITimeoutError("t"), TimeoutError)
    assert isinstance(APIConnectionError("c"), ConnectionError)
    assert isinstance(InvalidArgumentError("v"), ValueError)
    assert isinstance(BadRequestError("b"), ValueError)
    assert str(APIConnectionError("one message")) == "one message"


@pytest.mark.parametrize(
    "error",
    [
        APITimeoutError("timed out"),
        APIConnectionError("broken"),
        InvalidArgumentError("bad"),
        RateLimitError("slow", retry_after=3.0, status_code=429, detail="d"),
        PredictionError("failed", prediction_id="abc", detail="oom"),
        ModelNotFoundError("Model not found", status_code=404, detail="x"),
    ],
)
def test_errors_survive_pickling_for_thread_and_process_pools(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__


@pytest.mark.parametrize(
    "body, detail",
    [
        (
            b'{"title":"Unauthenticated","detail":"You did not pass a valid authentication token","status":401}',
            "You did not pass a valid authentication token",
        ),
        (b'{"error": "Queue is full"}', "Queue is full"),
        (
            b'{"detail": [{"msg": "field required"}, {"msg": "bad type"}]}',
            '[{"msg": "field required"}, {"msg": "bad type"}]',
        ),
        (b"<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        (b"", ""),
        (None, ""),
    ],
)
def test_detail_is_extracted_from_problem_json_or_text(body, detail):
    assert detail_from_body(body) == detail


def test_long_bodies_are_shortened():
    assert len(detail_from_body("x" * 10_000)) == 500


def test_module_docstring_draws_every_exception_class():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert name in errors.__doc__
