"""Bad arguments are refused before any request, naming the argument (and,
on the command line, the flag).

Every provider here points at 127.0.0.1:9, where nothing listens: an
argument that slipped through would surface as a connection error instead of
the :class:`InvalidArgumentError` the tests expect.
"""

import math

import pytest

from replicate_qwen_sdk import Client, Timeout
from replicate_qwen_sdk.cli import main
from replicate_qwen_sdk.errors import InvalidArgumentError
from replicate_qwen_sdk.providers.gradio import GradioSpace
from replicate_qwen_sdk.providers.replicate import Replicate
from replicate_qwen_sdk.timeouts import MAX_TIMEOUT

NOWHERE = "http://127.0.0.1:9"
INF, NAN = math.inf, math.nan


@pytest.fixture
def replicate():
    with Replicate(api_key="r8_test", base_url=f"{NOWHERE}/v1", max_retries=0) as provider:
        yield provider


@pytest.fixture
def space():
    with GradioSpace(NOWHERE, max_retries=0) as provider:
        yield provider


# -- model ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", [123, ["acme/model"], ("acme", "model"), b"acme/model"])
def test_a_model_that_is_not_a_string_is_refused(replicate, space, model):
    for call in (replicate.stream, space.stream, Client(replicate_api_key="r8_test").stream):
        with pytest.raises(InvalidArgumentError, match="model must be a model name or alias") as caught:
            call(model, "hi")
        assert caught.value.argument == "model"


def test_a_model_that_is_not_a_string_is_refused_by_the_class_level_lookup():
    with pytest.raises(InvalidArgumentError, match=r"model must be .* got list"):
        Replicate.get_model(["acme/model"])


# -- numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["temperature", "top_p"])
@pytest.mark.parametrize("value", [INF, -INF, NAN])
def test_infinite_or_nan_sampling_parameters_are_refused(replicate, name, value):
    with pytest.raises(InvalidArgumentError, match=f"^{name} must be a finite number") as caught:
        replicate.stream(None, "hi", **{name: value})
    assert caught.value.argument == name


@pytest.mark.parametrize("name", ["temperature", "top_p", "Seed"])
@pytest.mark.parametrize("value", [INF, NAN, [1.0, NAN], {1, 2}])
def test_gradio_parameters_json_cannot_carry_are_refused(space, name, value):
    with pytest.raises(InvalidArgumentError, match=f"^{name} cannot be sent as JSON") as caught:
        space.stream(None, "hi", **{name: value})
    assert caught.value.argument == name


# -- extra_data ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra_data, named",
    [
        ({"tags": {"a", "b"}}, "extra_data['tags']"),
        ({"weights": {("a", "b"): 1}}, "extra_data['weights']"),
        ({"seed": NAN}, "extra_data['seed']"),
        ({"scale": [1.0, INF]}, "extra_data['scale']"),
        ({"when": object()}, "extra_data['when']"),
    ],
)
def test_extra_data_json_cannot_carry_is_refused(replicate, extra_data, named):
    with pytest.raises(InvalidArgumentError, match="cannot be sent as JSON") as caught:
        replicate.stream(None, "hi", extra_data=extra_data)
    assert str(caught.value).startswith(named)
    assert caught.value.argument == "extra_data"


def test_extra_data_keys_must_be_input_names(replicate):
    with pytest.raises(
        InvalidArgumentError, match=r"extra_data keys must be input names \(strings\), got \('a', 'b'\)"
    ):
        replicate.stream(None, "hi", extra_data={("a", "b"): 1})


def test_a_cycle_in_extra_data_is_refused(replicate):
    looped: list = []
    looped.append(looped)
    with pytest.raises(InvalidArgumentError, match=r"extra_data\['loop'\] cannot be sent as JSON"):
        replicate.stream(None, "hi", extra_data={"loop": looped})


# -- timeouts ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [INF, 1e300, NAN, MAX_TIMEOUT * 2])
def test_a_timeout_too_long_or_not_a_number_is_refused(value):
    for make in (
        lambda: Replicate(api_key="r8_test", timeout=value),
        lambda: GradioSpace(NOWHERE, timeout=value),
        lambda: Client(timeout=value),  # at once, not at the first call
    ):
        with pytest.raises(InvalidArgumentError, match="^timeout must be a positive number of seconds up to") as caught:
            make()
        assert caught.value.argument == "timeout"


@pytest.mark.parametrize("field", ["connect", "read", "total"])
def test_a_timeout_field_too_long_or_infinite_is_refused(field):
    for value in (INF, 1e300):
        with pytest.raises(InvalidArgumentError, match=f"^Timeout.{field}.* up to"):
            Timeout(**{field: value})
    assert getattr(Timeout(**{field: MAX_TIMEOUT}), field) == MAX_TIMEOUT


# -- the command line names its flags ------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_test")
    monkeypatch.setenv("REPLICATE_BASE_URL", f"{NOWHERE}/v1")


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--timeout", "inf", "chat", "hi"], "--timeout"),
        (["--timeout", "1e300", "chat", "hi"], "--timeout"),
        (["--timeout", "0", "chat", "hi"], "--timeout"),
        (["--max-retries", "-1", "chat", "hi"], "--max-retries"),
        (["--replicate-base-url", "ftp://example.com", "chat", "hi"], "--replicate-base-url"),
        (["--replicate-base-url", f"{NOWHERE}/v1?x=1", "chat", "hi"], "--replicate-base-url"),
        (["--qwen-url", f"{NOWHERE}/#chat", "chat", "hi"], "--qwen-url"),
        (["chat", "--max-tokens", "0", "hi"], "--max-tokens"),
        (["chat", "--temperature", "inf", "hi"], "--temperature"),
        (["chat", "--top-p", "nan", "hi"], "--top-p"),
        (["chat", "-m", "qwen-2-72b", "--temperature", "inf", "hi"], "--temperature"),
    ],
)
def test_cli_errors_name_the_flag_not_the_parameter(cli_env, capsys, argv, flag):
    assert main(argv) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(f"error: {flag} ") and stderr.count("\n") == 1
    for internal in ("Timeout.", "max_tokens", "top_p", "max_retries", "base_url ", "src "):
        assert internal not in stderr


def test_cli_workers_error_names_the_flag(cli_env, capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        main(["batch", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--workers", "0"])
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "argument --workers: must be 1 or more" in stderr and "max_workers" not in stderr
