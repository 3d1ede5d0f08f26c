"""Transport: retries counted request by request, timeouts, proxies, translation of failures."""

import email.utils
import json
import pickle
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
from responses.registries import OrderedRegistry
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from replicate_qwen_sdk import Timeout
from replicate_qwen_sdk.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from replicate_qwen_sdk.providers.gradio import GradioSpace
from replicate_qwen_sdk.providers.replicate import Replicate
from replicate_qwen_sdk.retry import BACKOFF_CAP, CREATE, MAX_RETRY_AFTER, READ, backoff_delay, parse_retry_after
from replicate_qwen_sdk.transport import Transport

URL = "http://127.0.0.1:9/v1/thing"


def make_transport(**overrides):
    settings = dict(timeout=Timeout(connect=2, read=2), max_retries=2)
    settings.update(overrides)
    transport = Transport(**settings)
    transport.slept = []
    transport.sleep = transport.slept.append
    return transport


def refused_error():
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, URL, reason))


def reset_error():
    return requests.exceptions.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")))


# -- retry sequences, counted --------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
@responses.activate(registry=OrderedRegistry)
def test_reads_are_retried_on_transient_statuses_then_succeed(status):
    responses.get(URL, status=status, json={"detail": "busy"})
    responses.get(URL, status=status, json={"detail": "busy"})
    responses.get(URL, json={"ok": True})
    transport = make_transport()
    response = transport.request("GET", URL, action="reading", policy=READ)
    assert response.json() == {"ok": True}
    assert len(responses.calls) == 3
    assert len(transport.slept) == 2


@responses.activate(registry=OrderedRegistry)
def test_retries_stop_after_max_retries_and_raise_the_last_error():
    for _ in range(3):
        responses.get(URL, status=503, json={"detail": "still down"})
    transport = make_transport(max_retries=2)
    with pytest.raises(ServerError) as caught:
        transport.request("GET", URL, action="reading")
    assert len(responses.calls) == 3
    assert caught.value.status_code == 503 and "still down" in str(caught.value)


@responses.activate(registry=OrderedRegistry)
def test_zero_retries_means_one_attempt():
    responses.get(URL, status=503)
    with pytest.raises(ServerError):
        make_transport(max_retries=0).request("GET", URL, action="reading")
    assert len(responses.calls) == 1


@pytest.mark.parametrize("policy", [READ, CREATE], ids=["read", "create"])
@responses.activate(registry=OrderedRegistry)
def test_500_is_never_retried(policy):
    responses.add(responses.POST if policy is CREATE else responses.GET, URL, status=500)
    transport = make_transport()
    with pytest.raises(ServerError):
        transport.request("POST" if policy is CREATE else "GET", URL, action="x", policy=policy)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [429, 502, 503, 504])
@responses.activate(registry=OrderedRegistry)
def test_create_is_retried_only_where_the_server_did_not_act(status):
    responses.post(URL, status=status)
    responses.post(URL, status=201, json={"id": "p1"})
    transport = make_transport()
    assert transport.request("POST", URL, action="creating", policy=CREATE).json() == {"id": "p1"}
    assert len(responses.calls) == 2


@responses.activate(registry=OrderedRegistry)
def test_create_is_retried_after_a_failure_to_connect():
    responses.post(URL, body=refused_error())
    responses.post(URL, body=requests.exceptions.ConnectTimeout("connect timed out"))
    responses.post(URL, status=201, json={"id": "p1"})
    transport = make_transport()
    assert transport.request("POST", URL, action="creating", policy=CREATE).status_code == 201
    assert len(responses.calls) == 3


