"""The OpenAI chat-completions call shape over :class:`~replicate_qwen_sdk.Client`.

``client.chat.completions.create(model=..., messages=[...], ...)`` returns a
:class:`ChatCompletion`, or with ``stream=True`` a
:class:`ChatCompletionStream` of :class:`ChatCompletionChunk`; their fields
and ``to_dict()`` follow OpenAI's JSON. These are small records of this
package: the ``openai`` package is not needed. Routing, parameters and
errors are the client's: every failure is a typed
:class:`~replicate_qwen_sdk.SDKError`.

Parameters:

* ``max_tokens`` (or ``max_completion_tokens``), ``temperature``, ``top_p``
  and ``stop`` go to the model; so do the SDK's own (``top_k``,
  ``system_prompt``, ``extra_data``, a Gradio app's inputs by label...);
* the other standard OpenAI parameters this SDK has no equivalent for
  (``presence_penalty``, ``seed``, ``user``, ``logprobs``...) are left out,
  logged once at WARNING and listed in ``ignored_parameters``;
  ``strict=True`` makes them an error, as it does for a Gradio app's
  missing inputs;
* ``n`` above 1, ``tools`` (and ``functions``, a ``tool_choice`` that
  requires one) and a ``response_format`` other than text are refused with
  :class:`~replicate_qwen_sdk.InvalidArgumentError`: nothing here can honour
  them;
* a name that is none of these is refused the same way.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    overload,
)

from .errors import InvalidArgumentError, SDKError
from .messages import Messages
from .stream import RunUsage, TextStream

if TYPE_CHECKING:
    from .client import Client, ProviderLike

__all__ = [
    "Chat",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionStream",
    "Choice",
    "ChunkChoice",
    "Completions",
    "Delta",
    "Message",
    "Usage",
]

logger = logging.getLogger("replicate_qwen_sdk")

#: Standard OpenAI parameters with no equivalent here: left out with a
#: warning (an error with ``strict=True``).
IGNORABLE_PARAMETERS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "metadata",
        "modalities",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "reasoning_effort",
        "safety_identifier",
        "seed",
        "service_tier",
        "store",
        "top_logprobs",
        "user",
        "verbosity",
        "web_search_options",
    }
)


# -- records ---------------------------------------------------------------------------


@dataclass
class Usage:
    """Tokens of one completion, as the server counted them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def from_run(cls, run: Optional[RunUsage]) -> Optional["Usage"]:
        """The usage of a run whose server reported both token counts, else
        ``None`` (counts are never estimated)."""
        if run is None or run.input_tokens is None or run.output_tokens is None:
            return None
        return cls(run.input_tokens, run.output_tokens, run.input_tokens + run.output_tokens)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class Message:
    """The answer of a non-streamed completion."""

    content: str
    role: str = "assistant"

    def to_dict(self) -> Dict[str, Any]:
        return {"role": self.role, "content": self.content}


@dataclass
class Delta:
    """What one chunk adds to the answer; fields not set are left out of
    :meth:`to_dict`, as OpenAI does."""

    content: Optional[str] = None
    role: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        delta: Dict[str, Any] = {}
        if self.role is not None:
            delta["role"] = self.role
        if self.content is not None:
            delta["content"] = self.content
        return delta


@dataclass
class Choice:
    """``choices[i]`` of a :class:`ChatCompletion`."""

    message: Message
    finish_reason: Optional[str] = "stop"
    index: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "index": self.index,
            "message": self.message.to_dict(),
            "finish_reason": self.finish_reason,
            "logprobs": None,
        }


@dataclass
class ChunkChoice:
    """``choices[i]`` of a :class:`ChatCompletionChunk`."""

    delta: Delta
    finish_reason: Optional[str] = None
    index: int = 0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "index": self.index,
            "delta": self.delta.to_dict(),
            "finish_reason": self.finish_reason,
            "logprobs": None,
        }


@dataclass
class ChatCompletion:
    """A whole answer, shaped as OpenAI's ``chat.completion`` object.

    ``usage`` is ``None`` when the server reports no token counts (Gradio
    apps). ``ignored_parameters`` lists the parameters left out of the call
    (it is not part of :meth:`to_dict`).
    """

    id: str
    created: int
    model: str
    choices: List[Choice]
    usage: Optional[Usage] = None
    object: str = "chat.completion"
    ignored_parameters: Tuple[str, ...] = ()

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object OpenAI's API would answer."""
        return {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice.to_dict() for choice in self.choices],
            "usage": None if self.usage is None else self.usage.to_dict(),
        }


