"""Custom request headers per provider (a gateway in front of Replicate or a
Space): sent with every request, never able to replace the Authorization the
SDK sets, copied when given, and masked like the token."""

import pickle

import pytest

from replicate_qwen_sdk import Client, GradioSpace, InvalidArgumentError, Qwen_Qwen_2_72B, Replicate
from replicate_qwen_sdk.errors import AuthenticationError
from replicate_qwen_sdk.providers.base import check_headers
from replicate_qwen_sdk.providers.gradio.websocket import _secrets_of
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)
GATEWAY_KEY = "gw_live_7f3a9c2e5b1d8046"


def gateway_provider(emulator, **headers):
    provider = Replicate(api_key=SECRET, base_url=emulator.base_url, headers={"X-Gateway-Key": GATEWAY_KEY, **headers})
    provider._transport.sleep = lambda seconds: None
    return provider


# -- Replicate -------------------------------------------------------------------------------


def test_every_replicate_request_carries_the_headers_and_the_sdks_authorization(emulator):
    emulator.add_model("acme/nostream", Script(["a", "b"], delay=0.01, stream_unavailable=404))
    emulator.add_model("acme/slow", Script([f"t{i} " for i in range(40)], delay=0.05))
    with gateway_provider(emulator) as provider:
        assert provider.complete("acme/nostream", "x") == "ab"  # create, stream (refused), polls
        emulator.inject_fault("create", status=504, after_create=True)
        assert provider.complete(None, "lost") == "You said: lost"  # create, lookup in the list, stream
        stream = provider.stream("deployments/acme/chat", "x")
        stream.cancel()  # a deployment's create, its stream and the cancel
        provider.list_models()
    routes = {request.route for request in emulator.requests}
    assert routes == {"create", "stream", "get", "list", "cancel", "collection"}
    for request in emulator.requests:
        assert request.headers["X-Gateway-Key"] == GATEWAY_KEY, request.route
        assert request.headers["Authorization"] == f"Bearer {SECRET}", request.route


def test_the_headers_are_copied_when_given(emulator):
    given = {"X-Gateway-Key": GATEWAY_KEY}
    provider = Replicate(api_key=SECRET, base_url=emulator.base_url, headers=given)
    given["X-Gateway-Key"] = "changed"
    given["X-Added"] = "later"
    plain = Replicate(api_key=SECRET, base_url=emulator.base_url)
    with provider, plain:
        provider.complete(None, "a")
        plain.complete(None, "b")
    first, second = [request.headers for request in emulator.requests if request.route == "create"]
    assert first["X-Gateway-Key"] == GATEWAY_KEY and "X-Added" not in first
    assert "X-Gateway-Key" not in second  # no header leaks from one instance into another


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION"])
def test_authorization_cannot_be_overridden(emulator, name):
    with pytest.raises(InvalidArgumentError) as caught:
        Replicate(api_key=SECRET, base_url=emulator.base_url, headers={name: "Bearer r8_someone_elses_token"})
    message = str(caught.value)
    assert "may not set Authorization" in message and "cf-aig-authorization" in message
    assert "r8_someone_elses_token" not in message and caught.value.argument == "headers"


@pytest.mark.parametrize(
    "headers, message",
    [
        ({"Accept": "text/plain"}, "may not set Accept"),
        ({"content-type": "text/plain"}, "may not set content-type"),
        ({"Last-Event-ID": "0"}, "may not set Last-Event-ID"),
        ({"Bad Name": "x"}, "not an HTTP header name"),
        ({"X-Key": 1234}, "must be a string"),
        ({"X-Key": "secret-value\r\nX-Injected: 1"}, "line break"),
        ({"X-Key": "snowman ☃ value"}, "cannot carry"),
        ({"X-Key": "one", "x-key": "two"}, "give it once"),
        (["X-Key", "value"], "must be a dict"),
    ],
    ids=["accept", "content-type", "last-event-id", "name", "not-a-string", "crlf", "non-latin-1", "twice", "list"],
)
def test_malformed_or_reserved_headers_are_refused_without_showing_values(headers, message):
    with pytest.raises(InvalidArgumentError) as caught:
        check_headers(headers)
    assert message in str(caught.value)
    assert "secret-value" not in str(caught.value) and "snowman" not in str(caught.value)


