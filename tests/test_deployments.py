"""Replicate deployments: created through POST /deployments/{owner}/{name}/predictions,
streamed, resumed, canceled and retried exactly as a model's predictions are."""

import io
import json

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from replicate_qwen_sdk import Client, InvalidArgumentError, ModelNotFoundError, Replicate
from replicate_qwen_sdk.cli import main
from replicate_qwen_sdk.errors import PredictionMayExistError, ServerError
from replicate_qwen_sdk.testing import GradioEmulator, ReplicateEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)
TOKENS = ["Deployed", " and", " streaming", " fine", "."]


@pytest.fixture
def deployed(emulator):
    """The emulator with ``acme/poet-prod`` running ``acme/poet``."""
    emulator.add_model("acme/poet", Script(TOKENS, delay=0.01))
    emulator.add_deployment("acme/poet-prod", "acme/poet")
    return emulator


def creates(emulator):
    return [request for request in emulator.requests if request.route == "create"]


# -- the create request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model, params",
    [("deployments/acme/poet-prod", {}), (None, {"deployment": "acme/poet-prod"})],
    ids=["model-string", "deployment-keyword"],
)
def test_a_deployment_is_created_through_its_own_route_and_streams(provider, deployed, model, params):
    stream = provider.stream(model, "A poem", max_tokens=20, **params)
    assert list(stream) == TOKENS
    [create] = creates(deployed)
    assert create.method == "POST" and create.path == "/v1/deployments/acme/poet-prod/predictions"
    # No version (the deployment's release picks it) and no deprecated "stream" flag.
    assert create.body == {"input": {"prompt": "A poem", "max_tokens": 20}}
    prediction = deployed.prediction(stream.id)
    assert prediction.deployment == "acme/poet-prod" and prediction.model == "acme/poet"
    assert deployed.count("stream") == 1


def test_the_deployment_keyword_takes_a_model_string_too(provider, deployed):
    assert provider.complete(None, "x", deployment="deployments/acme/poet-prod") == "".join(TOKENS)
    assert creates(deployed)[0].path == "/v1/deployments/acme/poet-prod/predictions"


@pytest.mark.parametrize(
    "model, deployment, message",
    [
        ("acme/poet", "acme/poet-prod", "not both"),
        (None, "acme", "owner/name"),
        (None, "acme/poet/prod", "owner/name"),
        (None, 42, "owner/name"),
    ],
    ids=["model-and-deployment", "no-owner", "three-parts", "not-a-string"],
)
def test_a_bad_deployment_argument_is_refused_before_any_request(provider, deployed, model, deployment, message):
    with pytest.raises(InvalidArgumentError) as caught:
        provider.stream(model, "x", deployment=deployment)
    assert message in str(caught.value) and caught.value.argument == "deployment"
    assert deployed.requests == []


def test_deployment_model_strings_resolve_and_malformed_ones_do_not():
    assert Replicate.get_model("deployments/acme/poet-prod") == "deployments/acme/poet-prod"
    with pytest.raises(ModelNotFoundError) as caught:
        Replicate.get_model("deployments/acme/poet/prod")
    assert "deployments/owner/name" in str(caught.value)


def test_an_unknown_deployment_says_so(provider, emulator):
    with pytest.raises(ModelNotFoundError) as caught:
        provider.stream("deployments/acme/missing", "x")
    message = str(caught.value)
    assert message.startswith("Deployment not found: 'acme/missing' (HTTP 404")
    assert caught.value.status_code == 404 and SECRET not in message


# -- streaming, resume, cancel, retries: as for models -----------------------------------------


def test_a_dropped_deployment_stream_resumes_without_duplicates(provider, emulator):
    emulator.add_model("acme/poet", Script(TOKENS, delay=0.01, drop_after=[2]))
    emulator.add_deployment("acme/poet-prod", "acme/poet")
    stream = provider.stream("deployments/acme/poet-prod", "x")
    assert list(stream) == TOKENS
    assert emulator.count("stream") == 2 and emulator.count("create") == 1
    resumed = [r for r in emulator.requests if r.route == "stream"][1]
    assert resumed.headers.get("Last-Event-ID", "").endswith(":1")


def test_canceling_a_deployment_prediction_stops_it_on_the_server(provider, emulator):
    emulator.add_model("acme/slow", Script([f"t{i} " for i in range(50)], delay=0.05))
    emulator.add_deployment("acme/slow-prod", "acme/slow")
    stream = provider.stream("deployments/acme/slow-prod", "x")
    next(iter(stream))
    stream.cancel()
    assert emulator.count("cancel") == 1
    assert emulator.prediction_json(emulator.prediction(stream.id))["status"] == "canceled"


def test_a_refused_deployment_create_is_retried_where_nothing_ran(provider, deployed):
    deployed.inject_fault("create", status=503, headers={"Retry-After": "0"})
    assert provider.complete("deployments/acme/poet-prod", "x") == "".join(TOKENS)
    assert deployed.count("create") == 2 and len(deployed.predictions) == 1


def test_a_deployment_create_that_failed_with_500_is_not_sent_again(provider, deployed):
    deployed.inject_fault("create", status=500)
    with pytest.raises(ServerError):
        provider.stream("deployments/acme/poet-prod", "x")
    assert deployed.count("create") == 1 and deployed.count("list") == 0


# -- a create whose answer was lost -------------------------------------------------------------


