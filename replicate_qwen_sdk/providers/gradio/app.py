"""What a Gradio app's ``/config`` says: its protocol, routes and endpoints,
and how to turn a chat into an endpoint's inputs."""

from __future__ import annotations

import re
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ...errors import ModelNotFoundError, ResponseError
from ...messages import Message

__all__ = ["App", "ChatFormat", "Endpoint", "Inputs", "parse_config"]

#: Queue protocols spoken here: a websocket per event (Gradio 3); join
#: with POST and read every event of the session on one SSE stream (4.9+),
#: diffs from 4.17 on.
SUPPORTED_PROTOCOLS = ("ws", "sse_v1", "sse_v2", "sse_v2.1", "sse_v3")
#: What the README promises, for messages.
SUPPORTED_VERSIONS = "Gradio 3.x (websocket queue) and 4.9 to 6.x"
DIFF_PROTOCOLS = ("sse_v2", "sse_v2.1", "sse_v3")

_TEXT_INPUTS = ("textbox", "multimodaltextbox")
_TEXT_OUTPUTS = ("textbox", "json", "markdown", "html", "code")
_PARAMETER_INPUTS = (
    "slider",
    "number",
    "dropdown",
    "radio",
    "checkbox",
    "checkboxgroup",
    "textbox",
    "colorpicker",
)


class ChatFormat:
    """How a Chatbot component writes a conversation."""

    TUPLES = "tuples"  # [[user, assistant], ...]            Gradio <= 5 default
    MESSAGES = "messages"  # [{"role", "content": str}, ...]   Gradio 4/5, type="messages"
    PARTS = "parts"  # [{"role", "content": [{"type": "text", "text"}]}]   Gradio 6
    PAIRS_OF_DICTS = "pairs of dicts"  # [[{"text"}, {"text"}], ...]   custom chatbots (modelscope_studio)


class Component(NamedTuple):
    id: int
    type: str
    props: Mapping[str, Any]

    @property
    def label(self) -> str:
        label = self.props.get("label")
        return label if isinstance(label, str) else ""

    @property
    def visible(self) -> bool:
        return self.props.get("visible", True) is not False

    @property
    def is_chat(self) -> bool:
        """Gradio's Chatbot or a custom one (``modelscopechatbot``, ...)."""
        return self.type.endswith("chatbot")

    @property
    def is_state(self) -> bool:
        return self.type == "state"

    @property
    def is_parameter(self) -> bool:
        """An input a caller sets by keyword (a slider, a dropdown, ...)."""
        return self.type in _PARAMETER_INPUTS


class Endpoint(NamedTuple):
    """One event listener (a "dependency") of the app."""

    fn_index: int
    api_name: Optional[str]
    trigger_id: Optional[int]
    inputs: Tuple[Component, ...]
    outputs: Tuple[Component, ...]
    public: bool
    queued: bool
    #: The step this one runs after (``.then()`` / ``.success()``), if any.
    trigger_after: Optional[int] = None
    #: The event that starts it ("submit", "click", "then", ...).
    event: Optional[str] = None
    #: False for a step that runs only in the browser (JavaScript).
    backend: bool = True

    @property
    def route(self) -> str:
        return f"/{self.api_name}" if self.api_name else f"fn_index {self.fn_index}"


class Inputs(NamedTuple):
    """An endpoint call's ``data``, and what to tell the app beforehand."""

    data: List[Any]
    #: (fn_index, value) of a step that loads the history into the session's
    #: state before the call, or ``None``.
    seed: Optional[Tuple[int, Any]] = None
    #: How many history entries (messages or pairs) were sent: the answer
    #: comes after them.
    history_length: int = 0