@dataclass
class ChatCompletionChunk:
    """One piece of a streamed answer (OpenAI's ``chat.completion.chunk``).

    With ``stream_options={"include_usage": True}`` every chunk's
    :meth:`to_dict` has a ``usage`` key: ``null``, except on the last chunk
    (whose ``choices`` is empty), which carries the usage (still ``null``
    where the server reports none).
    """

    id: str
    created: int
    model: str
    choices: List[ChunkChoice]
    usage: Optional[Usage] = None
    object: str = "chat.completion.chunk"
    #: Whether :meth:`to_dict` has the ``usage`` key (``include_usage``).
    with_usage: bool = False

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object of one ``data:`` event of OpenAI's stream."""
        chunk = {
            "id": self.id,
            "object": self.object,
            "created": self.created,
            "model": self.model,
            "choices": [choice.to_dict() for choice in self.choices],
        }
        if self.with_usage:
            chunk["usage"] = None if self.usage is None else self.usage.to_dict()
        return chunk


# -- the stream ------------------------------------------------------------------------


class ChatCompletionStream(Iterator[ChatCompletionChunk]):
    """The chunks of a streamed completion.

    The first chunk's delta carries ``role`` with the first text; the last
    has an empty delta and ``finish_reason``; with ``include_usage`` one more
    follows, with no choices and the usage. Leaving a ``with`` block before
    the end cancels the run on the server, as :class:`TextStream` does;
    :meth:`cancel` stops it, :meth:`close` only lets go of it.

    :ivar text_stream: the underlying :class:`TextStream` (``.text``,
        ``.metrics``, ``.id``...).
    """

    def __init__(
        self,
        text_stream: TextStream,
        *,
        id: str,
        created: int,
        model: str,
        include_usage: bool = False,
        ignored_parameters: Tuple[str, ...] = (),
    ) -> None:
        self.text_stream = text_stream
        self.id = id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        self.ignored_parameters = ignored_parameters
        self._cancelled = False
        self._chunks = self._generate()

    def __iter__(self) -> "ChatCompletionStream":
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self._chunks)

    def _chunk(self, choices: List[ChunkChoice], usage: Optional[Usage] = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(self.id, self.created, self.model, choices, usage, with_usage=self.include_usage)

    def _generate(self) -> Iterator[ChatCompletionChunk]:
        role: Optional[str] = "assistant"
        for text in self.text_stream:
            if text:
                yield self._chunk([ChunkChoice(Delta(text, role))])
                role = None
        if self._cancelled:
            return
        yield self._chunk([ChunkChoice(Delta("" if role else None, role), "stop")])
        if self.include_usage:
            yield self._chunk([], usage_of(self.text_stream))

    def json_chunks(self) -> Iterator[bytes]:
        """The chunks as UTF-8 JSON, each exactly
        ``json.dumps(chunk.to_dict(), ensure_ascii=False, separators=(",", ":"))``
        (what the server sends). A chunk that only adds text costs one
        string escape: the rest of it is the same in every such chunk."""
        head = tail = b""
        for chunk in self:
            choices = chunk.choices
            if len(choices) == 1 and choices[0].finish_reason is None:
                delta = choices[0].delta
                if delta.role is None and delta.content is not None:
                    if not head:
                        head, tail = _text_chunk_template(chunk)
                    yield head + _escape(delta.content).encode("utf-8") + tail
                    continue
            yield compact_json(chunk.to_dict())

    def completion(self) -> ChatCompletion:
        """Read the rest of the answer and return it whole, as the
        non-streamed call does (with its usage). Leaving early (an error,
        Ctrl-C) cancels the run, as a ``with`` block does."""
        text_stream = self.text_stream
        with text_stream:
            text = text_stream.read()
        return ChatCompletion(
            self.id,
            self.created,
            self.model,
            [Choice(Message(text))],
            usage_of(text_stream),
            ignored_parameters=self.ignored_parameters,
        )

    def cancel(self) -> None:
        """Stop the run on the server and end the iteration (any thread)."""
        self._cancelled = True
        self.text_stream.cancel()

    def close(self) -> None:
        """Let go of the connection; the run goes on on the server."""
        self.text_stream.close()

    def __enter__(self) -> "ChatCompletionStream":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.text_stream.__exit__(*exc_info)

    def __repr__(self) -> str:
        return f"<ChatCompletionStream id={self.id!r} model={self.model!r}>"


def public_model_name(name: str) -> str:
    """A model name as an answer may show it: a name that is a URL (a
    Gradio app's) loses any ``user:password@``, query and fragment."""
    if "://" not in name:
        return name
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#]*@", r"\1", re.split(r"[?#]", name, maxsplit=1)[0])


def compact_json(payload: Any) -> bytes:
    """``payload`` as compact UTF-8 JSON, non-ASCII text as it is."""
    return _ENCODER.encode(payload).encode("utf-8")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_escape = json.encoder.encode_basestring  # the string escape of _ENCODER (C-accelerated)
_MARK = "\x00"


def _text_chunk_template(chunk: ChatCompletionChunk) -> Tuple[bytes, bytes]:
    """The JSON of ``chunk`` before and after its text."""
    sample = replace(chunk, choices=[ChunkChoice(Delta(_MARK))])
    head, _, tail = compact_json(sample.to_dict()).partition(_escape(_MARK).encode("utf-8"))
    return head, tail


def usage_of(stream: TextStream) -> Optional[Usage]:
    """The OpenAI-shaped usage of a finished stream; a failure to read it is
    logged, and gives ``None``: the answer itself is whole."""
    try:
        return Usage.from_run(stream.usage())
    except SDKError as exc:
        logger.warning("could not read the usage of run %s: %s", stream.id, exc)
        return None


# -- the call --------------------------------------------------------------------------


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    @overload
    def create(
        self, /, *, model: Optional[str], messages: Messages, stream: Literal[False] = False, **params: Any
    ) -> ChatCompletion: ...

    @overload
    def create(
        self, /, *, model: Optional[str], messages: Messages, stream: Literal[True], **params: Any
    ) -> ChatCompletionStream: ...

    def create(
        self,
        /,
        *,
        model: Optional[str],
        messages: Messages,
        stream: bool = False,
        max_tokens: Optional[int] = None,
        max_completion_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        stop: Any = None,
        n: Optional[int] = None,
        stream_options: Optional[Mapping[str, Any]] = None,
        response_format: Optional[Mapping[str, Any]] = None,
        tools: Optional[Sequence[Any]] = None,
        tool_choice: Any = None,
        functions: Optional[Sequence[Any]] = None,
        function_call: Any = None,
        provider: Optional["ProviderLike"] = None,
        strict: Optional[bool] = None,
        **params: Any,
    ) -> Union[ChatCompletion, ChatCompletionStream]:
        """Run ``model`` on ``messages``: a :class:`ChatCompletion`, or with
        ``stream=True`` a :class:`ChatCompletionStream` (its run already
        started, so a bad key or an unknown model raises here).

        :param model: any name or alias the client routes (``None``: the
            first provider's default model).
        :param messages: OpenAI-style messages (``system``, ``developer``,
            ``user``, ``assistant``; text content or text parts), or a prompt.
        :param stream_options: ``{"include_usage": True}`` adds a last chunk
            with the usage (streams only).
        :param provider: a provider's name or instance, instead of routing.
        :param strict: make a standard parameter that cannot be honoured an
            error instead of leaving it out.
        :param params: the provider's own parameters (``top_k``,
            ``system_prompt``, ``extra_data``, a Gradio app's inputs...).
        :raises InvalidArgumentError: for what cannot be honoured (see the
            module's documentation), before any request.
        :raises SDKError: as :meth:`Client.stream` does.
        """
        if not isinstance(stream, bool):
            raise InvalidArgumentError(f"stream must be true or false, got {stream!r}.", argument="stream")
        include_usage = _include_usage(stream_options, stream)
        _refuse_unsupported(n, response_format, tools, tool_choice, functions, function_call)
        if max_completion_tokens is not None:
            if max_tokens is not None and max_tokens != max_completion_tokens:
                raise InvalidArgumentError(
                    "max_tokens and max_completion_tokens differ; give one of them.", argument="max_tokens"
                )
            max_tokens = max_completion_tokens
        ignored = _leave_out_ignorable(params, bool(strict))
        for name, value in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p), ("stop", stop)):
            if value is not None:
                params[name] = value
        if strict is not None:
            params["strict"] = strict
        client = self._client
        target = client.provider_for(model, provider)
        resolved = public_model_name(target.get_model(model))
        _check_parameters(target, params)
        created = int(time.time())
        text_stream = client.stream(model, chat_messages(messages), provider=target, **params)
        assert isinstance(text_stream, TextStream)
        completion_id = f"chatcmpl-{text_stream.id or os.urandom(12).hex()}"
        ignored += tuple(name for name in text_stream.ignored_parameters if name not in ignored)
        chat_stream = ChatCompletionStream(
            text_stream,
            id=completion_id,
            created=created,
            model=resolved,
            include_usage=include_usage,
            ignored_parameters=ignored,
        )
        return chat_stream if stream else chat_stream.completion()


