"""What a Gradio app's ``/config`` says: its protocol, routes and endpoints,
and how to turn a chat into an endpoint's inputs."""

from __future__ import annotations

import re
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from ...errors import InvalidArgumentError, ModelNotFoundError, ResponseError
from ...messages import Message

__all__ = ["App", "ChatFormat", "Endpoint", "Inputs", "parse_config"]

#: Queue protocols spoken here: join with POST, read every event of the
#: session on one SSE stream (4.9+); diffs from 4.17 on.
SUPPORTED_PROTOCOLS = ("sse_v1", "sse_v2", "sse_v2.1", "sse_v3")
DIFF_PROTOCOLS = ("sse_v2", "sse_v2.1", "sse_v3")

_TEXT_INPUTS = ("textbox", "multimodaltextbox")
_TEXT_OUTPUTS = ("textbox", "json", "markdown", "html", "code")


class ChatFormat:
    """How a Chatbot component writes a conversation."""

    TUPLES = "tuples"  # [[user, assistant], ...]            Gradio <= 5 default
    MESSAGES = "messages"  # [{"role", "content": str}, ...]   Gradio 4/5, type="messages"
    PARTS = "parts"  # [{"role", "content": [{"type": "text", "text"}]}]   Gradio 6


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


class Endpoint(NamedTuple):
    """One event listener of the app, callable through the queue."""

    fn_index: int
    api_name: Optional[str]
    trigger_id: Optional[int]
    inputs: Tuple[Component, ...]
    outputs: Tuple[Component, ...]
    public: bool
    queued: bool

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

    @property
    def sends_diffs(self) -> bool:
        return self.protocol in DIFF_PROTOCOLS

    def public_names(self) -> List[str]:
        return [f"/{e.api_name}" for e in self.endpoints if e.public and e.api_name]

    def endpoint(self, api_name: Optional[str], preferred: Optional[str] = None) -> Endpoint:
        """The endpoint called ``api_name``, else the best chat endpoint.

        :raises ModelNotFoundError: naming ``api_name`` and listing the
            endpoints the app has.
        """
        if api_name is not None:
            wanted = api_name.lstrip("/")
            for endpoint in self.endpoints:
                if endpoint.api_name == wanted:
                    return endpoint
            raise ModelNotFoundError(
                f"The app has no endpoint {'/' + wanted!r}. Its endpoints: "
                f"{', '.join(self.public_names()) or 'none'}. Pass one of them as api_name=."
            )
        candidates = [
            e
            for e in self.endpoints
            if e.public and e.queued and _chat_output(e) is not None and any(c.type in _TEXT_INPUTS for c in e.inputs)
        ]
        if preferred is not None:
            for endpoint in candidates:
                if endpoint.api_name == preferred:
                    return endpoint
        # A chatbot endpoint carries history; prefer it to a text-only one.
        candidates.sort(key=lambda e: (_answers_in_text(e), e.fn_index))
        if not candidates:
            raise ModelNotFoundError(
                "The app has no endpoint that takes a text message and returns text or a chat. "
                f"Its endpoints: {', '.join(self.public_names()) or 'none'}. Pass one as api_name=."
            )
        return candidates[0]

    def answer_location(self, endpoint: Endpoint) -> Tuple[int, str]:
        """(output index, "chat" or "text") where the endpoint's answer is."""
        location = _chat_output(endpoint)
        if location is None:
            raise ModelNotFoundError(f"Endpoint {endpoint.route} returns no text or chat output.")
        return location

    def build_inputs(
        self,
        endpoint: Endpoint,
        query: str,
        history: Sequence[Message],
        system_prompt: Optional[str],
        params: Mapping[str, Any],
    ) -> Inputs:
        """Map a chat onto the endpoint's input components.

        The first text input gets the query, a Chatbot input the history, a
        text input labelled "system" (or a hidden one) the system prompt;
        other inputs get ``params`` matched by label, else their default.

        :raises InvalidArgumentError: for a system prompt or history the app
            cannot take, or a parameter no input matches.
        """
        data: List[Any] = []
        seed = None
        history_value = self.history_value(history)
        text_inputs = [i for i, c in enumerate(endpoint.inputs) if c.type in _TEXT_INPUTS]
        visible = [i for i in text_inputs if endpoint.inputs[i].visible]
        query_index: Optional[int] = (visible or text_inputs)[0] if text_inputs else None
        system_index = self._system_input(endpoint, query_index)
        unused = dict(params)
        history_sent = not history
        for index, component in enumerate(endpoint.inputs):
            if index == query_index:
                data.append({"text": query, "files": []} if component.type == "multimodaltextbox" else query)
            elif index == system_index:
                data.append(system_prompt if system_prompt is not None else component.props.get("value"))
            elif component.type == "chatbot":
                data.append(history_value)
                history_sent = True
            elif component.type == "state":
                data.append(None)  # the server substitutes the session's state
                step = self._sync_step_for(component.id)
                if step is not None and history:
                    seed = (step.fn_index, history_value)
                    history_sent = True
            else:
                key = _match_param(component.label, unused)
                data.append(unused.pop(key) if key is not None else component.props.get("value"))
        if query_index is None:
            raise InvalidArgumentError(f"Endpoint {endpoint.route} has no text input for the message.")
        if system_prompt is not None and system_index is None:
            raise InvalidArgumentError(
                f"Endpoint {endpoint.route} has no system prompt input; drop the system message "
                "or system_prompt=, or choose another endpoint with api_name=."
            )
        if not history_sent:
            raise InvalidArgumentError(
                f"Endpoint {endpoint.route} cannot take earlier messages (it has no chat history "
                "input); send only the last user message."
            )
        if unused:
            names = [c.label for c in endpoint.inputs if c.label and c.type not in ("chatbot", "state")]
            raise InvalidArgumentError(
                f"Unknown parameter(s) {', '.join(sorted(unused))} for endpoint {endpoint.route}; "
                f"its inputs are labelled: {', '.join(names) or 'nothing'}."
            )
        return Inputs(data, seed, len(history_value))

    def history_value(self, history: Sequence[Message]) -> List[Any]:
        """The conversation so far, in the format of the app's Chatbot."""
        if self.chat_format == ChatFormat.TUPLES:
            pairs: List[List[Optional[str]]] = []
            for message in history:
                if message.role == "user" or not pairs or pairs[-1][1] is not None:
                    pairs.append([message.content, None] if message.role == "user" else [None, message.content])
                else:
                    pairs[-1][1] = message.content
            return pairs
        if self.chat_format == ChatFormat.PARTS:
            return [{"role": m.role, "content": [{"type": "text", "text": m.content}]} for m in history]
        return [{"role": m.role, "content": m.content} for m in history]

    def _system_input(self, endpoint: Endpoint, query_index: Optional[int]) -> Optional[int]:
        text_inputs = [i for i, c in enumerate(endpoint.inputs) if c.type == "textbox" and i != query_index]
        for index in text_inputs:
            if "system" in endpoint.inputs[index].label.lower():
                return index
        for index in text_inputs:
            if not endpoint.inputs[index].visible:
                return index
        return None

    def _sync_step_for(self, state_id: int) -> Optional[Endpoint]:
        for step in self.sync_steps:
            if any(c.id == state_id for c in step.outputs):
                return step
        return None