class App(NamedTuple):
    """A Gradio app as its ``/config`` describes it."""

    version: str
    protocol: str
    api_prefix: str
    endpoints: Tuple[Endpoint, ...]
    chat_format: str
    components: Mapping[int, Component]
    #: Steps that copy a Chatbot's value into session state (see _is_chat_state_sync).
    sync_steps: Tuple[Endpoint, ...] = ()
    #: True when the app has a Hugging Face login button.
    needs_login: bool = False
    #: The largest file (bytes) the app takes, when it sets a limit.
    max_file_size: Optional[int] = None

    @property
    def major(self) -> int:
        """The Gradio major version (0 when unknown)."""
        return _major(self.version)

    @property
    def sends_diffs(self) -> bool:
        return self.protocol in DIFF_PROTOCOLS

    def public_names(self) -> List[str]:
        return [f"/{e.api_name}" for e in self.endpoints if e.public and e.api_name]

    def _listing(self) -> str:
        return ", ".join(self.public_names()) or "none"

    def endpoint(
        self, api_name: Optional[str], preferred: Optional[str] = None, *, fn_index: Optional[int] = None
    ) -> Endpoint:
        """The endpoint called ``api_name`` (or numbered ``fn_index``), else
        the best public chat endpoint.

        :raises ModelNotFoundError: naming what was asked and listing the
            endpoints the app has.
        """
        if fn_index is not None:
            for endpoint in self.endpoints:
                if endpoint.fn_index == fn_index:
                    return endpoint
            raise ModelNotFoundError(
                f"The app has no step with fn_index {fn_index} (it has {len(self.endpoints)}: "
                f"0 to {len(self.endpoints) - 1}). Its named endpoints: {self._listing()}."
            )
        if api_name is not None:
            wanted = api_name.lstrip("/")
            for endpoint in self.endpoints:
                if endpoint.api_name == wanted:
                    return endpoint
            raise ModelNotFoundError(
                f"The app has no endpoint {'/' + wanted!r}. Its endpoints: {self._listing()}. "
                "Pass one of them as api_name=, or a step's number as fn_index=."
            )
        candidates = [e for e in self.endpoints if e.public and e.queued and self._chats(e)]
        if preferred is not None:
            for endpoint in candidates:
                if endpoint.api_name == preferred:
                    return endpoint
        # A chatbot endpoint carries history; prefer it to a text-only one.
        candidates.sort(key=lambda e: (_answers_in_text(e), e.fn_index))
        if not candidates:
            raise ModelNotFoundError(
                "The app has no endpoint that takes a text message and returns text or a chat. "
                f"Its endpoints: {self._listing()}. Pass one as api_name=, or a step's number as fn_index=."
            )
        return candidates[0]

    def route(
        self,
        api_name: Optional[str] = None,
        preferred: Optional[str] = None,
        *,
        fn_index: Optional[int] = None,
        with_history: bool = False,
    ) -> Tuple[Endpoint, ...]:
        """The steps to run, in order, the last one streaming the answer.

        A step wired after others (``.then()``) comes with the chain that
        leads to it, as a browser runs it. Without ``api_name`` or
        ``fn_index``: the app's public chat endpoint, unless it cannot take
        earlier messages and the chain behind the app's own chat box can;
        an app whose chat steps are all hidden is reached through that chain.
        """
        if api_name is not None or fn_index is not None:
            return self.chain(self.endpoint(api_name, fn_index=fn_index))
        ui = self._ui_chats()
        try:
            best = self.endpoint(None, preferred)
        except ModelNotFoundError:
            if not ui:
                raise
            return self.chain(ui[0])
        if ui and with_history and not self._takes_history(best):
            return self.chain(ui[0])
        return self.chain(best)

    def chain(self, target: Endpoint) -> Tuple[Endpoint, ...]:
        """``target`` and the steps that run before it, first step first."""
        by_index = {e.fn_index: e for e in self.endpoints}
        steps = [target]
        while steps[0].trigger_after is not None and steps[0].trigger_after in by_index:
            parent = by_index[steps[0].trigger_after]
            if parent in steps:
                break  # a cycle in a malformed config
            steps.insert(0, parent)
        return tuple(steps)

    def _chats(self, endpoint: Endpoint) -> bool:
        return _chat_output(endpoint) is not None and any(c.type in _TEXT_INPUTS for c in endpoint.inputs)

    def _ui_chats(self) -> List[Endpoint]:
        """Steps that answer in a chat and are reached from a text box the
        way a browser reaches them, best first."""
        found = []
        for endpoint in self.endpoints:
            location = _chat_output(endpoint)
            if endpoint.trigger_after is None or not endpoint.backend or not endpoint.queued or location is None:
                continue
            steps = self.chain(endpoint)
            root = steps[0]
            if root.event not in ("submit", "click") or not any(
                c.type in _TEXT_INPUTS for step in steps for c in step.inputs
            ):
                continue
            root_is_text = self.components.get(root.trigger_id or -1, _UNKNOWN).type in _TEXT_INPUTS
            found.append(((location[1] != "chat", not root_is_text, endpoint.fn_index), endpoint))
        return [endpoint for _, endpoint in sorted(found, key=lambda item: item[0])]

    def _takes_history(self, endpoint: Endpoint) -> bool:
        return any(c.is_chat for c in endpoint.inputs) or any(
            c.is_state and self.sync_step_for(c.id) is not None for c in endpoint.inputs
        )

    def answer_location(self, endpoint: Endpoint) -> Tuple[int, str]:
        """(output index, "chat" or "text") where the endpoint's answer is."""
        location = _chat_output(endpoint)
        if location is None:
            outputs = ", ".join(_describe(c) for c in endpoint.outputs) or "none"
            raise ModelNotFoundError(
                f"Endpoint {endpoint.route} returns no chat or text output (its outputs: {outputs}); "
                "choose another with api_name= or fn_index=."
            )
        return location

    def chat_format_of(self, component: Component) -> str:
        """How the Chatbot ``component`` writes a conversation."""
        if component.type != "chatbot":
            return ChatFormat.PAIRS_OF_DICTS
        if _major(self.version) >= 6:
            return ChatFormat.PARTS
        return ChatFormat.MESSAGES if component.props.get("type") == "messages" else ChatFormat.TUPLES

    def build_inputs(
        self,
        endpoint: Endpoint,
        query: str,
        history: Sequence[Message],
        system_prompt: Optional[str],
        params: Mapping[str, Any],
    ) -> Inputs:
        """The ``data`` of a one-step call of ``endpoint`` (see :class:`.browser.ChatValues`)."""
        from .browser import ChatValues

        values = ChatValues(self, (endpoint,), query, history, system_prompt, params, strict=True)
        return Inputs(values.inputs_for(endpoint), values.seed, values.history_length)

    def history_value(self, history: Sequence[Message], component: Optional[Component] = None) -> List[Any]:
        """The conversation so far, as the Chatbot ``component`` (by default
        the app's first) holds it."""
        chat_format = self.chat_format if component is None else self.chat_format_of(component)
        return history_value(chat_format, history)

    def sync_step_for(self, state_id: int) -> Optional[Endpoint]:
        for step in self.sync_steps:
            if any(c.id == state_id for c in step.outputs):
                return step
        return None