class Chat:
    """``client.chat``: the OpenAI call shape, ``client.chat.completions.create(...)``."""

    def __init__(self, client: "Client") -> None:
        self.completions = Completions(client)


# -- checks ----------------------------------------------------------------------------


def chat_messages(messages: Messages) -> Messages:
    """OpenAI messages as the client takes them: ``developer`` is a system
    message, extra keys (``name``) are dropped, an assistant's ``null``
    content is empty; tool turns are refused (no tool calling here)."""
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        return messages  # the client says what is wrong with anything else
    chat: List[Any] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            chat.append(message)
            continue
        role = message.get("role")
        if role in ("tool", "function") or message.get("tool_calls") or message.get("function_call"):
            raise InvalidArgumentError(
                f"messages[{index}] is a tool call or a tool's result: tool calling is not supported here, "
                "so send text messages only (system, user, assistant).",
                argument="messages",
            )
        if role == "developer":
            role = "system"
        content = message.get("content")
        if content is None and role == "assistant":
            content = ""
        chat.append({"role": role, "content": content} if "content" in message else {"role": role})
    return chat


def _include_usage(stream_options: Any, stream: bool) -> bool:
    if stream_options is None:
        return False
    if not stream:
        raise InvalidArgumentError("stream_options is only allowed with stream=True.", argument="stream_options")
    if not isinstance(stream_options, Mapping):
        raise InvalidArgumentError(
            f"stream_options must be an object such as {{'include_usage': true}}, got {stream_options!r}.",
            argument="stream_options",
        )
    include = stream_options.get("include_usage", False)
    if not isinstance(include, bool):
        raise InvalidArgumentError(
            f"stream_options['include_usage'] must be true or false, got {include!r}.", argument="stream_options"
        )
    return include


