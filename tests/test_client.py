"""Client: routing, background streams, batches on threads and on a Dask cluster."""

import pickle
import threading
import time

import pytest

from replicate_qwen_sdk import (
    APITimeoutError,
    BackgroundStream,
    Client,
    InvalidArgumentError,
    ModelNotFoundError,
    PredictionError,
    Qwen_Qwen_2_72B,
    Replicate,
    TextStream,
)
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)


@pytest.fixture
def qwen_app():
    with GradioEmulator() as app:
        yield app


@pytest.fixture
def client(emulator, qwen_app):
    with Client(replicate_api_key=SECRET, replicate_base_url=emulator.base_url, qwen_url=qwen_app.url) as client:
        yield client


def qwen_answer(query, system="You are a helpful assistant."):
    return f"[system={system}] [turns=0: ] you said: {query}"


# -- routing ---------------------------------------------------------------------------


def test_models_route_to_their_provider(client):
    assert client.complete("qwen-2-72b", "hi") == qwen_answer("hi")
    assert client.complete("qwen-qwen2-72b-instruct", "hi") == qwen_answer("hi")
    assert client.complete("meta/meta-llama-3-8b-instruct", "hi") == "You said: hi"
    assert client.complete("llama-3-8b", "hi") == "You said: hi"
    assert client.complete(None, "hi") == "You said: hi"  # the first provider's default


def test_standard_parameters_a_space_cannot_take_are_left_out_and_listed(client, sdk_log):
    assert client.complete("qwen-2-72b", "hi", max_tokens=256) == qwen_answer("hi")
    with client.stream("qwen-2-72b", "hi", max_tokens=256, top_k=3) as stream:
        assert stream.read() == qwen_answer("hi")
    assert stream.ignored_parameters == ("max_tokens", "top_k")
    warnings = [r.getMessage() for r in sdk_log.records if r.levelname == "WARNING"]
    # Once per endpoint and set of names, not once per call.
    named = sorted(w.split(" has no input for ")[1].split(":")[0] for w in warnings)
    assert named == ["max_tokens", "max_tokens, top_k"]
    with pytest.raises(InvalidArgumentError) as caught:
        client.stream("qwen-2-72b", "hi", max_tokens=256, strict=True)
    assert "max_tokens" in str(caught.value) and "strict" in str(caught.value)


def test_provider_override_by_name_or_instance(client, qwen_app):
    assert client.complete(None, "x", provider="qwen") == qwen_answer("x")
    assert client.complete(None, "x", provider="Qwen_Qwen_2_72B") == qwen_answer("x")
    other = Qwen_Qwen_2_72B(url=qwen_app.url)
    assert client.complete(None, "y", provider=other) == qwen_answer("y")
    with pytest.raises(ModelNotFoundError) as caught:
        client.complete(None, "x", provider="openai")
    assert "Replicate" in str(caught.value)


def test_an_unroutable_model_lists_what_is_available(client):
    with pytest.raises(ModelNotFoundError) as caught:
        client.stream("gpt-4", "hi")
    message = str(caught.value)
    assert "gpt-4" in message and "qwen-2-72b" in message and "llama-3-8b" in message


def test_models_lists_names_and_aliases():
    models = {m.name: m for m in Client(replicate_api_key="x").models()}
    assert models["qwen-2-72b"].alias_of == "qwen-qwen2-72b-instruct"
    assert models["qwen-2-72b"].provider == "Qwen_Qwen_2_72B"
    assert models["meta/meta-llama-3-70b-instruct"].provider == "Replicate"


def test_default_providers_are_built_once_even_from_many_threads():
    client = Client(replicate_api_key="x")
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(client.providers)) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(providers is seen[0] for providers in seen)
    assert [type(p) for p in seen[0]] == [Replicate, Qwen_Qwen_2_72B]


