"""The SSE parser: spec cases, every split point, agreement with sseclient-py, real sockets."""

import socket
import threading

import pytest
import sseclient

from replicate_qwen_sdk.sse import Event, EventStream


def parse(chunks):
    """(event, data, id) of every event parsed from ``chunks``."""
    return [(e.event, e.data, e.id) for e in EventStream(chunks)]


def every_split(payload: bytes):
    """The payload cut in two at every byte, and cut into single bytes."""
    yield [payload]
    yield [payload[i : i + 1] for i in range(len(payload))]
    for cut in range(1, len(payload)):
        yield [payload[:cut], payload[cut:]]


REPLICATE_LIKE = (
    b": hi\n"
    b"event: output\nid: 1:0\ndata: Hello\n\n"
    b"event: output\nid: 1:1\ndata:  world\n\n"  # a leading space in the text itself
    b"event: output\nid: 1:2\ndata:\ndata:\n\n"  # a chunk that is exactly "\n"
    b"event: output\nid: 1:3\ndata: line one\ndata: line two\n\n"
    b"event: output\nid: 1:4\ndata: caf\xc3\xa9 \xe2\x9c\x93\n\n"
    b"event: output\nid: 1:5\ndata: https://example.com/a?b=c\n\n"
    b'event: output\nid: 1:6\ndata: {"json": [1, 2]}\n\n'
    b"event: done\nid: 1:7\ndata: {}\n\n"
)
EXPECTED = [
    ("output", "Hello", "1:0"),
    ("output", " world", "1:1"),
    ("output", "\n", "1:2"),
    ("output", "line one\nline two", "1:3"),
    ("output", "café ✓", "1:4"),
    ("output", "https://example.com/a?b=c", "1:5"),
    ("output", '{"json": [1, 2]}', "1:6"),
    ("done", "{}", "1:7"),
]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_every_split_point_gives_the_same_events(eol):
    payload = REPLICATE_LIKE.replace(b"\n", eol)
    for chunks in every_split(payload):
        assert parse(chunks) == EXPECTED


def test_mixed_line_endings_and_a_crlf_split_between_cr_and_lf():
    payload = b"data: a\r\n\ndata: b\n\r\ndata: c\r\r"
    for chunks in every_split(payload):
        assert [data for _, data, _ in parse(chunks)] == ["a", "b", "c"]


def test_utf8_character_split_across_chunks_is_whole():
    payload = "data: 日本語 ✓ é\n\n".encode()
    for cut in range(len(payload)):
        assert parse([payload[:cut], payload[cut:]]) == [("message", "日本語 ✓ é", None)]


def test_invalid_utf8_becomes_replacement_character_instead_of_failing():
    assert parse([b"data: a\xffb\n\n"]) == [("message", "a\ufffdb", None)]


def test_comments_and_keepalives_are_ignored():
    payload = b": keep-alive\n\n:\n: ping\ndata: x\n: inside\n\n: bye\n\n"
    assert parse([payload]) == [("message", "x", None)]


def test_fields_follow_the_spec():
    payload = (
        b"data\n\n"  # a field name without colon: empty value
        b"data:no-space\n\n"
        b"data:  two spaces\n\n"  # only one space is stripped
        b"event:\ndata: default name\n\n"
        b"unknown: field\ndata: unknown fields ignored\n\n"
        b"id: 7\n\n"  # no data: not dispatched, but the id is kept
    )
    stream = EventStream([payload])
    assert [(e.event, e.data) for e in stream] == [
        ("message", ""),
        ("message", "no-space"),
        ("message", " two spaces"),
        ("message", "default name"),
        ("message", "unknown fields ignored"),
    ]
    assert stream.last_event_id == "7"


def test_last_event_id_persists_and_ids_with_nul_are_ignored():
    stream = EventStream([b"id: 1\ndata: a\n\ndata: b\n\nid: x\x00y\ndata: c\n\n"])
    events = list(stream)
    assert [e.id for e in events] == ["1", None, None]
    assert stream.last_event_id == "1"


def test_retry_field_is_an_integer_and_junk_retry_is_ignored():
    stream = EventStream([b"data: a\n\nretry: 3000\ndata: b\n\nretry: soon\ndata: c\n\nretry: \xc2\xb2\ndata: d\n\n"])
    events = list(stream)
    assert [e.retry for e in events] == [3000] * 4  # one chunk: all parsed before the first is handed on
    assert stream.retry == 3000


def test_incomplete_event_at_end_of_stream_is_dropped():
    assert parse([b"data: complete\n\ndata: half of an ev"]) == [("message", "complete", None)]
    assert parse([b"event: output\nid: 9\ndata: truncated\n"]) == []