@pytest.mark.parametrize("fault", [{"status": 504}, {"reset": True}], ids=["504", "reset-after-sending"])
def test_a_lost_deployment_create_continues_with_the_prediction_it_made(provider, deployed, fault, sdk_log):
    deployed.inject_fault("create", after_create=True, **fault)
    stream = provider.stream("deployments/acme/poet-prod", "A poem")
    assert stream.read() == "".join(TOKENS)
    assert list(deployed.predictions) == [stream.id]  # found, not created twice
    assert deployed.count("create") == 1 and deployed.count("list") == 1
    assert "continuing with prediction" in sdk_log.text


def test_the_lookup_of_a_deployment_takes_no_prediction_of_its_model_or_of_another_deployment(provider, deployed):
    deployed.add_deployment("acme/poet-staging", "acme/poet")
    headers = {"Authorization": f"Bearer {SECRET}"}
    body = {"input": {"prompt": "A poem"}}
    # Same model, same input, but not made by this deployment: never a match.
    requests.post(f"{deployed.base_url}/models/acme/poet/predictions", json=body, headers=headers)
    requests.post(f"{deployed.base_url}/deployments/acme/poet-staging/predictions", json=body, headers=headers)
    deployed.inject_fault("create", status=504)  # the request never reached the deployment
    with pytest.raises(PredictionMayExistError) as caught:
        provider.stream("deployments/acme/poet-prod", "A poem")
    assert "same deployment and input" in str(caught.value)
    assert len(deployed.predictions) == 2


BASE = "http://127.0.0.1:9/v1"
CREATE_URL = f"{BASE}/deployments/acme/poet-prod/predictions"


def listed(**extra):
    entry = {
        "id": "p1",
        "model": "acme/poet",
        "version": "v" * 64,
        "source": "api",
        "status": "succeeded",
        "created_at": "2999-01-01T00:00:00.000000Z",  # newer than any request of the test
        "urls": {"get": f"{BASE}/predictions/p1", "cancel": f"{BASE}/predictions/p1/cancel"},
    }
    entry.update(extra)
    return entry


def mocked_provider():
    provider = Replicate(api_key=SECRET, base_url=BASE, max_retries=0)
    provider._transport.sleep = lambda seconds: None
    return provider


@responses.activate(registry=OrderedRegistry)
def test_a_list_entry_that_leaves_out_its_deployment_is_fetched_to_compare():
    responses.post(CREATE_URL, status=504, body="<html>504 Gateway Time-out</html>")
    responses.get(f"{BASE}/predictions", json={"next": None, "results": [listed()]})  # no input, no deployment
    found = listed(id="p1", input={"prompt": "hi"}, deployment="acme/poet-prod", output=["hello"])
    responses.get(f"{BASE}/predictions/p1", json=found)  # fetched to compare
    responses.get(f"{BASE}/predictions/p1", json=found)  # fetched whole, to continue with it
    stream = mocked_provider().stream(None, "hi", deployment="acme/poet-prod")
    assert stream.id == "p1" and stream.read() == "hello"
    assert [call.request.method for call in responses.calls] == ["POST", "GET", "GET", "GET"]


@responses.activate(registry=OrderedRegistry)
def test_a_fetched_prediction_that_names_no_deployment_is_not_taken():
    responses.post(CREATE_URL, status=504, body="<html>504 Gateway Time-out</html>")
    for _ in range(3):  # every search finds the same entry, which never says it is the deployment's
        responses.get(f"{BASE}/predictions", json={"next": None, "results": [listed()]})
        responses.get(f"{BASE}/predictions/p1", json=listed(input={"prompt": "hi"}))
    with pytest.raises(PredictionMayExistError):
        mocked_provider().stream(None, "hi", deployment="acme/poet-prod")
    assert responses.calls[0].request.url == CREATE_URL
    assert json.loads(responses.calls[0].request.body) == {"input": {"prompt": "hi"}}


# -- routing: Client and command line ------------------------------------------------------------


def test_the_client_routes_deployments_to_replicate(deployed):
    with GradioEmulator() as app:
        client = Client(replicate_api_key=SECRET, replicate_base_url=deployed.base_url, qwen_url=app.url)
        with client:
            assert client.complete("deployments/acme/poet-prod", "x") == "".join(TOKENS)
            # Qwen first in the list, and no model named: deployment= still goes to Replicate.
            reordered = Client(providers=[client.providers[1], client.providers[0]])
            assert reordered.complete(None, "x", deployment="acme/poet-prod") == "".join(TOKENS)
            assert client.batch([{"model": None, "prompt": "x", "deployment": "acme/poet-prod"}]) == ["".join(TOKENS)]
    assert [r.path for r in creates(deployed)] == ["/v1/deployments/acme/poet-prod/predictions"] * 3


def test_a_client_without_replicate_refuses_a_deployment():
    with GradioEmulator() as app:
        client = Client(providers=[Client(qwen_url=app.url).providers[1]])
        with pytest.raises(ModelNotFoundError) as caught:
            client.provider_for(None, deployment="acme/poet-prod")
    assert "no Replicate provider" in str(caught.value)


def test_the_command_line_streams_a_deployment(deployed, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", SECRET)
    out = io.StringIO()
    code = main(["--replicate-base-url", deployed.base_url, "chat", "-m", "deployments/acme/poet-prod", "A poem"], out)
    assert code == 0 and out.getvalue() == "".join(TOKENS) + "\n"
    assert creates(deployed)[0].path == "/v1/deployments/acme/poet-prod/predictions"


def test_the_emulator_serves_a_default_deployment():
    with ReplicateEmulator() as emulator:
        provider = Replicate(api_key=emulator.api_token, base_url=emulator.base_url)
        with provider:
            assert provider.complete("deployments/acme/chat", "hi") == "You said: hi"
        [prediction] = emulator.predictions.values()
        assert prediction.model == "meta/meta-llama-3-8b-instruct" and prediction.deployment == "acme/chat"