def _answers_in_text(endpoint: Endpoint) -> bool:
    location = _chat_output(endpoint)
    return location is not None and location[1] == "text"


def _chat_output(endpoint: Endpoint) -> Optional[Tuple[int, str]]:
    for index, component in enumerate(endpoint.outputs):
        if component.type == "chatbot":
            return index, "chat"
    for index, component in enumerate(endpoint.outputs):
        if component.type in _TEXT_OUTPUTS:
            return index, "text"
    return None


_STANDARD_PARAMS = {
    "max_tokens": ("maxnewtokens", "maxtokens", "maxlength"),
    "temperature": ("temperature",),
    "top_p": ("topp",),
    "top_k": ("topk",),
}


def _normalize(label: str) -> str:
    return re.sub(r"[^a-z0-9]", "", label.lower())


def _match_param(label: str, params: Mapping[str, Any]) -> Optional[str]:
    """The key of ``params`` that names the input labelled ``label``."""
    normalized = _normalize(label)
    if not normalized:
        return None
    for key in params:
        if _normalize(key) == normalized:
            return key
        if any(normalized.startswith(prefix) for prefix in _STANDARD_PARAMS.get(key, ())):
            return key
    return None


def parse_config(config: Any) -> App:
    """Read an app's ``/config`` JSON.

    :raises ResponseError: when it is not a Gradio config this SDK can speak.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("dependencies"), list):
        raise ResponseError("The server's /config is not a Gradio app config. Check the URL.")
    version = str(config.get("version") or "")
    protocol = config.get("protocol") or "ws"
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ResponseError(
            f"The app speaks Gradio's {protocol!r} queue protocol (Gradio {version or '< 4.9'}), "
            f"which this SDK does not; it needs Gradio 4.9 or newer ({', '.join(SUPPORTED_PROTOCOLS)})."
        )
    components = {
        c["id"]: Component(c["id"], str(c.get("type", "")), c.get("props") or {})
        for c in config.get("components", [])
        if isinstance(c, Mapping) and isinstance(c.get("id"), int)
    }
    unknown = Component(-1, "unknown", {})
    endpoints: List[Endpoint] = []
    sync_steps: List[Endpoint] = []
    for position, dependency in enumerate(config["dependencies"]):
        if not isinstance(dependency, Mapping):
            continue
        targets = dependency.get("targets") or []
        trigger = targets[0][0] if targets and isinstance(targets[0], list) and targets[0] else None
        api_name = dependency.get("api_name")
        endpoint = Endpoint(
            fn_index=dependency.get("id", position) if isinstance(dependency.get("id", position), int) else position,
            api_name=api_name if isinstance(api_name, str) and api_name else None,
            trigger_id=trigger if isinstance(trigger, int) else None,
            inputs=tuple(components.get(i, unknown) for i in dependency.get("inputs", [])),
            outputs=tuple(components.get(i, unknown) for i in dependency.get("outputs", [])),
            public=_is_public(dependency),
            queued=dependency.get("queue") is not False,
        )
        endpoints.append(endpoint)
        if _is_chat_state_sync(endpoint, dependency):
            sync_steps.append(endpoint)
    return App(
        version=version,
        protocol=protocol,
        api_prefix=(config.get("api_prefix") or "").rstrip("/"),
        endpoints=tuple(endpoints),
        chat_format=_chat_format(version, components.values()),
        components=components,
        sync_steps=tuple(sync_steps),
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
        and endpoint.inputs[0].type == "chatbot"
        and any(c.type == "state" for c in endpoint.outputs)
    )


def _chat_format(version: str, components) -> str:
    major = re.match(r"(\d+)", version)
    if major and int(major.group(1)) >= 6:
        return ChatFormat.PARTS
    for component in components:
        if component.type == "chatbot":
            return ChatFormat.MESSAGES if component.props.get("type") == "messages" else ChatFormat.TUPLES
    return ChatFormat.TUPLES