def test_header_values_are_masked_where_a_server_repeats_them_and_short_ones_are_not(emulator):
    body = {"detail": f"gateway rejected key {GATEWAY_KEY} (debug=1)", "status": 401}
    emulator.inject_fault("create", status=401, body=body)
    with gateway_provider(emulator, **{"X-Debug": "1"}) as provider:
        with pytest.raises(AuthenticationError) as caught:
            provider.stream(None, "x")
    message = str(caught.value)
    assert GATEWAY_KEY not in message and GATEWAY_KEY not in caught.value.detail
    assert "gateway rejected key *** (debug=1)" in message and "HTTP 401" in message


def test_header_values_are_never_logged_nor_shown_in_repr(emulator, sdk_log):
    emulator.add_model("acme/nostream", Script(["a"], stream_unavailable=404))
    with gateway_provider(emulator) as provider:
        provider.complete("acme/nostream", "x")
        shown = repr(provider)
    assert GATEWAY_KEY not in sdk_log.text and sdk_log.records  # debug logging was on
    assert "headers=<X-Gateway-Key>" in shown and GATEWAY_KEY not in shown


def test_a_pickled_provider_keeps_its_headers(emulator):
    with gateway_provider(emulator) as provider:
        copy = pickle.loads(pickle.dumps(provider))
    with copy:
        copy.complete(None, "x")
    [create] = [request for request in emulator.requests if request.route == "create"]
    assert create.headers["X-Gateway-Key"] == GATEWAY_KEY


# -- Gradio ----------------------------------------------------------------------------------------


def test_every_gradio_request_carries_the_headers_and_the_hf_token():
    with GradioEmulator() as app:
        space = GradioSpace(app.url, hf_token="hf_test_token_value", headers={"X-Gateway-Key": GATEWAY_KEY})
        with space:
            stream = space.stream(None, "hi")
            assert stream.read().endswith("you said: hi")
        preset = Qwen_Qwen_2_72B(url=app.url, headers={"X-Trace": "trace-0002"})
        with preset:
            preset.complete(None, "hi")
    routes = {request.route for request in app.requests}
    assert {"config", "join", "data"} <= routes
    first = [request for request in app.requests if "X-Trace" not in request.headers]
    second = [request for request in app.requests if "X-Trace" in request.headers]
    assert first and second
    for request in first:
        assert request.headers["X-Gateway-Key"] == GATEWAY_KEY, request.route
        assert request.headers["Authorization"] == "Bearer hf_test_token_value", request.route
    assert all("X-Gateway-Key" not in request.headers for request in second)
    assert "headers=<X-Gateway-Key>" in repr(space) and GATEWAY_KEY not in repr(space)


def test_a_gradio_space_refuses_an_authorization_header():
    with pytest.raises(InvalidArgumentError) as caught:
        GradioSpace("http://127.0.0.1:9", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert "hf_token" in str(caught.value) and "dXNlcjpwYXNz" not in str(caught.value)


def test_the_websocket_queue_masks_custom_header_values():
    secrets = _secrets_of({"Accept": "application/json", "X-Gateway-Key": GATEWAY_KEY, "X-Debug": "1"})
    assert GATEWAY_KEY in secrets and "1" not in secrets and "application/json" not in secrets


# -- Client ------------------------------------------------------------------------------------------


def test_the_client_gives_each_provider_its_own_headers(emulator):
    with GradioEmulator() as app:
        client = Client(
            replicate_api_key=SECRET,
            replicate_base_url=emulator.base_url,
            qwen_url=app.url,
            replicate_headers={"X-Gateway-Key": GATEWAY_KEY},
            qwen_headers={"X-Space-Route": "eu-west"},
        )
        with client:
            client.complete(None, "x", provider="replicate")
            client.complete("qwen-2-72b", "x")
    assert all(r.headers.get("X-Gateway-Key") == GATEWAY_KEY for r in emulator.requests)
    assert all("X-Space-Route" not in r.headers for r in emulator.requests)
    assert all(r.headers.get("X-Space-Route") == "eu-west" for r in app.requests)
    assert all("X-Gateway-Key" not in r.headers for r in app.requests)


def test_the_client_checks_headers_at_once():
    with pytest.raises(InvalidArgumentError):
        Client(replicate_headers={"authorization": "Bearer x"})
