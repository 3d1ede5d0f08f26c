"""Models read from Replicate's API: the ``language-models`` collection, whole
or in pages; the static list stays the offline default."""

import io

import pytest
import responses
from responses.registries import OrderedRegistry

from replicate_qwen_sdk import Client, InvalidArgumentError, MissingAuthError, ModelNotFoundError, Replicate
from replicate_qwen_sdk.cli import main
from replicate_qwen_sdk.errors import ResponseError
from replicate_qwen_sdk.providers.replicate import ModelInfo
from replicate_qwen_sdk.testing import Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)
BASE = "http://127.0.0.1:9/v1"
COLLECTION_URL = f"{BASE}/collections/language-models"


def entry(owner, name, **extra):
    return {"url": f"https://replicate.com/{owner}/{name}", "owner": owner, "name": name, **extra}


def mocked_provider():
    provider = Replicate(api_key=SECRET, base_url=BASE, max_retries=0)
    provider._transport.sleep = lambda seconds: None
    return provider


# -- against the emulator ----------------------------------------------------------------------


def test_list_models_reads_the_language_models_collection(provider, emulator):
    emulator.add_model("acme/poet", Script(["x"]))
    emulator.add_model("b" * 64, Script(["x"]))  # a bare version id: no model name, not listed
    provider.complete("acme/poet", "hi")
    models = provider.list_models()
    names = [model.name for model in models]
    served = emulator.model_names()
    assert names == served and "acme/poet" in served and "b" * 64 not in served
    poet = models[names.index("acme/poet")]
    assert poet.run_count == 1 and poet.description == "acme/poet, served by the emulator"
    assert all(isinstance(model, ModelInfo) for model in models)
    [request] = [r for r in emulator.requests if r.route == "collection"]
    assert request.path == "/v1/collections/language-models" and request.headers["Authorization"] == f"Bearer {SECRET}"


