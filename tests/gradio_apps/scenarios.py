"""The calls every Space replica (spaces/) is put through, and what each must show.

Used live (tests/test_gradio_spaces.py, against real Gradio servers), by the
recorder (record.py) and by the replays of its recordings
(tests/test_gradio_transcripts.py): one definition, so a replay checks
exactly what the live run checked.

The replicas' fake model answers ``echo: {"messages": [...], "params": {...}}``
with what it received, ``SAY:<text>`` with exactly ``<text>``, and
``LONG <n>`` with n words, slowly (spaces/fake_models.py).
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Dict, List, NamedTuple, Tuple


class Replica(NamedTuple):
    name: str
    major: int
    #: The model receives the earlier messages / the system prompt.
    sees_history: bool = True
    sees_system: bool = True
    #: Standard parameters the app has an input for.
    params: Tuple[str, ...] = ()
    #: The app serves only visitors signed in with Hugging Face (OAuth).
    needs_login: bool = False
    #: The replica's module in spaces/, when ``name`` says more (a major).
    module: str = ""

    @property
    def app(self) -> str:
        return self.module or self.name


SAMPLING = ("max_tokens", "temperature", "top_p")

REPLICAS = {
    replica.name: replica
    for replica in [
        Replica("qwen2_72b_instruct", 4),
        Replica("qwen2_5", 4),
        Replica("hf_template_gradio4", 4, params=SAMPLING),
        Replica("llama2_7b_chat", 4, params=SAMPLING + ("top_k",)),
        # The Space declares Gradio 3.37: its own major too, over the websocket queue.
        Replica("llama2_7b_chat@3", 3, params=SAMPLING + ("top_k",), module="llama2_7b_chat"),
        Replica("multimodal_chat", 4, sees_history=False, sees_system=False),
        Replica("hf_template_gradio5", 5, params=SAMPLING, needs_login=True),
        Replica("hf_template_gradio5_token", 5, params=SAMPLING),
        Replica("hf_template_gradio5_tuples", 5, params=SAMPLING),
        Replica("blocks_messages", 5),
        Replica("hf_template_gradio6", 6, params=SAMPLING, needs_login=True),
        Replica("hf_template_gradio6_token", 6, params=SAMPLING),
    ]
}


def replicas_of(major: int) -> List[str]:
    """The spaces/ modules to serve on Gradio ``major``."""
    return sorted({replica.app for replica in REPLICAS.values() if replica.major == major})


HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]

#: Answers Gradio's Chatbot rewrites between updates (inspect.cleandoc).
INDENTED = {
    "indented_code": "Install it:\n    pip install foo\nThen restart.",
    "nested_bullets": "Steps:\n- one\n  - one.a\n  - one.b\n- two",
    "tabs_and_blank_lines": "\n\nTable:\n\tcol1\tcol2\n\nend\n\n",
    "leading_spaces": "   Hello\n  world",
}


class Call(NamedTuple):
    """One call: ``provider.stream(None, messages, **kwargs)``."""

    messages: Any
    kwargs: Dict[str, Any]


def calls(replica: Replica) -> Dict[str, Call]:
    """The sequential scenarios (recorded and replayed) for ``replica``."""
    if replica.needs_login:
        return {"prompt": Call("Hello there", {})}
    scenarios = {
        "prompt": Call("Hello there", {}),
        "history_system": Call(HISTORY, {}),
        "params": Call("Use these settings", {"max_tokens": 64, "temperature": 0.25}),
    }
    for name, text in INDENTED.items():
        scenarios[name] = Call("SAY:" + text, {})
    return scenarios


def echoed(text: str) -> Dict[str, Any]:
    """What the fake model received, from its ``echo: {...}`` answer."""
    assert text.startswith("echo: "), text[:200]
    return json.loads(text[len("echo: ") :])


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return ""


def check(replica: Replica, scenario: str, text: str, chunks: List[str], ignored: Tuple[str, ...]) -> None:
    """Assert what ``scenario`` must show on ``replica``."""
    assert "".join(chunks) == text, "the chunks add up to the answer"
    if scenario in INDENTED:
        raw = INDENTED[scenario]
        assert text in (raw, inspect.cleandoc(raw)), (text, raw)
        # The first line streamed on its own, before the lines a Chatbot may
        # still re-indent: the answer did not all come at the end.
        assert len(chunks) >= 2, chunks
        first = next(chunk for chunk in chunks if chunk.strip())
        assert first.lstrip().startswith(raw.split()[0]), chunks
        return
    received = echoed(text)
    messages = received["messages"]
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if scenario == "prompt":
        assert users[-1] == "Hello there"
        assert ignored == ()
    elif scenario == "history_system":
        assert users[-1] == "What is 2+2?"
        if replica.sees_history:
            assert users[:-1] == ["Hi"], users
            assistants = [_text(m.get("content")) for m in messages if m.get("role") == "assistant"]
            assert assistants == ["Hello! How can I help?"], assistants
        if replica.sees_system:
            systems = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
            assert systems == ["Be brief."], messages
    elif scenario == "params":
        params = received["params"]
        for name, value in (("max_tokens", 64), ("temperature", 0.25)):
            if name in replica.params:
                sent = params.get(name, params.get("max_new_tokens") if name == "max_tokens" else None)
                assert sent == value, (name, params)
                assert name not in ignored
            else:
                assert name in ignored, (name, ignored)
