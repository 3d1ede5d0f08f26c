"""A chat turned into the values of an app's components, as a browser holds
them, step by step.

A browser sends each step the current values of the step's input
components, and each step's outputs replace those values before the next
step runs (State components stay on the server: they are sent as ``null``).
So a chain such as "save the message and clear the box, then show it in the
chat, then generate" gets exactly what the page would send.
"""

from __future__ import annotations

import re
from typing import Any, Collection, Dict, List, Mapping, Optional, Sequence, Tuple

from ...errors import InvalidArgumentError
from ...messages import Message
from .app import App, ChatFormat, Component, Endpoint, history_value

__all__ = ["STANDARD_PARAMETERS", "ChatValues"]

#: Parameters every OpenAI-style caller may send. An app without an input
#: for one of them gets the call without it (or, with ``strict``, an error).
STANDARD_PARAMETERS = ("max_tokens", "temperature", "top_p", "top_k", "stop")

_TEXT_INPUTS = ("textbox", "multimodaltextbox")

#: Label prefixes (normalised) that a standard parameter also matches.
_LABELS = {
    "max_tokens": ("maxnewtokens", "maxtokens", "maxlength", "maxoutputtokens"),
    "temperature": ("temperature",),
    "top_p": ("topp",),
    "top_k": ("topk",),
    "stop": ("stop",),
}


class ChatValues:
    """The component values of one call of ``steps`` (the last one answers).

    :raises InvalidArgumentError: for a system prompt or history the app
        cannot take, or a parameter no input matches (a standard one, or
        one named in ``optional``, only with ``strict``).
    """

    def __init__(
        self,
        app: App,
        steps: Sequence[Endpoint],
        query: str,
        history: Sequence[Message],
        system_prompt: Optional[str],
        params: Mapping[str, Any],
        *,
        strict: bool = False,
        optional: Collection[str] = (),
    ) -> None:
        target = steps[-1]
        route = target.route
        relayed = {c.id for step in steps[:-1] for c in step.outputs if not c.is_state}
        inputs = _unique(c for step in steps for c in step.inputs)
        self._values: Dict[int, Any] = {}
        #: (fn_index, value) of a step that loads the history into session state first.
        self.seed: Optional[Tuple[int, Any]] = None
        #: How many history entries were sent: the answer comes after them.
        self.history_length = 0
        #: Standard (or ``optional``) parameters left out: the app has no input for them.
        self.ignored: Tuple[str, ...] = ()

        query_box = _query_box(app, steps, inputs)
        if query_box is None:
            raise InvalidArgumentError(f"Endpoint {route} has no text input for the message; choose another.")
        #: The box the message goes in (a Textbox or a MultimodalTextbox).
        self.query_box = query_box
        self._values[query_box.id] = {"text": query, "files": []} if query_box.type == "multimodaltextbox" else query
        system_box = _system_box(target, inputs, query_box, relayed)
        if system_prompt is not None and system_box is not None:
            self._values[system_box.id] = system_prompt

        chats = [c for c in inputs if c.is_chat]
        entries = list(history)
        if system_prompt is not None and system_box is None:
            formats = {app.chat_format_of(c) for c in chats}
            if not chats or not formats <= {ChatFormat.MESSAGES, ChatFormat.PARTS}:
                raise InvalidArgumentError(
                    f"Endpoint {route} has no system prompt input and its chat cannot hold a system message; "
                    "drop the system message or system_prompt=, or choose another endpoint with api_name=."
                )
            # A messages Chatbot can carry it as the first entry.
            entries.insert(0, Message("system", system_prompt))
        for chat in chats:
            value = history_value(app.chat_format_of(chat), entries)
            self._values[chat.id] = value
            self.history_length = len(value)
        if history and not chats:
            self._seed_state(app, target, entries)

        self._take_parameters(
            app, inputs, {query_box.id, getattr(system_box, "id", None)} | relayed, params, strict, route, optional
        )

    def _seed_state(self, app: App, target: Endpoint, entries: List[Message]) -> None:
        for component in target.inputs:
            step = app.sync_step_for(component.id) if component.is_state else None
            if step is not None:
                value = history_value(app.chat_format_of(step.inputs[0]), entries)
                self.seed = (step.fn_index, value)
                self.history_length = len(value)
                return
        raise InvalidArgumentError(
            f"Endpoint {target.route} cannot take earlier messages (it has no chat history input); "
            "send only the last user message."
        )

    def _take_parameters(
        self,
        app: App,
        inputs: Sequence[Component],
        taken: set,
        params: Mapping[str, Any],
        strict: bool,
        route: str,
        optional: Collection[str] = (),
    ) -> None:
        unused = dict(params)
        candidates = [c for c in inputs if c.is_parameter and c.id not in taken]
        for component in candidates:
            key = _match(component.label, unused)
            if key is not None:
                self._values[component.id] = unused.pop(key)
        labels = ", ".join(repr(c.label) for c in candidates if c.label) or "none"
        unknown = sorted(k for k in unused if k not in STANDARD_PARAMETERS and k not in optional)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown parameter(s) {', '.join(unknown)} for endpoint {route}; "
                f"its parameter inputs are labelled: {labels}."
            )
        ignored = tuple(sorted(unused))
        if ignored and strict:
            raise InvalidArgumentError(
                f"Endpoint {route} has no input for {', '.join(ignored)} (strict=True); "
                f"its parameter inputs are labelled: {labels}. Drop them, or pass strict=False to send the call "
                "without them."
            )
        self.ignored = ignored

    def attach_files(self, files: List[Any]) -> None:
        """Put ``files`` (``FileData`` values) beside the message in the
        multimodal message box."""
        value = self._values[self.query_box.id]
        assert isinstance(value, dict), "only a MultimodalTextbox holds files"
        value["files"] = list(files)

    def inputs_for(self, step: Endpoint) -> List[Any]:
        """The ``data`` a browser sends to ``step`` now."""
        values = self._values
        return [None if c.is_state else values.get(c.id, c.props.get("value")) for c in step.inputs]

    def take_outputs(self, step: Endpoint, data: Any) -> None:
        """Let ``step``'s output values replace the components' values."""
        if not isinstance(data, list):
            return
        for component, value in zip(step.outputs, data):
            if component.is_state:
                continue
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" not in value:
                    continue
                value = value["value"]
            self._values[component.id] = value