def test_credentials_from_the_environment_travel_with_a_pickled_client(monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", SECRET)
    copy = pickle.loads(pickle.dumps(Client()))
    monkeypatch.delenv("REPLICATE_API_TOKEN")  # a worker without the variable
    assert copy.providers[0]._api_key == SECRET
    assert SECRET not in repr(copy)


def test_a_client_pickles_without_showing_its_key(client):
    assert len(client.providers) == 2  # built before pickling
    copy = pickle.loads(pickle.dumps(client))
    assert SECRET not in repr(copy) and SECRET not in repr(client)
    assert copy.complete("llama-3-8b", "again") == "You said: again"


def test_bad_provider_lists_are_rejected():
    with pytest.raises(InvalidArgumentError):
        Client(providers=[])
    with pytest.raises(InvalidArgumentError):
        Client(providers=["replicate"])


# -- background streams ---------------------------------------------------------------------


def test_a_background_stream_returns_at_once_and_yields_as_tokens_arrive(client, emulator):
    emulator.add_model("acme/slow", Script(["a", "b", "c", "d"], first_delay=1.0, delay=0.05))
    started = time.monotonic()
    stream = client.stream("acme/slow", "go", background=True)
    returned = time.monotonic() - started
    assert isinstance(stream, BackgroundStream)
    assert returned < 0.5  # the first token is a second away: the caller was not held
    assert list(stream) == ["a", "b", "c", "d"]
    assert stream.text == "abcd" and stream.id in emulator.predictions
    assert stream.metrics.chunks == 4
    stream._thread.join(1)
    assert not stream._thread.is_alive()


def test_result_waits_for_the_whole_text_or_times_out(client, emulator):
    emulator.add_model("acme/slow", Script([f"{i} " for i in range(10)], delay=0.1))
    stream = client.stream("acme/slow", "go", background=True)
    with pytest.raises(APITimeoutError):
        stream.result(timeout=0.05)
    assert stream.result(timeout=10) == "".join(f"{i} " for i in range(10))


def test_cancel_from_another_thread_stops_the_prediction(client, emulator, consume):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(200)], delay=0.05))
    stream = client.stream("acme/long", "go", background=True)
    consumer = consume(stream)
    assert consumer.first.wait(10)
    threading.Thread(target=stream.cancel).start()
    consumer.thread.join(10)
    assert consumer.outcome == {"ended": True}
    assert emulator.count("cancel") == 1
    assert emulator.prediction(stream.id).status(time.monotonic()) == "canceled"
    assert not stream._thread.is_alive()


