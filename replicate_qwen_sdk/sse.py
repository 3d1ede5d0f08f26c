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
chunks at any byte (a CRLF pair or a UTF-8 character included), and each
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
    * iterate :meth:`fields` for plain ``(event, data, id, retry)`` tuples,
      the allocation-light form the providers use on their hot path.

    :ivar last_event_id: the spec's "last event ID buffer": the most recent
        ``id:`` field seen, kept across events (send it as ``Last-Event-ID``
        to resume). Each event carries only the id given on that event
        itself, or ``None``.

    Events without any ``data:`` line are not dispatched, as the spec says;
    the event name defaults to ``"message"``; ``retry`` is an ``int`` (in
    milliseconds) when that event set it, else ``None``.
    """

    __slots__ = ("_chunks", "last_event_id")

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.last_event_id: Optional[str] = None

    def __iter__(self) -> Iterator[Event]:
        for name, data, event_id, retry in self.fields():
            yield Event(event_id, name, data, retry)

    def fields(self) -> Iterator[Tuple[str, str, Optional[str], Optional[int]]]:
        """Yield ``(event, data, id, retry)`` for each event."""
        match_simple = _SIMPLE_EVENT.match
        parse = self._parse
        for blocks in _block_batches(self._chunks):
            for block in blocks:
                # Lines end at LF only (see _block_batches), and LF never
                # occurs inside a UTF-8 sequence, so decoding a whole block
                # at once is exact.
                text = block.decode("utf-8", "replace")
                simple = match_simple(text)
                if simple is not None:
                    name, event_id, data = simple.groups()
                    if event_id is not None:
                        self.last_event_id = event_id
                    yield name or "message", data, event_id, None
                else:
                    parsed = parse(text)
                    if parsed is not None:
                        yield parsed

    def _parse(self, text: str) -> Optional[Tuple[str, str, Optional[str], Optional[int]]]:
        """The general case: any fields, in any order, any number of lines."""
        data: Optional[str] = None
        more_data: Optional[list] = None  # second and later data lines
        name = "message"
        event_id: Optional[str] = None
        retry: Optional[int] = None
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
                name = value or "message"
            elif field == "id":
                if "\0" not in value:
                    event_id = self.last_event_id = value
            elif field == "retry":
                if value.isascii() and value.isdigit():
                    retry = int(value)
            # Any other field is ignored, as the spec says.
        if data is None:
            return None
        if more_data is not None:
            data = "\n".join([data, *more_data])
        return name, data, event_id, retry


#: The shape nearly every event has: comments, then optional ``event:`` and
#: ``id:`` lines, then one ``data:`` line. Matched in one C call; anything
#: else goes through :meth:`EventStream._parse`, which gives the same result
#: for these shapes.
_SIMPLE_EVENT = re.compile(r"(?::[^\n]*\n)*(?:event: ?([^\n]*)\n)?(?:id: ?([^\n\0]*)\n)?data: ?([^\n]*)\Z")


def _block_batches(chunks: Iterable[bytes]) -> Iterator[List[bytes]]:
    """For each network chunk, yield the events it completes: the bytes of
    each, lines joined by ``\\n`` (one yield per chunk, not per event, to
    keep the per-event cost low).

    Bytes left over when the chunks run out never got their blank line: an
    incomplete event, dropped as the spec says.
    """
    pending = b""
    skip_lf = False  # the previous chunk ended with CR; a leading LF pairs with it
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        if first:
            first = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
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
        pending = blocks.pop()
        if blocks:
            yield blocks