def test_byte_order_mark_at_start_is_skipped():
    assert parse([b"\xef\xbb\xbfdata: x\n\n"]) == [("message", "x", None)]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_byte_order_mark_split_across_the_first_reads_is_stripped(cut):
    payload = b"\xef\xbb\xbfdata: first\n\ndata: second\n\n"
    for chunks in ([payload[:cut], payload[cut:]], [b"\xef", b"\xbb", b"\xbf", payload[3:]]):
        assert parse(chunks) == [("message", "first", None), ("message", "second", None)]


def test_bytes_that_only_begin_like_a_byte_order_mark_are_kept():
    assert parse([b"\xef", b"data: x\n\n"]) == []  # an invalid first line: the field name is not "data"
    assert parse([b"\xef\xbb", b"\xbf"]) == []  # a bare BOM, then the end
    assert parse([b"da", b"ta: ok\n\n"]) == [("message", "ok", None)]


def test_events_are_sseclient_events_and_batches_give_tuples():
    payload = b"event: output\nid: 4\nretry: 10\ndata: a\ndata: b\n\n"
    (event,) = list(EventStream([payload]))
    assert isinstance(event, sseclient.Event)
    assert (event.event, event.data, event.id, event.retry) == ("output", "a\nb", "4", 10)
    simple = b"event: output\nid: 5\ndata: x\n\ndata: y\n\n"
    assert list(EventStream([simple, b"id:\ndata: z\n\n"]).batches()) == [
        [("output", "5", "x"), ("", "", "y")],
        [("", "", "z")],
    ]


def test_large_multiline_event_is_joined_exactly():
    lines = [f"line {i}" for i in range(5000)]
    payload = b"".join(b"data: " + line.encode() + b"\n" for line in lines) + b"\n"
    chunks = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
    assert parse(chunks) == [("message", "\n".join(lines), None)]


@pytest.mark.parametrize(
    "payload",
    [
        REPLICATE_LIKE,
        REPLICATE_LIKE.replace(b"\n", b"\r\n"),
        b"event: a\ndata: 1\n\nevent: b\nid: z\ndata: 2\ndata: 3\n\n: c\n\ndata:\n\n",
        b"data: x\n\n\n\ndata: y\n\n",
    ],
)
def test_agrees_with_sseclient_on_inputs_sseclient_handles(payload):
    class Source(list):
        def close(self):
            pass

    theirs = [(e.event, e.data, e.id) for e in sseclient.SSEClient(Source([payload])).events()]
    assert parse([payload]) == theirs


# -- a real socket: each event reaches the caller while the server waits ------


def test_each_event_reaches_the_caller_before_the_next_is_sent():
    """The server sends one event, then waits until the client has it before
    sending the next: a parser that buffered would deadlock (and fail)."""
    received = []
    acknowledged = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve():
        connection, _ = listener.accept()
        with connection:
            for index in range(5):
                acknowledged.clear()
                connection.sendall(b"event: output\r\nid: %d\r\ndata: token %d\r\n\r\n" % (index, index))
                if not acknowledged.wait(5):
                    return
        listener.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = socket.create_connection(("127.0.0.1", port))
    client.settimeout(5)

    def chunks():
        while True:
            data = client.recv(65536)
            if not data:
                return
            yield data

    for event in EventStream(chunks()):
        received.append(event.data)
        acknowledged.set()
    client.close()
    server.join(5)
    assert received == [f"token {i}" for i in range(5)]


def test_event_type_is_sseclient_event():
    assert Event is sseclient.Event


def test_the_one_pass_fast_path_agrees_with_the_general_parser():
    """Random mixes of simple and unusual events, split at random points:
    whatever path each chunk takes, the events are those of the general,
    line-by-line parser."""
    import random

    generator = random.Random(20261122)
    pieces = [
        "event: output\n",
        "event:\n",
        "event:  spaced\n",
        "id: 7\n",
        "id:\n",
        "id:  sp\n",
        "id:x\n",
        ": comment\n",
        "retry: 5\n",
        "data: text\n",
        "data:\n",
        "data:  lead\n",
        "data: [0, 1]\n",
    ]
    for _ in range(300):
        blocks = []
        for _ in range(generator.randint(1, 8)):
            lines = [generator.choice(pieces) for _ in range(generator.randint(0, 4))]
            lines.append(generator.choice(["data: end\n", "data:\n", 'data: {"a": 1}\n']))
            blocks.append("".join(lines))
        payload = "\n".join(blocks).encode() + b"\n"
        reference = EventStream([])
        expected = [event for event in map(reference._parse, payload.decode()[:-2].split("\n\n")) if event]
        cuts = sorted(generator.sample(range(1, len(payload)), min(3, len(payload) - 1)))
        chunks = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
        stream = EventStream(chunks)
        got = [event for batch in stream.batches() for event in batch]
        assert got == expected, payload
        assert stream.last_event_id == reference.last_event_id