@pytest.mark.parametrize(
    "failure", [reset_error, lambda: requests.exceptions.ReadTimeout("read timed out")], ids=["reset", "read-timeout"]
)
@responses.activate(registry=OrderedRegistry)
def test_create_is_not_retried_once_the_request_may_have_reached_the_server(failure):
    responses.post(URL, body=failure())
    responses.post(URL, status=201, json={"id": "would run twice"})
    with pytest.raises((APIConnectionError, APITimeoutError)):
        make_transport().request("POST", URL, action="creating", policy=CREATE)
    assert len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_reads_are_retried_after_a_reset_but_not_after_a_read_timeout():
    responses.get(URL, body=reset_error())
    responses.get(URL, json={"ok": 1})
    assert make_transport().request("GET", URL, action="reading").json() == {"ok": 1}
    assert len(responses.calls) == 2

    responses.reset()
    responses.get(URL, body=requests.exceptions.ReadTimeout("slow"))
    responses.get(URL, json={"ok": 2})
    with pytest.raises(APITimeoutError):
        make_transport().request("GET", URL, action="reading")
    assert len(responses.calls) == 1


# -- Retry-After and backoff --------------------------------------------------


@responses.activate(registry=OrderedRegistry)
def test_retry_after_in_seconds_is_honoured_exactly():
    responses.post(URL, status=429, headers={"Retry-After": "3"}, json={"detail": "throttled"})
    responses.post(URL, status=201, json={})
    transport = make_transport()
    transport.request("POST", URL, action="creating", policy=CREATE)
    assert transport.slept == [3.0]


@responses.activate(registry=OrderedRegistry)
def test_retry_after_as_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    responses.get(URL, status=503, headers={"Retry-After": when})
    responses.get(URL, json={})
    transport = make_transport()
    transport.request("GET", URL, action="reading")
    assert len(transport.slept) == 1 and 3.0 <= transport.slept[0] <= 5.0


