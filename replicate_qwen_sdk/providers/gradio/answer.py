"""Follow an endpoint's output values as the queue updates them, and turn
them into the new text of the answer (deltas).

The first update of an event carries full values; later ones (protocols
``sse_v2`` and up) carry per-output edit lists ``[action, path, value]``
that are applied in order, as Gradio's own clients do. The common case, an
``append`` to the very string that holds the answer, is a delta already: it
is handed on without touching the rest of the values, and the string is
only joined up when some other edit needs it. So each update costs time in
proportion to its own size, not to the length of the answer.

What the values show is the app's rendering of the answer (see
:mod:`.rendering`): text that the rendering may still change is held back
until it is final, so what is handed on is never taken back. If the app
rewrites text already handed on in a way no known rendering explains, the
tracker stops handing text on (``diverged``); the final value then says
what the answer is.

Gradio's own ``diff`` mis-numbers deletes when a list loses more than one
item (nested lists included): its clients then rebuild a wrong value, or
fail. An edit list with two deletes or more, or one that does not apply, is
therefore not trusted: the tracker stops following the values and waits for
the next full value (``process_completed`` always carries one), so the text
arrives late rather than wrong.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional, Tuple

from ...errors import ResponseError
from .rendering import Rendering, Verbatim

__all__ = ["AnswerTracker"]

logger = logging.getLogger("replicate_qwen_sdk")

Path = Tuple[Any, ...]


class AnswerTracker:
    """The answer text inside one endpoint's output values.

    :param output_index: which output holds the answer.
    :param kind: ``"chat"`` (a Chatbot: the answer is the last assistant
        message after ``history_length`` entries) or ``"text"`` (the output is
        the answer string).
    :param delivered: the consumer's record of chunks already yielded.
    :param rendering: what the output component does to the text.
    """

    def __init__(
        self,
        output_index: int,
        kind: str,
        history_length: int,
        delivered: List[str],
        rendering: Optional[Rendering] = None,
    ) -> None:
        self._index = output_index
        self.kind = kind
        self._history_length = history_length
        self._delivered = delivered
        self._rendering = rendering or Verbatim()
        #: Text shown beyond what was handed on, not yet final.
        self._held: List[str] = []
        #: True once the app rewrote text already handed on.
        self.diverged = False
        self._values: Optional[List[Any]] = None
        #: False after an edit list that could not be trusted, until the next full value.
        self.in_sync = False
        #: Path of the string holding the end of the answer, if it exists.
        self._answer_path: Optional[Path] = None
        #: Appends to the answer string not yet written into ``_values``.
        self._pending: List[str] = []

    # -- updates ---------------------------------------------------------------

    def full(self, values: Any) -> str:
        """A complete set of output values; returns the new text."""
        if not isinstance(values, list):
            raise ResponseError(f"The app sent output data that is not a list: {type(values).__name__}.")
        self._values = values
        self._pending = []
        self.in_sync = True
        return self._relocate()

    def diff(self, edits_per_output: Any) -> str:
        """Edit lists, one per output (``[]`` = unchanged); returns the new text."""
        if self._values is None:
            raise ResponseError("The app sent a diff before any full value; the stream is out of order.")
        if not isinstance(edits_per_output, list) or len(edits_per_output) != len(self._values):
            raise ResponseError("The app sent a diff that does not match its outputs.")
        if not self.in_sync:
            return ""
        if not all(_trustworthy(edits) for edits in edits_per_output):
            return self._lose_track("an edit list with several deletes, which Gradio numbers wrongly")
        answer_path = self._answer_path
        fast: List[str] = []
        structural = False
        try:
            for output, edits in enumerate(edits_per_output):
                for action, path, value in edits:
                    full_path = (output, *path)
                    if action == "append" and full_path == answer_path and not structural and type(value) is str:
                        self._pending.append(value)
                        fast.append(value)
                    else:
                        self._apply(full_path, action, value)
                        structural = True
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            return self._lose_track(f"a diff that does not apply to its outputs ({exc!r})")
        if structural:
            return self._relocate()
        return self._release(fast)

    # -- internals -------------------------------------------------------------

    def _lose_track(self, reason: str) -> str:
        logger.info("the app sent %s; waiting for its next full value", reason)
        self.in_sync = False
        self._pending = []
        return ""

    def _apply(self, path: Path, action: str, value: Any) -> None:
        self._flush_if_touched(path)
        if not path:
            raise ResponseError("The app sent an edit of the whole output list.")
        target: Any = self._values
        for key in path[:-1]:
            target = target[key]
        last = path[-1]
        if action == "replace":
            target[last] = value
        elif action == "append":
            target[last] = target[last] + value
        elif action == "add":
            if isinstance(target, list):
                target.insert(int(last), value)
            else:
                target[last] = value
        elif action == "delete":
            del target[int(last) if isinstance(target, list) else last]
        else:
            raise ResponseError(f"The app sent an unknown edit action {action!r}.")

    def _flush_if_touched(self, path: Path) -> None:
        """Write pending appends before an edit that may read or move them."""
        answer = self._answer_path
        if self._pending and answer is not None and (answer[: len(path)] == path or path[: len(answer)] == answer):
            self._flush()

    def _flush(self) -> None:
        if self._pending and self._answer_path is not None:
            target: Any = self._values
            for key in self._answer_path[:-1]:
                target = target[key]
            last = self._answer_path[-1]
            target[last] = target[last] + "".join(self._pending)
        self._pending = []

    def _relocate(self) -> str:
        """Find the answer again after a structural change; return what is
        newly final beyond the delivered chunks."""
        self._flush()
        text, self._answer_path = self._locate()
        if self.diverged:
            self._answer_path = None
            return ""
        delivered = "".join(self._delivered)
        if text.startswith(delivered):
            self._held = [text[len(delivered) :]]
            return self._release(())
        # The app rewrote text already handed on, and no known rendering
        # explains it: nothing can be taken back, so stop handing text on
        # (the final value decides), and leave the fast path.
        logger.debug("the answer no longer extends the text streamed so far; holding back")
        self.diverged = True
        self._held = []
        self._answer_path = None
        return ""

    def _release(self, appended: Any) -> str:
        """Add ``appended`` pieces to the held text; return the part of it
        that is now final."""
        rendering = self._rendering
        held = self._held
        held.extend(appended)
        if rendering.closed or not held:
            return ""
        text = held[0] if len(held) == 1 else "".join(held)
        settled = rendering.settled(text, at_start=not self._delivered)
        if settled == len(text):
            self._held = []
            return text
        self._held = [text[settled:]]
        return text[:settled]

    def text(self) -> str:
        """The answer as the values hold it now."""
        self._flush()
        return self._locate()[0]

    def _locate(self) -> Tuple[str, Optional[Path]]:
        value = self._values[self._index] if self._values and self._index < len(self._values) else None
        base: Path = (self._index,)
        if self.kind == "text":
            return (value, base) if isinstance(value, str) else ("" if value is None else str(value), None)
        if not isinstance(value, list) or len(value) <= self._history_length:
            return "", None
        position = len(value) - 1
        last = value[position]
        if isinstance(last, list):  # pairs: [user, assistant]
            reply = last[1] if len(last) > 1 else None
            if isinstance(reply, str):
                return reply, (*base, position, 1)
            return _text_entries(reply, (*base, position, 1))
        if not isinstance(last, dict) or last.get("role") != "assistant":
            return "", None
        content = last.get("content")
        if isinstance(content, str):
            return content, (*base, position, "content")
        if isinstance(content, list):
            texts: List[Tuple[int, str]] = [
                (i, part["text"])
                for i, part in enumerate(content)
                if isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)
            ]
            if texts:
                return "".join(text for _, text in texts), (*base, position, "content", texts[-1][0], "text")
        return "", None


def _text_entries(reply: Any, path: Path) -> Tuple[str, Optional[Path]]:
    """A custom chatbot's reply: ``{"text": ...}``, or a list of them."""
    if isinstance(reply, dict):
        text = reply.get("text")
        return (text, (*path, "text")) if isinstance(text, str) else ("", None)
    if isinstance(reply, list):
        texts = [(i, m["text"]) for i, m in enumerate(reply) if isinstance(m, dict) and isinstance(m.get("text"), str)]
        if texts:
            return "".join(text for _, text in texts), (*path, texts[-1][0], "text")
    return "", None


def _trustworthy(edits: Any) -> bool:
    """True unless the edit list has two deletes or more (see the module docs)."""
    if not isinstance(edits, list):
        raise ResponseError("The app sent a diff that is not a list of edits.")
    return sum(1 for edit in edits if isinstance(edit, list) and edit and edit[0] == "delete") < 2
