"""Fake model clients for the Space replicas in this folder.

Each fake takes the arguments the Space gives its real model (huggingface_hub's
``InferenceClient``, dashscope's ``Generation``, the llama-2-7b-chat ``model.py``
functions) and streams back a reply computed from them, so that a test can see
what reached the model. No weights, no network.

The reply depends on the text ``q`` of the last user message:

* ``SAY:<text>``  -> exactly ``<text>`` (whitespace and newlines kept);
* ``LONG <n>``    -> ``w0 w1 ... w<n-1>``, one token (word or space) every 0.05 s;
* ``FAIL``        -> two tokens, then ``RuntimeError("fake model failure")``;
* anything else   -> ``"echo: " + json.dumps({"messages": ..., "params": ...})``.

``messages`` is the list of ``{"role", "content"}`` the app sent (a single
prompt string becomes one user message); ``params`` holds the other keyword
arguments of the call (sampling parameters, and ``model`` when the app names it
in the call), without the transport flags (``stream``, ``result_format``,
``incremental_output``, ``details``). Replies are streamed as the tokens of
``re.findall(r"\\s+|\\S+", reply)``, 0.005 s apart.
"""

import copy
import json
import re
import time
from http import HTTPStatus
from types import SimpleNamespace

TOKEN_DELAY = 0.005
LONG_TOKEN_DELAY = 0.05

# Keyword arguments that shape the transport, not the generation: left out of ``params``.
TRANSPORT_KWARGS = ("stream", "result_format", "incremental_output", "details")


def _text_of(content):
    """The text of a message's content, whatever its shape."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type", "text") == "text" and "text" in part:
                parts.append(str(part["text"]))
        return "".join(parts)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(getattr(content, "text", ""))


def last_user_text(messages):
    for message in reversed(list(messages or [])):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _as_messages(messages_or_prompt):
    if isinstance(messages_or_prompt, str):
        return [{"role": "user", "content": messages_or_prompt}]
    return list(messages_or_prompt or [])


def reply_for(messages, params):
    """The full reply the fake model gives to ``messages`` sent with ``params``."""
    messages = _as_messages(messages)
    q = last_user_text(messages)
    if q.startswith("SAY:"):
        return q[4:]
    match = re.match(r"LONG (\d+)", q)
    if match:
        return " ".join(f"w{i}" for i in range(int(match.group(1))))
    payload = {"messages": messages, "params": params}
    return "echo: " + json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)


def tokens_of(reply):
    return re.findall(r"\s+|\S+", reply)


def stream_tokens(messages, params):
    """Yield the reply's tokens with the fake model's pacing (FAIL raises after two)."""
    messages = _as_messages(messages)
    q = last_user_text(messages)
    delay = LONG_TOKEN_DELAY if re.match(r"LONG \d+", q) else TOKEN_DELAY
    for index, token in enumerate(tokens_of(reply_for(messages, params))):
        if q == "FAIL" and index == 2:
            raise RuntimeError("fake model failure")
        time.sleep(delay)
        yield token
    if q == "FAIL":  # a reply of fewer than three tokens still fails
        raise RuntimeError("fake model failure")


def stream_cumulative(messages, params):
    """Yield the growing reply text, as models that resend the whole answer do."""
    text = ""
    for token in stream_tokens(messages, params):
        text += token
        yield text


def _params(kwargs):
    return {key: value for key, value in kwargs.items() if key not in TRANSPORT_KWARGS}


# --------------------------------------------------------------------------
# huggingface_hub.InferenceClient
# --------------------------------------------------------------------------


class InferenceClient:
    """Stands in for ``huggingface_hub.InferenceClient`` (chat_completion, text_generation)."""

    def __init__(self, model=None, *, token=None, **kwargs):
        self.model = model
        self.token = token
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._openai_create))

    def chat_completion(self, messages, *, stream=False, **kwargs):
        messages = copy.deepcopy(_as_messages(messages))
        params = _params(kwargs)
        if stream:
            return self._chat_chunks(messages, params)
        content = "".join(stream_tokens(messages, params))
        message = SimpleNamespace(role="assistant", content=content, tool_calls=None)
        choice = SimpleNamespace(index=0, message=message, finish_reason="stop", logprobs=None)
        return SimpleNamespace(choices=[choice], model=self.model or kwargs.get("model"), id="fake", usage=None)

    def _chat_chunks(self, messages, params):
        for token in stream_tokens(messages, params):
            delta = SimpleNamespace(role="assistant", content=token, tool_calls=None)
            choice = SimpleNamespace(index=0, delta=delta, finish_reason=None, logprobs=None)
            yield SimpleNamespace(choices=[choice], model=self.model, id="fake", created=int(time.time()))

    def _openai_create(self, *, messages, stream=False, **kwargs):
        return self.chat_completion(messages, stream=stream, **kwargs)

    def text_generation(self, prompt, *, stream=False, details=False, **kwargs):
        params = _params(kwargs)
        if not stream:
            return "".join(stream_tokens(prompt, params))
        if details:
            return (
                SimpleNamespace(token=SimpleNamespace(text=token, special=False), generated_text=None)
                for token in stream_tokens(prompt, params)
            )
        return stream_tokens(prompt, params)


# --------------------------------------------------------------------------
# dashscope
# --------------------------------------------------------------------------


class _DictObject(dict):
    """A dict whose keys are also attributes, like dashscope's response objects."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