def _unique(components) -> List[Component]:
    seen: Dict[int, Component] = {}
    for component in components:
        seen.setdefault(component.id, component)
    return list(seen.values())


def _query_box(app: App, steps: Sequence[Endpoint], inputs: Sequence[Component]) -> Optional[Component]:
    """The box the user types into: the one whose submit starts the chain,
    else the first visible text input."""
    trigger = app.components.get(steps[0].trigger_id) if steps[0].trigger_id is not None else None
    if trigger is not None and trigger.type in _TEXT_INPUTS and trigger in inputs:
        return trigger
    texts = [c for c in inputs if c.type in _TEXT_INPUTS]
    visible = [c for c in texts if c.visible]
    found = visible or texts
    return found[0] if found else None


def _system_box(
    target: Endpoint, inputs: Sequence[Component], query_box: Component, relayed: set
) -> Optional[Component]:
    """A text input labelled "system", else a hidden one the answering step
    reads (the Qwen Space keeps its system prompt in one)."""
    boxes = [c for c in inputs if c.type == "textbox" and c.id != query_box.id and c.id not in relayed]
    for component in boxes:
        if "system" in component.label.lower():
            return component
    for component in boxes:
        if not component.visible and component in target.inputs:
            return component
    return None


def _normalize(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


def _match(label: str, params: Mapping[str, Any]) -> Optional[str]:
    """The key of ``params`` that names the input labelled ``label``."""
    normalized = _normalize(label)
    if not normalized:
        return None
    for key in params:
        if _normalize(key) == normalized:
            return key
        if any(normalized.startswith(prefix) for prefix in _LABELS.get(key, ())):
            return key
    return None