def _refuse_unsupported(
    n: Any, response_format: Any, tools: Any, tool_choice: Any, functions: Any, function_call: Any
) -> None:
    if n is not None and n != 1:
        raise InvalidArgumentError(
            f"n={n!r}: one answer per request is supported; send several requests for several answers.",
            argument="n",
        )
    if tools or functions:
        raise InvalidArgumentError(
            "tools (and functions) are not supported: these models are called with text only, "
            "so no tool call can come back. Leave them out.",
            argument="tools" if tools else "functions",
        )
    for name, value in (("tool_choice", tool_choice), ("function_call", function_call)):
        if value not in (None, "none", "auto"):
            raise InvalidArgumentError(
                f"{name}={value!r} asks for a tool call, and tool calling is not supported here.", argument=name
            )
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        if kind != "text":
            raise InvalidArgumentError(
                f"response_format={response_format!r} is not supported: the answer is the model's text as it "
                "comes. Ask for JSON in the prompt instead, and leave response_format out.",
                argument="response_format",
            )


_warned: set = set()
_warned_lock = threading.Lock()


def _leave_out_ignorable(params: Dict[str, Any], strict: bool) -> Tuple[str, ...]:
    """Remove from ``params`` the standard OpenAI parameters there is no
    equivalent for (``None`` or ``false`` counts as not given); their names."""
    names = []
    for name in sorted(IGNORABLE_PARAMETERS.intersection(params)):
        value = params.pop(name)
        if value is not None and value is not False:
            names.append(name)
    if not names:
        return ()
    listed = ", ".join(names)
    if strict:
        raise InvalidArgumentError(
            f"{listed}: no equivalent here, and strict=True makes leaving them out an error.", argument=names[0]
        )
    key = tuple(names)
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        logger.warning("%s: no equivalent here, left out of the call (strict=True makes this an error)", listed)
    return key


def _check_parameters(target: Any, params: Mapping[str, Any]) -> None:
    """Refuse a parameter the target provider does not take (a provider
    whose ``stream`` takes any keyword judges them itself)."""
    accepted = _accepted_names(type(target).stream)
    if accepted is None:
        return
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise InvalidArgumentError(
            f"{unknown[0]} is not a parameter of {type(target).__name__} models"
            f"{' (nor ' + ', '.join(unknown[1:]) + ')' if len(unknown) > 1 else ''}; "
            f"they take: {', '.join(sorted(accepted))}.",
            argument=unknown[0],
        )


@functools.lru_cache(maxsize=None)
def _accepted_names(method: Any) -> Optional[FrozenSet[str]]:
    import inspect

    parameters = list(inspect.signature(method).parameters.values())[3:]  # self, model, messages
    if any(parameter.kind is parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return frozenset(parameter.name for parameter in parameters)