class Role:
    """Stands in for ``dashscope.api_entities.dashscope_response.Role``."""

    USER = "user"
    SYSTEM = "system"
    BOT = "bot"
    ASSISTANT = "assistant"
    ATTACHMENT = "attachment"


def _dashscope_response(request_id, content, result_format, finish_reason):
    if result_format == "message":
        message = _DictObject(role=Role.ASSISTANT, content=content)
        output = _DictObject(
            text=None, finish_reason=None, choices=[_DictObject(finish_reason=finish_reason, message=message)]
        )
    else:
        output = _DictObject(text=content, finish_reason=finish_reason, choices=None)
    return _DictObject(
        status_code=HTTPStatus.OK,
        request_id=request_id,
        code="",
        message="",
        output=output,
        usage=_DictObject(input_tokens=0, output_tokens=len(tokens_of(content)), total_tokens=0),
    )


class Generation:
    """Stands in for ``dashscope.Generation``: ``call(model, messages=..., stream=True, ...)``."""

    class Models:
        qwen_turbo = "qwen-turbo"
        qwen_plus = "qwen-plus"
        qwen_max = "qwen-max"

    _requests = 0

    @classmethod
    def call(cls, model=None, prompt=None, history=None, api_key=None, messages=None, **kwargs):
        cls._requests += 1
        request_id = f"fake-request-{cls._requests}"
        params = _params(kwargs)
        if model is not None:
            params["model"] = model
        messages = copy.deepcopy(_as_messages(prompt if messages is None else messages))
        result_format = kwargs.get("result_format", "text")
        incremental = kwargs.get("incremental_output", False)
        if kwargs.get("stream"):
            return cls._stream(request_id, messages, params, result_format, incremental)
        content = "".join(stream_tokens(messages, params))
        return _dashscope_response(request_id, content, result_format, "stop")

    @staticmethod
    def _stream(request_id, messages, params, result_format, incremental):
        text = ""
        for token in stream_tokens(messages, params):
            text += token
            yield _dashscope_response(request_id, token if incremental else text, result_format, "null")
        yield _dashscope_response(request_id, "" if incremental else text, result_format, "stop")


# The ``dashscope`` module object as the Spaces use it (``dashscope.api_key = ...``).
dashscope = SimpleNamespace(api_key=None, Generation=Generation)


# --------------------------------------------------------------------------
# huggingface-projects/llama-2-7b-chat model.py
# --------------------------------------------------------------------------


def _llama_messages(message, chat_history, system_prompt):
    messages = [{"role": "system", "content": system_prompt}]
    for user_input, response in chat_history:
        messages.append({"role": "user", "content": user_input})
        messages.append({"role": "assistant", "content": response})
    messages.append({"role": "user", "content": message})
    return messages


def get_input_token_length(message, chat_history, system_prompt):
    """Stands in for model.get_input_token_length: whitespace-separated words of the conversation."""
    return sum(len(_text_of(m["content"]).split()) for m in _llama_messages(message, chat_history, system_prompt))


def run(message, chat_history, system_prompt, max_new_tokens=1024, temperature=0.8, top_p=0.95, top_k=50):
    """Stands in for model.run: yields the growing answer."""
    params = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k}
    yield from stream_cumulative(_llama_messages(message, chat_history, system_prompt), params)


# The llama-2-7b-chat app only asks torch whether CUDA is there.
torch = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: False))


# --------------------------------------------------------------------------
# gradio/chatbot_streaming: its canned ``random.choice`` reply
# --------------------------------------------------------------------------


def bot_reply(history):
    """The reply to a messages-format history, as an iterable of tokens the app streams itself.

    The history is copied now: the app appends the assistant message before iterating.
    """
    return stream_tokens(copy.deepcopy(list(history or [])), {})


# --------------------------------------------------------------------------
# gradio's local stand-in for Hugging Face OAuth
# --------------------------------------------------------------------------


def mocked_oauth_info():
    """A fixed fake profile for ``gradio.oauth._get_mocked_oauth_info`` (no token, no whoami call)."""
    return {
        "access_token": "hf_fake_token",
        "token_type": "bearer",
        "expires_in": 3600,
        "id_token": "AAAAAAAAAAAAAAAAAAAAAAAAAA",
        "scope": "openid profile inference-api",
        "expires_at": int(time.time()) + 8 * 60 * 60,
        "userinfo": {
            "sub": "11111111111111111111111",
            "name": "Fake User",
            "preferred_username": "fake-user",
            "profile": "https://huggingface.co/fake-user",
            "picture": "",
            "website": "",
            "aud": "00000000-0000-0000-0000-000000000000",
            "auth_time": 1691672844,
            "nonce": "aaaaaaaaaaaaaaaaaaa",
            "iat": 1691672844,
            "exp": 1691676444,
            "iss": "https://huggingface.co",
        },
    }