def history_value(chat_format: str, history: Sequence[Message]) -> List[Any]:
    """``history`` in a Chatbot's format (see :class:`ChatFormat`)."""
    if chat_format in (ChatFormat.TUPLES, ChatFormat.PAIRS_OF_DICTS):
        pairs: List[List[Any]] = []
        for message in history:
            if message.role == "user" or not pairs or pairs[-1][1] is not None:
                pairs.append([message.content, None] if message.role == "user" else [None, message.content])
            else:
                pairs[-1][1] = message.content
        if chat_format == ChatFormat.PAIRS_OF_DICTS:
            return [[None if m is None else {"text": m} for m in pair] for pair in pairs]
        return pairs
    if chat_format == ChatFormat.PARTS:
        return [{"role": m.role, "content": [{"type": "text", "text": m.content}]} for m in history]
    return [{"role": m.role, "content": m.content} for m in history]


def _major(version: str) -> int:
    major = re.match(r"\s*(\d+)", version)
    return int(major.group(1)) if major else 0


def _describe(component: Component) -> str:
    return f"{component.type} {component.label!r}" if component.label else component.type


def _answers_in_text(endpoint: Endpoint) -> bool:
    location = _chat_output(endpoint)
    return location is not None and location[1] == "text"


def _chat_output(endpoint: Endpoint) -> Optional[Tuple[int, str]]:
    for index, component in enumerate(endpoint.outputs):
        if component.is_chat:
            return index, "chat"
    # A text box that is also an input is the message box being cleared,
    # not the answer.
    input_ids = {c.id for c in endpoint.inputs}
    for index, component in enumerate(endpoint.outputs):
        if component.type in _TEXT_OUTPUTS and component.id not in input_ids:
            return index, "text"
    return None


