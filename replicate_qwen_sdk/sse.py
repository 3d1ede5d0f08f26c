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
from itertools import repeat
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import sseclient

from .errors import ResponseTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "Event", "EventStream", "OutputBatch", "SeenEvents"]

#: Bytes one event may take by default (4 MiB): a thousand times a long
#: token, far below what would strain memory.
DEFAULT_MAX_EVENT_SIZE = 4 * 1024 * 1024

Event = sseclient.Event

_BOM = b"\xef\xbb\xbf"
#: How every event of a Replicate output stream starts.
_OUTPUT_PREFIX = b"event: output\nid: "
_OUTPUT_PREFIX_TEXT = "\0" + _OUTPUT_PREFIX.decode()
#: Fewer events than this in a chunk are parsed the usual way (the whole-text
#: operations of an OutputBatch cost more than they save on a few events).
_OUTPUT_BATCH_MIN = 8


class OutputBatch:
    """The events of one network chunk when every one is a Replicate
    ``output`` event with a non-empty id: iterates as the ``(event, id,
    data)`` tuples :meth:`EventStream.batches` gives, and also offers the
    data alone (:attr:`datas`), and the ids, which are read from the text
    only when asked for (a consumer that never resumes never needs them)."""

    __slots__ = ("_ids", "_text", "datas")

    def __init__(self, datas: List[str], text: str) -> None:
        self.datas = datas
        self._ids: Optional[List[str]] = None
        self._text = text

    @property
    def ids(self) -> List[str]:
        if self._ids is None:
            self._ids = _OUTPUT_IDS.findall(self._text)
            self._text = ""
        return self._ids

    def __iter__(self) -> Iterator[Tuple[str, str, str]]:
        return zip(repeat("output"), self.ids, self.datas)

    def __len__(self) -> int:
        return len(self.datas)


