"""Server-Sent Events: turn the bytes of a stream into events.

Events are ``sseclient-py``'s :class:`sseclient.Event` objects, with the
field semantics of its parser. The parsing itself is done here, in one pass
over bytes, because the upstream parser

* dispatches a half-received event when the connection ends mid-event (the
  spec says to discard it; passing it on would hand out a truncated token
  whose id then suppresses the full one on resume),
* misses event boundaries written with mixed line endings (``\\n\\r\\n``),
* raises on invalid UTF-8 instead of substituting U+FFFD,
* forgets the last event id between events (the spec keeps it), and
* spends about four times the CPU per event of a plain split loop.

The tests check this parser against ``sseclient.SSEClient`` on every input
both handle correctly.

Framing accepts LF, CRLF and CR line ends, in any mix, split across network
chunks at any byte (a CRLF pair, a UTF-8 character or the leading byte-order
mark included), and each
event is handed on the moment its terminating blank line arrives.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, List, Optional, Tuple

import sseclient

__all__ = ["Event", "EventStream"]

Event = sseclient.Event

_BOM = b"\xef\xbb\xbf"


class EventStream:
    """Iterate the events in an iterable of raw byte chunks.

    Two ways to read the same events:

    * iterate the stream itself for :class:`Event` objects;
    * iterate :meth:`batches` for lists of plain ``(event, id, data)``
      tuples, one list per network chunk: the allocation-light form the
      providers use on their hot path.

    :ivar last_event_id: the spec's "last event ID buffer": the most recent
        ``id:`` field seen, kept across events (send it as ``Last-Event-ID``
        to resume). Each event carries only the id given on that event
        itself.
    :ivar retry: the last valid ``retry:`` field (milliseconds), or ``None``.

    Events without any ``data:`` line are not dispatched, as the spec says.
    """

    __slots__ = ("_chunks", "last_event_id", "retry")

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.last_event_id: Optional[str] = None
        self.retry: Optional[int] = None

    def __iter__(self) -> Iterator[Event]:
        """:class:`Event` objects: the name defaults to ``"message"``, ``id``
        is ``None`` when the event gave none, ``retry`` is the stream's."""
        for batch in self.batches():
            for name, event_id, data in batch:
                # sseclient-py's own stub leaves out Event.__init__ (id, event, data, retry).
                yield Event(id=event_id or None, event=name or "message", data=data, retry=self.retry)  # type: ignore[call-arg]

    def batches(self) -> Iterator[List[Tuple[str, str, str]]]:
        """For each network chunk, the events it completed, as
        ``(event, id, data)`` tuples; ``""`` stands for no event name
        (``"message"``) and for no id."""
        find_simple = _SIMPLE_EVENTS.findall
        find_multi = _MULTILINE_EVENTS.findall
        join_data = _MORE_DATA.sub
        parse = self._parse
        # Framing, inline because this loop runs once per network chunk:
        # cut the bytes into events at blank lines, whatever the line ends.
        pending = b""
        skip_lf = False  # the previous chunk ended with CR; a leading LF pairs with it
        head: Optional[bytes] = b""  # the first bytes, until they show whether a BOM opens the stream
        for chunk in self._chunks:
            if not chunk:
                continue
            if head is not None:
                chunk = head + chunk
                if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                    head = chunk  # a BOM split across reads: wait for the rest
                    continue
                head = None
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM) :]
                    if not chunk:
                        continue
            if skip_lf:
                skip_lf = False
                if chunk[:1] == b"\n":
                    chunk = chunk[1:]
            if b"\r" in chunk:
                skip_lf = chunk.endswith(b"\r")
                chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if pending:
                if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and pending[-1:] == b"\n"):
                    pending += chunk
                    continue
                chunk = pending + chunk
            blocks = chunk.split(b"\n\n")
            pending = blocks.pop()  # no blank line yet: dropped at the end, as the spec says
            if not blocks:
                continue
            # Lines end at LF only (see above), and LF never occurs inside a
            # UTF-8 sequence, so decoding whole events at once is exact.
            text = (blocks[0] if len(blocks) == 1 else b"\n\n".join(blocks)).decode("utf-8", "replace")
            # One C call finds every event of the usual shapes. Each match
            # starts with the blank line before its event, so the regex
            # engine jumps from one to the next instead of trying every
            # position; the text gets one in front of its first event.
            if text.count("data:") == len(blocks):  # one data line each
                events = find_simple("\n\n" + text)
            else:  # some token with a newline, sent as several data lines
                events = [
                    (name, event_id, data + join_data("\n", more) if more else data)
                    for name, event_id, data, more in find_multi("\n\n" + text)
                ]
            if len(events) != len(blocks):
                # Some event has another shape: parse them one by one.
                events = [event for event in map(parse, text.split("\n\n")) if event is not None]
                if events:
                    yield events
                continue
            for _name, event_id, _data in reversed(events):
                if event_id:
                    self.last_event_id = event_id
                    break
            if events:
                yield events

    def _parse(self, text: str) -> Optional[Tuple[str, str, str]]:
        """The general case: any fields, in any order, any number of lines."""
        data: Optional[str] = None
        more_data: Optional[list] = None  # second and later data lines
        name = ""
        event_id = ""
        for line in text.split("\n"):
            if not line or line[0] == ":":  # empty, or a comment
                continue
            field, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if field == "data":
                if data is None:
                    data = value
                elif more_data is None:
                    more_data = [value]
                else:
                    more_data.append(value)
            elif field == "event":
                name = value
            elif field == "id":
                if "\0" not in value:
                    event_id = self.last_event_id = value
            elif field == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = int(value)
            # Any other field is ignored, as the spec says.
        if data is None:
            return None
        if more_data is not None:
            data = "\n".join([data, *more_data])
        return name, event_id, data


#: The shape nearly every event has: comments, then optional ``event:`` and
#: ``id:`` lines, then one ``data:`` line, from a block's start to its end.
#: All events of a chunk are matched in one C call; when the count of matches
#: differs from the count of blocks, some block has another shape and
#: :meth:`EventStream._parse` reads them all (giving the same result for these
#: shapes). An id that is empty or starts with a space never matches here, so
#: ``""`` can stand for "no id".
_SIMPLE_EVENTS = re.compile(
    r"\n\n(?::[^\n]*\n)*(?:event: ?([^\n]*)\n)?(?:id: ?([^ \n\0][^\n\0]*)\n)?data: ?([^\n]*)(?=\n\n|\Z)"
)

#: The same shape with any number of ``data:`` lines (a token holding a
#: newline is sent as several): the first line's value, then the others
#: with their ``\ndata: `` prefixes, which :data:`_MORE_DATA` turns into the
#: newlines they stand for.
_MULTILINE_EVENTS = re.compile(
    r"\n\n(?::[^\n]*\n)*(?:event: ?([^\n]*)\n)?(?:id: ?([^ \n\0][^\n\0]*)\n)?"
    r"data: ?([^\n]*)((?:\ndata: ?[^\n]*)*)(?=\n\n|\Z)"
)
_MORE_DATA = re.compile(r"\ndata: ?")