def test_an_error_in_the_reader_surfaces_in_the_consumer(client, emulator):
    emulator.add_model("acme/broken", Script(["one ", "two "], error_after=2, error_detail="model crashed"))
    stream = client.stream("acme/broken", "go", background=True)
    received = []
    with pytest.raises(PredictionError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received == ["one ", "two "] and "model crashed" in str(caught.value)
    failing_call = client.stream("acme/does-not-exist", "go", background=True)
    with pytest.raises(ModelNotFoundError):
        failing_call.result(timeout=10)


def test_closing_or_dropping_a_background_stream_ends_its_thread(client, emulator):
    emulator.add_model("acme/long", Script([f"{i} " for i in range(500)], delay=0.01))
    stream = client.stream("acme/long", "go", background=True, buffer=4)
    next(stream)
    stream.close()
    assert not stream._thread.is_alive()
    abandoned = client.stream("acme/long", "go", background=True, buffer=4)
    next(abandoned)
    thread = abandoned._thread
    del abandoned
    thread.join(5)
    assert not thread.is_alive()


def test_closing_a_background_stream_whose_reader_waits_on_the_network_lets_go_at_once(client, emulator):
    # The reader blocks on a silent stream; close() must end it without a
    # resume or a poll of the prediction (the run goes on: close is not cancel).
    emulator.add_model("acme/stall", Script(["first", " never"], silence_after=1, silence=30))
    stream = client.stream("acme/stall", "go", background=True)
    assert next(stream) == "first"
    started = time.monotonic()
    stream.close()
    assert not stream._thread.is_alive()
    assert time.monotonic() - started < 2
    assert emulator.count("stream") == 1 and emulator.count("get") == 0 and emulator.count("cancel") == 0


def wait_for(condition, timeout=10.0):
    """Check ``condition()`` every 10 ms until it holds; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_background_streams_text_and_metrics_grow_while_nobody_iterates(client, emulator):
    # Two tokens at once, then the model stalls for half a minute.
    emulator.add_model("acme/paused", Script(["Once", " upon", " a", " time"], silence_after=2, silence=30))
    stream = client.stream("acme/paused", "go", background=True)
    assert wait_for(lambda: stream.text == "Once upon"), f"the text stayed {stream.text!r}"
    assert (stream.metrics.chunks, stream.metrics.characters) == (2, 9)
    assert not stream.finished and "streaming: first chunk after" in repr(stream) and "2 chunks" in repr(stream)
    stream.cancel()
    assert list(stream) == ["Once", " upon"]  # the consumer still gets every chunk, once
    assert stream.text == "Once upon"


def test_a_plain_stream_is_a_text_stream(client):
    assert isinstance(client.stream("qwen-2-72b", "x"), TextStream)


# -- batches -------------------------------------------------------------------------------------


def paced_jobs(emulator, count):
    emulator.add_model(
        "acme/paced",
        lambda inputs: Script([f"{inputs['prompt']}", " ->", " answer", " to", f" {inputs['prompt']}"], delay=0.01),
    )
    jobs = []
    for index in range(count):
        if index % 5 == 0:
            jobs.append({"model": "qwen-2-72b", "messages": [{"role": "user", "content": f"q{index}"}]})
        else:
            jobs.append({"model": "acme/paced", "prompt": f"job-{index}", "max_tokens": 16})
    return jobs


def expected_for(job):
    if job["model"] == "qwen-2-72b":
        return qwen_answer(job["messages"][0]["content"])
    prompt = job["prompt"]
    return f"{prompt} -> answer to {prompt}"


def test_two_hundred_jobs_come_back_in_order_and_exact(client, emulator):
    jobs = paced_jobs(emulator, 200)
    seen = []
    results = client.batch(jobs, max_workers=50, on_result=lambda index, result: seen.append(index))
    assert results == [expected_for(job) for job in jobs]
    assert sorted(seen) == list(range(200))
    assert all(p._transport.pool_size >= 50 for p in client.providers)


def test_a_failing_job_takes_its_place_or_stops_the_batch(client, emulator):
    jobs = [{"prompt": "fine"}, {"model": "qwen-2-72b"}, {"model": "acme/missing", "prompt": "x"}, {"prompt": "ok"}]
    results = client.batch(jobs, max_workers=4)
    assert results[0] == "You said: fine" and results[3] == "You said: ok"
    assert isinstance(results[1], InvalidArgumentError) and isinstance(results[2], ModelNotFoundError)
    with pytest.raises((InvalidArgumentError, ModelNotFoundError)):
        client.batch(jobs, max_workers=4, return_exceptions=False)


def test_jobs_must_be_a_list(client):
    with pytest.raises(InvalidArgumentError):
        client.batch("not jobs")
    with pytest.raises(InvalidArgumentError):
        client.batch([{"prompt": "x"}], max_workers=0)


@pytest.fixture(scope="session")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=8, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as dask,
    ):
        yield dask.get_executor()


def test_the_same_batch_on_a_dask_cluster_of_processes_gives_identical_results(client, emulator, dask_executor):
    jobs = paced_jobs(emulator, 200)
    on_threads = client.batch(jobs, max_workers=50)
    on_dask = client.batch(jobs, executor=dask_executor)
    assert on_dask == on_threads == [expected_for(job) for job in jobs]
    worker_creates = [r for r in emulator.requests if r.route == "create"]
    assert len(worker_creates) == 2 * 160  # every Replicate job ran once on each path, none twice