@responses.activate(registry=OrderedRegistry)
def test_retry_after_beyond_the_cap_raises_at_once_with_the_delay():
    responses.post(URL, status=429, headers={"Retry-After": str(int(MAX_RETRY_AFTER) + 60)})
    transport = make_transport()
    with pytest.raises(RateLimitError) as caught:
        transport.request("POST", URL, action="creating", policy=CREATE)
    assert caught.value.retry_after == MAX_RETRY_AFTER + 60
    assert transport.slept == [] and len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_no_retry_when_the_wait_would_pass_the_overall_deadline():
    responses.get(URL, status=429, headers={"Retry-After": "30"})
    transport = make_transport(timeout=Timeout(connect=1, read=1, total=5))
    with pytest.raises(RateLimitError):
        transport.request("GET", URL, action="reading")
    assert len(responses.calls) == 1


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    for attempt in range(8):
        step = min(BACKOFF_CAP, 0.5 * 2**attempt)
        samples = [backoff_delay(attempt) for _ in range(200)]
        assert all(step / 2 <= sample <= step for sample in samples)
        assert len(set(samples)) > 1  # jittered


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0.0),
        ("2.5", 2.5),
        ("-4", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


# -- translation of failures ----------------------------------------------------


@pytest.mark.parametrize(
    "exception, expected",
    [
        (requests.exceptions.ConnectTimeout("connect"), APITimeoutError),
        (requests.exceptions.ReadTimeout("read"), APITimeoutError),
        (requests.exceptions.ConnectionError("boom"), APIConnectionError),
        (requests.exceptions.SSLError("bad cert"), APIConnectionError),
        (requests.exceptions.ProxyError("proxy says no"), APIConnectionError),
        (requests.exceptions.InvalidURL("bad url"), InvalidArgumentError),
    ],
)
@responses.activate
def test_requests_failures_become_typed_errors(exception, expected):
    responses.get(URL, body=exception)
    with pytest.raises(expected) as caught:
        make_transport(max_retries=0).request("GET", URL, action="reading the thing")
    assert "reading the thing" in str(caught.value)


@responses.activate
def test_secrets_are_masked_in_error_messages():
    secret = "r8_very_secret_token_value"
    responses.get(URL, status=401, json={"detail": f"token {secret} is not valid"})
    with pytest.raises(Exception) as caught:
        make_transport(secrets=(secret,)).request("GET", URL, action="reading")
    assert secret not in str(caught.value) and "***" in str(caught.value)


def test_a_malformed_proxy_is_refused_without_echoing_its_password():
    with pytest.raises(InvalidArgumentError) as caught:
        make_transport(proxy="user:hunter2@proxy.internal:3128")
    assert "hunter2" not in str(caught.value) and "http://host:3128" in str(caught.value)


def test_a_proxy_password_is_masked_like_any_secret(monkeypatch):
    assert make_transport(proxy="http://user:hunter2@127.0.0.1:9").redact("at hunter2") == "at ***"
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cr3t@127.0.0.1:9")
    assert make_transport().redact("at s3cr3t") == "at ***"


def test_secrets_are_masked_in_their_escaped_form_too():
    secret = "r8_line\nbreak"
    transport = make_transport(secrets=(secret,))
    assert transport.redact(f"header value {secret!r} refused") == "header value '***' refused"
    assert transport.redact(f"raw {secret}") == "raw ***"


def test_connection_refused_on_a_real_port_is_retried_for_create_then_raised():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens
    transport = make_transport(max_retries=2)
    with pytest.raises(APIConnectionError) as caught:
        transport.request("POST", f"http://127.0.0.1:{port}/v1/predictions", action="creating", policy=CREATE)
    assert len(transport.slept) == 2
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_a_server_that_never_answers_raises_a_read_timeout():
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True)
    thread.start()
    transport = make_transport(timeout=Timeout(connect=2, read=0.3), max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as caught:
        transport.request("GET", f"http://127.0.0.1:{listener.getsockname()[1]}/", action="reading")
    assert time.monotonic() - started < 2.5
    assert "0.3" in str(caught.value)
    listener.close()
    for connection, _ in accepted:
        connection.close()


# -- sessions and proxies -------------------------------------------------------


def test_each_transport_has_its_own_session_and_pickling_rebuilds_it():
    first, second = make_transport(), make_transport()
    assert first.session is first.session
    assert first.session is not second.session
    copy = pickle.loads(pickle.dumps(first))
    assert copy.session is not first.session and isinstance(copy.session, requests.Session)
    assert copy.timeout == first.timeout and copy.max_retries == first.max_retries


@responses.activate
def test_requests_carry_the_session_headers_with_the_callers_winning_in_any_case():
    responses.get(URL, json={})
    transport = make_transport()
    transport.request("GET", URL, action="reading", headers={"accept": "text/event-stream", "X-Extra": "1"})
    sent = responses.calls[0].request.headers
    assert sent["User-Agent"].startswith("replicate_qwen_sdk/")
    assert sent["Accept"] == "text/event-stream"  # the session's "*/*" is replaced, not doubled
    assert sent["X-Extra"] == "1"


@responses.activate(registry=OrderedRegistry)
def test_cookies_set_by_the_server_are_sent_back_on_later_requests():
    responses.get(URL, json={}, headers={"Set-Cookie": "affinity=replica-2; Path=/"})
    responses.post(URL, json={})
    transport = make_transport()
    transport.request("GET", URL, action="reading")
    transport.request("POST", URL, action="creating", json={"a": 1})
    assert "Cookie" not in responses.calls[0].request.headers
    assert responses.calls[1].request.headers["Cookie"] == "affinity=replica-2"
    assert json.loads(responses.calls[1].request.body) == {"a": 1}
    assert responses.calls[1].request.headers["Content-Type"] == "application/json"


@responses.activate
def test_a_get_follows_redirects_and_a_post_does_not():
    moved = "http://127.0.0.1:9/v1/moved"
    responses.get(URL, status=302, headers={"Location": moved})
    responses.get(moved, json={"here": True})
    responses.post(URL, status=307, headers={"Location": moved})
    transport = make_transport()
    assert transport.request("GET", URL, action="reading").json() == {"here": True}
    assert transport.request("POST", URL, action="creating", json={}).status_code == 307


@pytest.mark.parametrize(
    "kwargs", [{"max_retries": -1}, {"max_retries": 1.5}, {"pool_size": 0}, {"proxy": "not a url"}]
)
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(InvalidArgumentError):
        make_transport(**kwargs)


class _RecordingProxy(BaseHTTPRequestHandler):
    """A forward proxy that answers every request itself and records it."""

    def do_GET(self):
        self.server.seen.append(self.path)
        body = json.dumps({"via": self.server.name}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def proxies():
    servers = []
    for name in ("explicit", "environment"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingProxy)
        server.seen, server.name = [], name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield {server.name: server for server in servers}
    for server in servers:
        server.shutdown()
        server.server_close()


def _proxy_url(server):
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_explicit_proxy_is_used_and_wins_over_the_environment(proxies, monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", _proxy_url(proxies["environment"]))
    transport = make_transport(proxy=_proxy_url(proxies["explicit"]))
    assert transport.request("GET", "http://model.invalid/v1/x", action="reading").json() == {"via": "explicit"}
    assert proxies["explicit"].seen == ["http://model.invalid/v1/x"]
    assert proxies["environment"].seen == []


def test_proxy_from_the_environment_is_used_without_an_explicit_one(proxies, monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", _proxy_url(proxies["environment"]))
    transport = make_transport()
    assert transport.request("GET", "http://model.invalid/v1/y", action="reading").json() == {"via": "environment"}
    assert proxies["environment"].seen == ["http://model.invalid/v1/y"]


def test_no_proxy_exempts_hosts_and_all_proxy_applies(proxies, monkeypatch, emulator):
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", _proxy_url(proxies["environment"]))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = make_transport()
    with pytest.raises(AuthenticationError):  # the emulator itself answered (the proxy would say 200)
        direct.request("GET", f"{emulator.base_url}/predictions/nothing", action="reading")
    assert proxies["environment"].seen == [] and emulator.count("get") == 1
    monkeypatch.delenv("NO_PROXY")
    via_proxy = make_transport()
    assert via_proxy.request("GET", "http://model.invalid/v1/z", action="reading").json() == {"via": "environment"}


def test_the_environment_is_read_when_the_transport_is_made(proxies, monkeypatch):
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    transport = make_transport()
    monkeypatch.setenv("HTTP_PROXY", _proxy_url(proxies["environment"]))
    with pytest.raises(APIConnectionError):  # no proxy was set when it was made: a direct (failing) connection
        transport.request("GET", "http://127.0.0.1:9/v1/direct", action="reading")
    assert proxies["environment"].seen == []


# -- event streams -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/event-stream", "Text/Event-Stream", "text/event-stream; charset=utf-8", "TEXT/EVENT-STREAM ;charset=UTF-8"],
)
@responses.activate
def test_an_event_stream_is_recognised_whatever_the_case_and_parameters(content_type):
    responses.add(responses.GET, URL, body=b"data: x\n\n", headers={"Content-Type": content_type})
    response = make_transport().open_event_stream(URL, action="streaming", headers={})
    assert response.raw.read() == b"data: x\n\n"


@pytest.mark.parametrize("content_type", ["application/json", "text/event-streams", "text/plain; x=text/event-stream"])
@responses.activate
def test_an_answer_that_is_not_an_event_stream_is_refused(content_type):
    responses.add(responses.GET, URL, body=b"{}", headers={"Content-Type": content_type})
    with pytest.raises(ResponseError, match="Expected an event stream while streaming"):
        make_transport().open_event_stream(URL, action="streaming", headers={})


# -- API roots -----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/v1?key=1", "http://127.0.0.1:9/v1#top", "http://127.0.0.1:9?"])
def test_a_replicate_base_url_with_a_query_or_fragment_is_refused(url):
    with pytest.raises(InvalidArgumentError, match="base_url .*without a query or fragment") as caught:
        Replicate(api_key="r8_test", base_url=url)
    assert caught.value.argument == "base_url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/?__theme=dark", "http://127.0.0.1:9/#chat"])
def test_a_space_url_with_a_query_or_fragment_is_refused(url):
    with pytest.raises(InvalidArgumentError, match="src must be the app's URL without a query or fragment"):
        GradioSpace(url)