def parse_config(config: Any) -> App:
    """Read an app's ``/config`` JSON.

    :raises ResponseError: when it is not a Gradio config this SDK can speak.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("dependencies"), list):
        raise ResponseError("The server's /config is not a Gradio app config. Check the URL.")
    version = str(config.get("version") or "").strip()
    protocol = _expect(config.get("protocol"), str, "protocol") or ("ws" if _major(version) <= 3 else "unknown")
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ResponseError(
            f"The app speaks Gradio's {protocol!r} queue protocol (Gradio {version or 'of unknown version'}), "
            f"which this SDK does not; it speaks {SUPPORTED_VERSIONS}."
        )
    components = {}
    for component in _expect(config.get("components", []), list, "components", nullable=False):
        if isinstance(component, Mapping) and isinstance(component.get("id"), int):
            props = _expect(component.get("props"), Mapping, "a component's props") or {}
            components[component["id"]] = Component(component["id"], str(component.get("type", "")).lower(), props)
    endpoints: List[Endpoint] = []
    sync_steps: List[Endpoint] = []
    for position, dependency in enumerate(config["dependencies"]):
        if not isinstance(dependency, Mapping):
            continue
        endpoint = _endpoint(dependency, position, components)
        endpoints.append(endpoint)
        if _is_chat_state_sync(endpoint, dependency):
            sync_steps.append(endpoint)
    return App(
        version=version,
        protocol=protocol,
        api_prefix=(_expect(config.get("api_prefix"), str, "api_prefix") or "").rstrip("/"),
        endpoints=tuple(endpoints),
        chat_format=_chat_format(version, components.values()),
        components=components,
        sync_steps=tuple(sync_steps),
        needs_login=any(c.type == "loginbutton" for c in components.values()),
        max_file_size=_file_size_limit(config.get("max_file_size")),
    )


def _file_size_limit(value: Any) -> Optional[int]:
    """``max_file_size`` of a config: bytes, or ``None`` (no limit, or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        return None
    return int(value)


_UNKNOWN = Component(-1, "unknown", {})


def _expect(value: Any, kind: Any, field: str, *, nullable: bool = True) -> Any:
    """``value`` if it is of ``kind`` (or ``None``, where that may be);
    else the config is malformed."""
    if value is None and nullable or isinstance(value, kind):
        return value
    raise ResponseError(
        f"The app's /config is malformed: {field} is {type(value).__name__!r} where Gradio sends "
        f"{getattr(kind, '__name__', kind)!r}. Check that the URL is a Gradio app's."
    )


def _ids(value: Any, field: str) -> List[int]:
    ids = _expect(value, list, field) or []
    if not all(isinstance(i, int) for i in ids):
        raise ResponseError(f"The app's /config is malformed: {field} holds something other than component ids.")
    return ids


def _endpoint(dependency: Mapping[str, Any], position: int, components: Mapping[int, Component]) -> Endpoint:
    targets = _expect(dependency.get("targets"), list, "a step's targets") or []
    first = targets[0] if targets else None
    # Gradio 4+: [[component_id, event], ...]; Gradio 3: [component_id, ...] and "trigger".
    trigger = first[0] if isinstance(first, list) and first else first
    event = first[1] if isinstance(first, list) and len(first) > 1 else dependency.get("trigger")
    api_name = dependency.get("api_name")
    fn_index = dependency.get("id", position)
    trigger_after = dependency.get("trigger_after")
    return Endpoint(
        fn_index=fn_index if isinstance(fn_index, int) else position,
        api_name=api_name if isinstance(api_name, str) and api_name else None,
        trigger_id=trigger if isinstance(trigger, int) else None,
        inputs=tuple(components.get(i, _UNKNOWN) for i in _ids(dependency.get("inputs"), "a step's inputs")),
        outputs=tuple(components.get(i, _UNKNOWN) for i in _ids(dependency.get("outputs"), "a step's outputs")),
        public=_is_public(dependency),
        queued=dependency.get("queue") is not False,
        trigger_after=trigger_after if isinstance(trigger_after, int) else None,
        event=event if isinstance(event, str) else None,
        backend=dependency.get("backend_fn", True) is not False,
    )


def _is_public(dependency: Mapping[str, Any]) -> bool:
    visibility = dependency.get("api_visibility")
    if visibility is not None:  # Gradio 6
        return visibility == "public"
    return dependency.get("api_name") not in (None, False) and dependency.get("show_api", True) is not False


def _is_chat_state_sync(endpoint: Endpoint, dependency: Mapping[str, Any]) -> bool:
    """A step that copies a Chatbot's value into session state without
    queueing (ChatInterface has one): the way to hand it a history, since a
    State input ignores what a client sends."""
    return (
        dependency.get("queue") is False
        and dependency.get("backend_fn", True) is not False
        and len(endpoint.inputs) == 1
        and endpoint.inputs[0].is_chat
        and any(c.is_state for c in endpoint.outputs)
    )


def _chat_format(version: str, components) -> str:
    """The format of the app's first Chatbot (tuples when it has none)."""
    for component in components:
        if component.is_chat:
            if component.type != "chatbot":
                return ChatFormat.PAIRS_OF_DICTS
            if _major(version) >= 6:
                return ChatFormat.PARTS
            return ChatFormat.MESSAGES if component.props.get("type") == "messages" else ChatFormat.TUPLES
    return ChatFormat.PARTS if _major(version) >= 6 else ChatFormat.TUPLES