class SeenEvents(Dict[str, Optional[str]]):
    """The data of every event a consumer handled, by id (``None`` for an
    event that is not output), to tell a replay after a resume from new
    events.

    A plain dict for single events (``seen[event_id] = data``, a C-level
    store), plus batches recorded whole (:meth:`add_batch`) and read into
    the dict only when a lookup needs them: most streams never resume. While
    batches wait, single events go through :meth:`add` to keep their order.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        super().__init__()
        #: Recorded, not yet read into the dict (in order).
        self.pending: List[Tuple[Sequence[str], Sequence[Optional[str]]]] = []

    def add_batch(self, batch: OutputBatch) -> None:
        """Record a batch of output events."""
        self.pending.append((batch, batch.datas))  # type: ignore[arg-type]

    def add(self, event_id: str, data: Optional[str]) -> None:
        """Record one event, after the batches recorded before it."""
        if self.pending:
            self.pending.append(((event_id,), (data,)))
        else:
            self[event_id] = data

    def __contains__(self, event_id: object) -> bool:
        self._settle()
        return super().__contains__(event_id)

    def __getitem__(self, event_id: str) -> Optional[str]:
        self._settle()
        return super().__getitem__(event_id)

    def _settle(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, []
            for ids, datas in pending:
                self.update(zip(ids.ids if isinstance(ids, OutputBatch) else ids, datas))


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
    :param max_event_size: the most bytes one event may take on the wire,
        its lines and comments included; an event (or a line) that grows
        past it raises :class:`~replicate_qwen_sdk.errors.ResponseTooLargeError`
        instead of being buffered without end.

    Events without any ``data:`` line are not dispatched, as the spec says.
    """

    __slots__ = ("_chunks", "last_event_id", "max_event_size", "retry")

    def __init__(self, chunks: Iterable[bytes], *, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._chunks = chunks
        self.max_event_size = max_event_size
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
        return self._batches(outputs=False)  # type: ignore[return-value]

    def output_batches(self) -> Iterator[Union[List[Tuple[str, str, str]], OutputBatch]]:
        """What :meth:`batches` gives, except that a chunk of many events
        that are all Replicate output events with ids comes as an
        :class:`OutputBatch`, read with whole-text operations and no Python
        step per event: a consumer can hand on its :attr:`~OutputBatch.datas`
        as they are."""
        return self._batches(outputs=True)

    def _batches(self, *, outputs: bool) -> Iterator[Union[List[Tuple[str, str, str]], OutputBatch]]:
        find_simple = _SIMPLE_EVENTS.findall
        events_of = self._events
        outputs_of = self._output_batch
        # Framing, inline because this loop runs once per network chunk:
        # cut the bytes into events at blank lines, whatever the line ends.
        limit = self.max_event_size
        held: List[bytes] = []  # the start of an unfinished event, in pieces (joined once it ends)
        held_size = 0
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
                    if not chunk:
                        continue
            if b"\r" in chunk:
                skip_lf = chunk.endswith(b"\r")
                chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                if b"\n\n" not in chunk and not (chunk[:1] == b"\n" and held[-1][-1:] == b"\n"):
                    held.append(chunk)
                    held_size += len(chunk)
                    if held_size > limit:
                        raise _too_large(limit)
                    continue
                held.append(chunk)
                chunk = b"".join(held)
                held = []
            end = chunk.rfind(b"\n\n")
            # After the last blank line: the start of the next event (at the
            # end of the stream it is dropped, as the spec says).
            rest = chunk[end + 2 :] if end >= 0 else chunk
            if len(chunk) > limit and max(map(len, chunk.split(b"\n\n"))) > limit:
                raise _too_large(limit)
            if rest:
                held = [rest]
                held_size = len(rest)
            if end < 0:
                continue
            complete = chunk[:end]
            # As many events as bytes.split would cut (blank lines counted
            # left to right, without overlap).
            count = complete.count(b"\n\n") + 1
            if count == 1:
                # One event (a server that flushes each token): the usual
                # shape is one C call, inline because this runs per token.
                text = complete.decode("utf-8", "replace")
                if text.count("data:") == 1:
                    events = find_simple("\n\n" + text)
                    if events:
                        if events[0][1]:
                            self.last_event_id = events[0][1]
                        yield events
                        continue
            elif outputs and count >= _OUTPUT_BATCH_MIN:
                batch = outputs_of(complete, count)
                if batch is not None:
                    yield batch
                    continue
            events = events_of(complete, count)
            if events:
                yield events

    def _events(self, complete: bytes, count: int) -> List[Tuple[str, str, str]]:
        """The ``count`` events in ``complete``, as ``(event, id, data)`` tuples."""
        # Lines end at LF only (see _batches), and LF never occurs inside a
        # UTF-8 sequence, so decoding whole events at once is exact.
        text = complete.decode("utf-8", "replace")
        # One C call finds every event of the usual shapes. Each match
        # starts with the blank line before its event, so the regex
        # engine jumps from one to the next instead of trying every
        # position; the text gets one in front of its first event.
        if text.count("data:") == count:  # one data line each
            events = _SIMPLE_EVENTS.findall("\n\n" + text)
        else:  # some token with a newline, sent as several data lines
            join_data = _MORE_DATA.sub
            events = [
                (name, event_id, data + join_data("\n", more) if more else data)
                for name, event_id, data, more in _MULTILINE_EVENTS.findall("\n\n" + text)
            ]
        if len(events) != count:
            # Some event has another shape: parse them one by one.
            return [event for event in map(self._parse, text.split("\n\n")) if event is not None]
        for _name, event_id, _data in reversed(events):
            if event_id:
                self.last_event_id = event_id
                break
        return events

    def _output_batch(self, complete: bytes, count: int) -> Optional[OutputBatch]:
        """The events in ``complete`` as an :class:`OutputBatch` when every
        one is a Replicate output event with an id (``event: output``,
        ``id: ...``, then only ``data:`` lines); else ``None``."""
        if not complete.startswith(_OUTPUT_PREFIX) or b"\0" in complete:
            return None
        # NUL (which no such event holds: it would void the id) separates
        # the events from here on, so that a data line may be empty.
        text = "\0" + complete.replace(b"\n\n", b"\0").decode("utf-8", "replace")
        # Each event opens with the prefix, has one line end after
        # "event: output", and every other one starts a "data: " line.
        if text.count(_OUTPUT_PREFIX_TEXT) != count or text.count("\n") != count + text.count("\ndata: "):
            return None
        # The data lines of each event joined by newlines, as the spec joins them.
        text = text.replace("\ndata: ", "\n")
        datas = _OUTPUT_DATAS.findall(text)
        if len(datas) != count:  # an empty id, or an event without data: the general parser decides
            return None
        last = text.rindex(_OUTPUT_PREFIX_TEXT) + len(_OUTPUT_PREFIX_TEXT)
        self.last_event_id = text[last : text.index("\n", last)]
        return OutputBatch(datas, text)

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


def _too_large(limit: int) -> ResponseTooLargeError:
    return ResponseTooLargeError(
        f"The server sent an event larger than {limit:,} bytes (max_event_size), or a line that never ends; "
        "it was not kept. If the model really sends such events, raise max_event_size."
    )


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

#: In the text _output_columns prepares (events after NUL, data lines
#: joined): the data of each event with a non-empty id, and the ids.
_OUTPUT_DATAS = re.compile(r"\0event: output\nid: [^\n]+\n([^\0]*)")
_OUTPUT_IDS = re.compile(r"\0event: output\nid: ([^\n]*)")
