"""Hostile servers: events that never end, compression bombs, corrupt
compression, answers trickled a byte at a time. Each runs on a real socket
on loopback, written byte by byte by the test."""

import gzip
import json
import socket
import threading
import time
import zlib

import pytest

from replicate_qwen_sdk import GradioSpace, Replicate, Timeout
from replicate_qwen_sdk.errors import (
    APITimeoutError,
    PredictionMayExistError,
    ResponseError,
    ResponseTooLargeError,
    SDKError,
)
from replicate_qwen_sdk.sse import EventStream
from replicate_qwen_sdk.transport import READ_CHUNK_SIZE, Transport

# -- a server whose every byte the test decides ---------------------------------


class RawServer:
    """Accepts connections on loopback; each request is handed to
    ``handler(method, path, body, connection)``, which writes the answer
    itself (and may trickle it, or never finish it)."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.headers = []  # of each request, names in lower case
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.url = "http://127.0.0.1:%d" % self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection):
        with connection:
            reader = connection.makefile("rb")
            try:
                while True:
                    line = reader.readline()
                    if not line:
                        return
                    method, path, _ = line.decode().split(" ", 2)
                    length = 0
                    headers = {}
                    while True:
                        header = reader.readline()
                        if header in (b"\r\n", b"\n", b""):
                            break
                        name, _, value = header.decode().partition(":")
                        headers[name.lower()] = value.strip()
                        if name.lower() == "content-length":
                            length = int(value)
                    self.headers.append(headers)
                    body = reader.read(length) if length else b""
                    self.requests.append((method, path))
                    if self.handler(method, path, body, connection) is not True:
                        return  # the handler closes unless it says the connection stays open
            except OSError:
                return

    def close(self):
        self._stop.set()
        self._listener.close()


@pytest.fixture
def serve():
    servers = []

    def start(handler):
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def send_head(connection, status="200 OK", headers=()):
    lines = [f"HTTP/1.1 {status}", *headers, "", ""]
    connection.sendall("\r\n".join(lines).encode())


def send_json(connection, value, status="200 OK"):
    body = json.dumps(value).encode()
    send_head(connection, status, ["Content-Type: application/json", f"Content-Length: {len(body)}"])
    connection.sendall(body)
    return True


def send_chunk(connection, data):
    connection.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def trickle(connection, data, every=0.05, until=None):
    """Send ``data`` one byte at a time; give up quietly when the client
    has gone or ``until`` seconds have passed."""
    started = time.monotonic()
    try:
        for index in range(len(data)):
            if until is not None and time.monotonic() - started > until:
                return
            connection.sendall(data[index : index + 1])
            time.sleep(every)
    except OSError:
        pass


def event_stream_head(connection, *extra):
    send_head(connection, headers=["Content-Type: text/event-stream", "Transfer-Encoding: chunked", *extra])


def read_events(server_url, **transport_settings):
    transport = Transport(timeout=Timeout(connect=2, read=5), max_retries=0, **transport_settings)
    response = transport.open_event_stream(server_url + "/stream", action="testing", headers={})
    events = EventStream(transport.iter_bytes(response, action="testing"), max_event_size=1024 * 1024)
    return [event.data for event in events]


# -- one event without end ------------------------------------------------------


def test_an_event_that_never_ends_is_refused_at_the_limit_with_a_typed_error(serve):
    sent = []

    def endless(method, path, body, connection):
        event_stream_head(connection)
        send_chunk(connection, b"data: start\n\ndata: ")
        try:
            for _ in range(200):  # 200 x 64 KiB: 12.5 MiB if nobody stopped reading
                send_chunk(connection, b"x" * 65536)
                sent.append(65536)
        except OSError:
            pass

    server = serve(endless)
    with pytest.raises(ResponseTooLargeError, match="max_event_size"):
        read_events(server.url)
    # Refused once the limit (1 MiB) was passed, not at the end of the line.
    assert sum(sent) < 200 * 65536


@pytest.mark.parametrize("piece", [1, 7, 1000])
def test_an_event_below_the_limit_arrives_whole_however_finely_it_is_cut(piece):
    data = ("token " * 40_000).encode()  # 240 KB in one data line
    wire = b"id: 1\ndata: " + data + b"\n\ndata: next\n\n"
    chunks = [wire[index : index + piece] for index in range(0, len(wire), piece)]
    events = list(EventStream(chunks, max_event_size=len(wire)))
    assert [event.data for event in events] == [data.decode(), "next"]


def test_the_limit_counts_an_event_that_arrives_in_one_piece_too():
    wire = b"data: " + b"y" * 5000 + b"\n\ndata: ok\n\n"
    with pytest.raises(ResponseTooLargeError):
        list(EventStream([wire], max_event_size=4096))
    events = list(EventStream([wire], max_event_size=8192))
    assert [event.data for event in events] == ["y" * 5000, "ok"]


def test_the_default_event_limit_is_a_few_mib():
    from replicate_qwen_sdk.sse import DEFAULT_MAX_EVENT_SIZE

    assert 1024 * 1024 <= DEFAULT_MAX_EVENT_SIZE <= 16 * 1024 * 1024
    assert EventStream([]).max_event_size == DEFAULT_MAX_EVENT_SIZE


# -- compressed streams ------------------------------------------------------


def gzip_stream_handler(payload, encoding="gzip", cut=997):
    compressed = gzip.compress(payload) if encoding == "gzip" else zlib.compress(payload)

    def handler(method, path, body, connection):
        event_stream_head(connection, f"Content-Encoding: {encoding}")
        for index in range(0, len(compressed), cut):
            send_chunk(connection, compressed[index : index + cut])
        send_chunk(connection, b"")

    return handler


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_event_stream_is_read_exactly(serve, encoding):
    tokens = [f"tok{index} ü\n" if index % 5 == 0 else f"tok{index} " for index in range(3000)]
    wire = "".join(
        "id: %d\n%s\n" % (index, "".join(f"data: {line}\n" for line in token.split("\n")))
        for index, token in enumerate(tokens)
    )
    server = serve(gzip_stream_handler(wire.encode(), encoding))
    assert "".join(read_events(server.url)) == "".join(tokens)


def test_a_compression_bomb_is_inflated_a_bounded_piece_at_a_time(serve):
    # 200 MB of one endless line, about 200 KB on the wire.
    bomb = b"data: " + b"a" * 200_000_000
    server = serve(gzip_stream_handler(bomb, cut=65536))
    transport = Transport(timeout=Timeout(connect=2, read=5), max_retries=0)
    response = transport.open_event_stream(server.url + "/stream", action="testing", headers={})
    largest = 0

    def pieces():
        nonlocal largest
        for piece in transport.iter_bytes(response, action="testing"):
            largest = max(largest, len(piece))
            yield piece

    with pytest.raises(ResponseTooLargeError):
        list(EventStream(pieces(), max_event_size=4 * 1024 * 1024))
    assert 0 < largest <= READ_CHUNK_SIZE


def test_a_compression_bomb_in_a_json_answer_is_refused_at_the_body_limit(serve):
    bomb = gzip.compress(b"[" + b" " * 100_000_000 + b"]")

    def handler(method, path, body, connection):
        send_head(
            connection,
            headers=["Content-Type: application/json", "Content-Encoding: gzip", f"Content-Length: {len(bomb)}"],
        )
        connection.sendall(bomb)

    server = serve(handler)
    transport = Transport(timeout=Timeout(connect=2, read=5), max_retries=0, max_body_size=1024 * 1024)
    with pytest.raises(ResponseTooLargeError, match="1,048,576 bytes"):
        transport.request("GET", server.url + "/config", action="loading the config")


def test_a_compressed_json_answer_is_read(serve):
    value = {"text": "héllo\n" * 1000}
    body = gzip.compress(json.dumps(value).encode())

    def handler(method, path, body_in, connection):
        send_head(
            connection,
            headers=["Content-Type: application/json", "Content-Encoding: gzip", f"Content-Length: {len(body)}"],
        )
        connection.sendall(body)
        return True

    server = serve(handler)
    transport = Transport(timeout=Timeout(connect=2, read=5), max_retries=0)
    response = transport.request("GET", server.url + "/x", action="testing")
    assert transport.json(response, action="testing") == value
    # The connection went back to the pool: the next request reuses it.
    transport.request("GET", server.url + "/x", action="testing")
    assert len(server.requests) == 2


def test_an_encoding_the_sdk_did_not_ask_for_is_a_typed_error(serve):
    def handler(method, path, body, connection):
        event_stream_head(connection, "Content-Encoding: br")
        send_chunk(connection, b"\x1b\x00\x00")
        send_chunk(connection, b"")

    server = serve(handler)
    with pytest.raises(ResponseError, match="encoding the SDK did not ask for"):
        read_events(server.url)


def test_the_sdk_asks_only_for_encodings_it_can_bound(serve):
    def handler(method, path, body, connection):
        if path == "/stream":
            event_stream_head(connection)
            send_chunk(connection, b"data: x\n\n")
            send_chunk(connection, b"")
            return None
        return send_json(connection, {})

    server = serve(handler)
    transport = Transport(timeout=Timeout(connect=2, read=5), max_retries=0)
    transport.request("GET", server.url + "/x", action="testing")
    assert read_events(server.url) == ["x"]
    assert [headers["accept-encoding"] for headers in server.headers] == ["gzip, deflate", "gzip, deflate"]


# -- corrupt compression takes the normal recovery path ------------------------


def replicate_with_a_corrupt_stream(output_tokens):
    """A Replicate API whose event stream breaks off in corrupt gzip data
    after the first events; the prediction itself finishes normally."""
    good = "".join(f"event: output\nid: {index}\ndata: {token}\n\n" for index, token in enumerate(output_tokens[:3]))
    compressed = gzip.compress(good.encode())
    corrupt = compressed[:-8] + b"\x00garbage-not-deflate" * 20

    def handler(method, path, body, connection):
        if method == "POST" and path.endswith("/predictions"):
            return send_json(
                connection,
                {
                    "id": "p1",
                    "status": "starting",
                    "urls": {"stream": f"{handler.url}/stream/p1", "get": f"{handler.url}/v1/predictions/p1"},
                },
                status="201 Created",
            )
        if path.startswith("/stream"):
            event_stream_head(connection, "Content-Encoding: gzip")
            send_chunk(connection, corrupt)
            send_chunk(connection, b"")
            return None
        return send_json(connection, {"id": "p1", "status": "succeeded", "output": output_tokens})

    return handler


def test_corrupt_compression_in_a_stream_is_recovered_from_like_a_broken_connection(serve, caplog):
    tokens = ["Hel", "lo", ",\n", "wor", "ld", "!"]
    handler = replicate_with_a_corrupt_stream(tokens)
    server = serve(handler)
    handler.url = server.url
    provider = Replicate(api_key="r8_test", base_url=server.url + "/v1", max_retries=0)
    provider._transport.sleep = lambda seconds: None
    with caplog.at_level("INFO", logger="replicate_qwen_sdk"):
        assert provider.complete("owner/model", "hi") == "".join(tokens)
    assert any("corrupt compressed data" in record.getMessage() for record in caplog.records)


# -- the overall deadline against trickled answers ------------------------------


TRICKLED = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b" " * 1000


def trickler(method, path, body, connection):
    trickle(connection, TRICKLED, every=0.05, until=15)


def trickled_body(method, path, body, connection):
    send_head(connection, headers=["Content-Type: application/json", "Content-Length: 1000"])
    trickle(connection, b" " * 1000, every=0.05, until=15)


def elapsed(call):
    started = time.monotonic()
    with pytest.raises(SDKError) as caught:
        call()
    return time.monotonic() - started, caught.value


@pytest.mark.parametrize("handler", [trickler, trickled_body], ids=["head", "body"])
def test_a_trickled_prediction_create_ends_at_the_overall_deadline(serve, handler):
    server = serve(handler)
    provider = Replicate(
        api_key="r8_test", base_url=server.url + "/v1", timeout=Timeout(read=5, total=1.5), max_retries=0
    )
    seconds, error = elapsed(lambda: provider.complete("owner/model", "hi"))
    # The request was sent: a prediction may be running, and the error says so.
    assert isinstance(error, PredictionMayExistError), error
    assert "no answer within the overall deadline" in str(error)
    assert seconds < 5  # the server trickles for 15 s; a loaded machine may add a second or two


def test_a_trickled_poll_ends_at_the_overall_deadline(serve):
    def handler(method, path, body, connection):
        if method == "POST":
            return send_json(
                connection,
                {"id": "p1", "status": "starting", "urls": {"get": f"{server.url}/v1/predictions/p1"}},
                status="201 Created",
            )
        trickled_body(method, path, body, connection)

    server = serve(handler)
    provider = Replicate(
        api_key="r8_test", base_url=server.url + "/v1", timeout=Timeout(read=5, total=1.5), max_retries=0
    )
    seconds, error = elapsed(lambda: provider.complete("owner/model", "hi"))
    assert isinstance(error, APITimeoutError), error
    assert seconds < 5  # the server trickles for 15 s; a loaded machine may add a second or two


def test_a_trickled_stream_ends_at_the_overall_deadline(serve):
    def handler(method, path, body, connection):
        if method == "POST":
            return send_json(
                connection,
                {
                    "id": "p1",
                    "status": "starting",
                    "urls": {"stream": f"{server.url}/stream", "get": f"{server.url}/v1/predictions/p1"},
                },
                status="201 Created",
            )
        if path == "/stream":
            event_stream_head(connection)
            # A chunk size line that never ends, a byte at a time.
            trickle(connection, b"1" * 1000, every=0.05, until=15)
            return None
        trickled_body(method, path, body, connection)

    server = serve(handler)
    provider = Replicate(
        api_key="r8_test", base_url=server.url + "/v1", timeout=Timeout(read=5, total=1.5), max_retries=0
    )
    seconds, error = elapsed(lambda: provider.complete("owner/model", "hi"))
    assert isinstance(error, APITimeoutError), error
    assert seconds < 5  # the server trickles for 15 s; a loaded machine may add a second or two


def test_a_trickled_gradio_config_ends_at_the_overall_deadline(serve):
    server = serve(trickler)
    space = GradioSpace(server.url, timeout=Timeout(read=5, total=1.5), max_retries=0)
    seconds, error = elapsed(lambda: space.complete(None, "hi"))
    assert isinstance(error, APITimeoutError), error
    assert seconds < 5  # the server trickles for 15 s; a loaded machine may add a second or two


def test_a_trickled_gradio_queue_join_ends_at_the_overall_deadline(serve):
    from replicate_qwen_sdk.testing import GradioEmulator

    with GradioEmulator() as emulator:
        config = Transport(timeout=Timeout(), max_retries=0).request("GET", emulator.url + "/config", action="x").json()

    def handler(method, path, body, connection):
        if path.startswith("/config"):
            return send_json(connection, config)
        trickler(method, path, body, connection)

    server = serve(handler)
    space = GradioSpace(server.url, timeout=Timeout(read=5, total=1.5), max_retries=0)
    seconds, error = elapsed(lambda: space.complete(None, "hi"))
    assert isinstance(error, APITimeoutError), error
    assert any(method == "POST" for method, _ in server.requests)
    assert seconds < 5  # the server trickles for 15 s; a loaded machine may add a second or two


def test_without_an_overall_deadline_a_slow_answer_completes(serve):
    def handler(method, path, body, connection):
        body_out = b'{"ok": true}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body_out)
        trickle(connection, head + body_out, every=0.002)
        return True

    server = serve(handler)
    transport = Transport(timeout=Timeout(connect=2, read=1), max_retries=0)
    response = transport.request("GET", server.url + "/x", action="testing")
    assert transport.json(response, action="testing") == {"ok": True}


# -- the limits are settings of every provider ------------------------------------


def test_max_event_size_is_a_provider_setting_that_a_stream_honours(serve):
    def handler(method, path, body, connection):
        if method == "POST":
            return send_json(
                connection,
                {
                    "id": "p1",
                    "status": "starting",
                    "urls": {"stream": f"{server.url}/stream", "get": f"{server.url}/g"},
                },
                status="201 Created",
            )
        event_stream_head(connection)
        send_chunk(connection, b"event: output\nid: 1\ndata: " + b"z" * 3000 + b"\n\n")
        send_chunk(connection, b"")

    server = serve(handler)
    small = Replicate(api_key="r8_test", base_url=server.url + "/v1", max_event_size=2048, max_retries=0)
    with pytest.raises(ResponseTooLargeError, match="2,048 bytes"):
        small.complete("owner/model", "hi")
    large = Replicate(api_key="r8_test", base_url=server.url + "/v1", max_event_size=4096, max_retries=0)
    with pytest.raises(SDKError):  # no "done" event and nothing to poll: but the event itself came through
        with large.stream("owner/model", "hi") as stream:
            assert next(stream) == "z" * 3000
            stream.read()


@pytest.mark.parametrize("name", ["max_event_size", "max_body_size"])
@pytest.mark.parametrize("value", [0, 100, -1, 1.5, "4MiB", True])
def test_a_size_limit_that_is_not_a_number_of_bytes_is_refused(name, value):
    from replicate_qwen_sdk import Client
    from replicate_qwen_sdk.errors import InvalidArgumentError

    for make in (
        lambda: Replicate(api_key="r8_test", **{name: value}),
        lambda: GradioSpace("http://127.0.0.1:9", **{name: value}),
        lambda: Client(replicate_api_key="r8_test", **{name: value}).providers,
    ):
        with pytest.raises(InvalidArgumentError, match=name) as caught:
            make()
        assert caught.value.argument == name
