"""The SSE parser against the WHATWG rules, on generated streams.

``reference_events`` below is the "interpreting an event stream" algorithm
of the HTML standard written out step by step, as plainly as possible, for
the whole stream at once. Hypothesis generates streams (comments, every
field, ids with NUL, retry values, data with and without a space, LF / CR /
CRLF in any mix, a byte-order mark, invalid UTF-8) and cuts them into
network chunks anywhere; the SDK's parser must find the same events.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st

from replicate_qwen_sdk.sse import EventStream, OutputBatch

Parsed = Tuple[List[Tuple[str, str]], Optional[str], Optional[int]]


def reference_events(stream: bytes) -> Parsed:
    """(events as (type, data), last event ID buffer, retry) per the standard."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: List[Tuple[str, str]] = []
    data, event_type, last_id, retry = "", "", None, None
    position = 0
    while True:
        # A line ends at CRLF, LF or CR; an unterminated last line is never processed.
        ends = [i for i in (text.find("\r", position), text.find("\n", position)) if i >= 0]
        if not ends:
            break
        end = min(ends)
        line = text[position:end]
        position = end + (2 if text.startswith("\r\n", end) else 1)
        if line == "":
            if data == "":
                event_type = ""
                continue
            events.append((event_type or "message", data[:-1] if data.endswith("\n") else data))
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry":
            if value and all("0" <= c <= "9" for c in value):
                retry = int(value)
    return events, last_id, retry


def sdk_events(chunks: List[bytes]) -> Parsed:
    stream = EventStream(iter(chunks))
    events = [(event.event, event.data) for event in stream]
    return events, stream.last_event_id, stream.retry


_VALUES = st.sampled_from(["", " ", "x", " hello", "é ✓", "a:b", "  two", "[0, 1]", "\0", "1\0", "-5", "300"])
_LINES = st.one_of(
    st.tuples(st.sampled_from(["data", "event", "id", "retry", "", "foo", "Data", ":"]), _VALUES).map(
        lambda pair: f"{pair[0]}:{pair[1]}"
    ),
    st.sampled_from(["data", "id", "", ": comment", "retry:1000", "data:  spaced", "id:e7"]),
)
_ENDINGS = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def streams(draw) -> bytes:
    lines = draw(st.lists(st.tuples(_LINES, _ENDINGS), max_size=30))
    text = "".join(line + ending for line, ending in lines)
    raw = text.encode("utf-8")
    if draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw
    if draw(st.integers(0, 9)) == 0 and raw:  # a broken UTF-8 sequence somewhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x9c"])) + raw[at:]
    return raw


def cut(raw: bytes, points: List[int]) -> List[bytes]:
    bounds = sorted({p % (len(raw) + 1) for p in points} | {0, len(raw)})
    return [raw[a:b] for a, b in zip(bounds, bounds[1:])]


@settings(max_examples=400, deadline=None)
@given(streams(), st.lists(st.integers(0, 10_000), max_size=12))
def test_events_match_the_whatwg_rules_however_the_stream_is_cut(raw, points):
    expected_events, expected_id, expected_retry = reference_events(raw)
    events, last_id, retry = sdk_events(cut(raw, points))
    assert events == expected_events
    # A stream that stops inside an event: the standard still reads the
    # complete lines of that event's fields; the SDK drops the whole event
    # (a resume then starts from the last event that arrived whole).
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n\n") or not text.strip("\ufeff\n"):
        assert (last_id, retry) == (expected_id, expected_retry)


@settings(max_examples=200, deadline=None)
@given(streams())
def test_one_byte_at_a_time_changes_nothing(raw):
    assert sdk_events([raw[i : i + 1] for i in range(len(raw))]) == sdk_events([raw])


@st.composite
def output_streams(draw) -> bytes:
    """Mostly Replicate-shaped output events (``event: output``, an id, data
    lines), with now and then an event of another shape among them."""
    events = []
    mixed = draw(st.booleans())
    values = _VALUES if mixed else _VALUES.filter(lambda value: "\0" not in value)
    ids = st.one_of(values, st.integers(0, 10**6).map(str))
    for _ in range(draw(st.integers(0, 24))):
        if mixed and draw(st.integers(0, 3)) == 0:
            lines = [line for line, _ending in draw(st.lists(st.tuples(_LINES, _ENDINGS), max_size=4))]
        else:
            data = draw(st.lists(values, min_size=draw(st.sampled_from([0, 1, 1, 1, 2])) if mixed else 1, max_size=3))
            lines = ["event: output", f"id: {draw(ids)}", *(f"data: {value}" for value in data)]
        events.append("\n".join(lines) + "\n\n")
    return "".join(events).encode("utf-8")


def flattened_output_batches(chunks: List[bytes]):
    stream = EventStream(iter(chunks))
    events = []
    for batch in stream.output_batches():
        if isinstance(batch, OutputBatch):  # its data alone must be the events' data too
            assert batch.datas == [data for _name, _id, data in batch]
        events.extend(batch)
    return events, stream.last_event_id


def flattened_batches(chunks: List[bytes]):
    stream = EventStream(iter(chunks))
    return [event for batch in stream.batches() for event in batch], stream.last_event_id


@settings(max_examples=200, deadline=None)
@given(output_streams(), st.lists(st.integers(0, 10_000), max_size=6))
def test_output_batches_give_the_events_batches_give_and_the_whatwg_rules_agree(raw, points):
    chunks = cut(raw, points)
    columns, last_id = flattened_output_batches(chunks)
    assert (columns, last_id) == flattened_batches(chunks)
    expected_events, expected_id, _retry = reference_events(raw)
    assert [(name or "message", data) for name, _id, data in columns] == expected_events
    assert last_id == expected_id