def test_a_collection_in_pages_is_read_to_its_end(provider, emulator):
    for index in range(5):
        emulator.add_model(f"acme/model-{index}", Script(["x"]))
    emulator.COLLECTION_PAGE_SIZE = 3
    names = [model.name for model in provider.list_models()]
    assert names == emulator.model_names() and len(names) >= 6
    assert emulator.count("collection") == -(-len(names) // 3)  # 3 a page


def test_an_unknown_collection_is_model_not_found(provider, emulator):
    with pytest.raises(ModelNotFoundError) as caught:
        provider.list_models("no-such-collection")
    assert "no collection 'no-such-collection'" in str(caught.value)


def test_list_models_needs_a_token(emulator):
    provider = Replicate(base_url=emulator.base_url)
    with pytest.raises(MissingAuthError):
        provider.list_models()
    assert emulator.requests == []


@pytest.mark.parametrize("collection", ["", "Language Models", "../predictions", 7])
def test_a_malformed_collection_slug_is_refused_before_any_request(provider, emulator, collection):
    with pytest.raises(InvalidArgumentError):
        provider.list_models(collection)
    assert emulator.requests == []


def test_the_client_lists_remote_models_only_when_asked(emulator):
    emulator.add_model("acme/poet", Script(["x"]))
    client = Client(replicate_api_key=SECRET, replicate_base_url=emulator.base_url)
    with client:
        offline = {model.name for model in client.models()}
        assert emulator.requests == []  # the static list needs no request
        assert "acme/poet" not in offline and "qwen-2-72b" in offline
        remote = {model.name: model for model in client.models(remote=True)}
    assert set(remote) == offline | set(emulator.model_names()) and "acme/poet" in remote
    assert remote["acme/poet"].provider == "Replicate"
    assert remote["acme/poet"].description == "acme/poet, served by the emulator"
    assert remote["llama-3-8b"].alias_of == "meta/meta-llama-3-8b-instruct"  # static entries stay
    assert emulator.count("collection") == 1


def test_the_command_line_prints_the_remote_list(emulator, monkeypatch):
    emulator.add_model("acme/poet", Script(["x"]))
    monkeypatch.setenv("REPLICATE_API_TOKEN", SECRET)
    out = io.StringIO()
    assert main(["--replicate-base-url", emulator.base_url, "models", "--remote"], out) == 0
    assert "acme/poet\tReplicate\tacme/poet, served by the emulator\n" in out.getvalue()
    assert "qwen-2-72b -> qwen-qwen2-72b-instruct\tQwen_Qwen_2_72B\n" in out.getvalue()
    out = io.StringIO()
    assert main(["--replicate-base-url", emulator.base_url, "models"], out) == 0
    assert "acme/poet" not in out.getvalue() and emulator.count("collection") == 1


def test_the_command_line_reports_a_remote_list_without_a_token(emulator, monkeypatch, capsys):
    out = io.StringIO()
    assert main(["--replicate-base-url", emulator.base_url, "models", "--remote"], out) == 3
    assert "REPLICATE_API_TOKEN" in capsys.readouterr().err


# -- answer shapes ---------------------------------------------------------------------------------


@responses.activate(registry=OrderedRegistry)
def test_the_documented_whole_collection_is_read_in_one_request():
    responses.get(
        COLLECTION_URL,
        json={
            "name": "Language models",
            "slug": "language-models",
            "description": "Models that understand and generate text",
            "models": [
                entry("meta", "meta-llama-3-70b-instruct", description="Llama 3,\n 70B\tinstruct", run_count=10),
                entry("acme", "chat", description=None, run_count=True),
                {"owner": "acme"},  # no name: not a model
                "not an object",
                entry("acme", "bad/name"),
            ],
        },
    )
    models = mocked_provider().list_models()
    assert models == [
        ModelInfo(
            "meta/meta-llama-3-70b-instruct",
            "Llama 3, 70B instruct",
            10,
            "https://replicate.com/meta/meta-llama-3-70b-instruct",
        ),
        ModelInfo("acme/chat", "", None, "https://replicate.com/acme/chat"),
    ]


@pytest.mark.parametrize(
    "first, second",
    [
        (  # "models" as a page of its own
            {
                "name": "Language models",
                "models": {"results": [entry("a", "one")], "next": f"{COLLECTION_URL}?cursor=2"},
            },
            {"name": "Language models", "models": {"results": [entry("b", "two")], "next": None}},
        ),
        (  # a page at the top
            {"results": [entry("a", "one")], "next": f"{COLLECTION_URL}?cursor=2", "previous": None},
            {"results": [entry("b", "two"), entry("a", "one")], "next": None, "previous": COLLECTION_URL},
        ),
        (  # models beside a next
            {"models": [entry("a", "one")], "next": f"{COLLECTION_URL}?cursor=2"},
            {"models": [entry("b", "two")], "next": None},
        ),
    ],
    ids=["nested-page", "top-level-page", "models-and-next"],
)
@responses.activate(registry=OrderedRegistry)
def test_every_paged_shape_is_followed_to_its_end(first, second):
    responses.get(COLLECTION_URL, json=first)
    responses.get(f"{COLLECTION_URL}?cursor=2", json=second)
    assert [model.name for model in mocked_provider().list_models()] == ["a/one", "b/two"]
    assert len(responses.calls) == 2
    assert all(call.request.headers["Authorization"] == f"Bearer {SECRET}" for call in responses.calls)


@responses.activate(registry=OrderedRegistry)
def test_a_next_page_on_another_host_or_seen_before_is_not_followed():
    responses.get(COLLECTION_URL, json={"models": [entry("a", "one")], "next": f"{COLLECTION_URL}?cursor=2"})
    responses.get(f"{COLLECTION_URL}?cursor=2", json={"models": [entry("b", "two")], "next": COLLECTION_URL})
    assert [model.name for model in mocked_provider().list_models()] == ["a/one", "b/two"]
    assert len(responses.calls) == 2  # the loop back to the first page is not taken
    responses.get(COLLECTION_URL, json={"models": [entry("c", "three")], "next": "https://elsewhere.example/v1/x"})
    assert [model.name for model in mocked_provider().list_models()] == ["c/three"]
    assert len(responses.calls) == 3  # the token is never sent to another host


@pytest.mark.parametrize("body", [{"name": "Language models"}, ["a", "list"], {"models": "none"}])
@responses.activate
def test_an_answer_without_a_list_of_models_is_a_response_error(body):
    responses.get(COLLECTION_URL, json=body)
    with pytest.raises(ResponseError) as caught:
        mocked_provider().list_models()
    assert "no list of models" in str(caught.value)
