"""What an emulated model answers, and how it misbehaves (shared by the emulators)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

__all__ = ["Script"]


@dataclass
class Script:
    """What one prediction (or Gradio event) outputs, and how it misbehaves.

    Fields marked (Replicate) or (Gradio) apply to that emulator only.

    :ivar tokens: the output chunks, one event (or one update) each.
    :ivar delay: seconds between two tokens; ``first_delay`` before the first.
    :ivar drop_after: for the n-th stream connection, cut it after this many
        output events in total have been sent (a list, one entry per
        connection; later connections are not cut). Gradio: only the first
        entry counts (an event cannot be resumed).
    :ivar cut_mid_event: cut in the middle of the next event's bytes instead
        of between two events.
    :ivar end_without_done: (Replicate) the first N connections end cleanly after the
        last token without sending ``done``.
    :ivar error_after: after this many tokens the prediction fails with
        ``error_detail`` (an ``error`` event, then ``done``).
    :ivar silence_after: before this token, the stream (and the prediction)
        stalls for ``silence`` seconds, once.
    :ivar resumable: (Replicate) False makes reconnecting with ``Last-Event-ID`` fail
        (HTTP 404), so a client has to poll.
    :ivar replay_on_resume: (Replicate) ignore ``Last-Event-ID`` and replay from the start.
    :ivar rewind_on_resume: (Replicate) answer ``Last-Event-ID`` by restarting this
        many events early, replaying events the client already has.
    :ivar stream_unavailable: (Replicate) the stream URL answers every request with
        this status instead of events: 200 with an HTML page (as a login page
        or captive portal would), or an error such as 404 or 410.
    :ivar output_lag: (Replicate) while the prediction runs, ``GET`` reports this
        many output tokens fewer than exist (``output: null`` when that leaves
        none), as the real API's ``output`` can trail the stream.
    :ivar data_removed: (Replicate) once the prediction is finished, ``GET``
        reports ``data_removed: true`` and ``output: null``, as the API does for
        predictions whose data has been deleted.
    :ivar line_ending: (Replicate) ``"\\n"``, ``"\\r\\n"`` or ``"\\r"``.
    :ivar keepalive: (Replicate) send a ``: keep-alive`` comment before every event.
    :ivar batch_bytes: (Replicate) when tokens are ready at once, coalesce up to this many
        bytes of events into one write (1 = one write per event).
    """

    tokens: Sequence[str]
    delay: float = 0.0
    first_delay: float = 0.0
    drop_after: Sequence[int] = ()
    cut_mid_event: bool = False
    end_without_done: int = 0
    error_after: Optional[int] = None
    error_detail: str = "CUDA out of memory"
    silence_after: Optional[int] = None
    silence: float = 0.0
    resumable: bool = True
    replay_on_resume: bool = False
    rewind_on_resume: int = 0
    stream_unavailable: Optional[int] = None
    output_lag: int = 0
    data_removed: bool = False
    line_ending: str = "\n"
    keepalive: bool = False
    batch_bytes: int = 16384
