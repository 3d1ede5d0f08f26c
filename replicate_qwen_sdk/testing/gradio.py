"""A loopback emulator of a Gradio 6 chat app shaped like the Qwen2-72B-Instruct Space.

It answers ``/config`` with the Space's layout (a hidden system Textbox, a
Chatbot, automatic endpoint names, another endpoint first so the chat
endpoint's ``fn_index`` is not 0) and speaks the queue protocol (``sse_v3``):
``/gradio_api/queue/join``, ``/gradio_api/queue/data`` with a full value,
then diffs, then ``process_completed``, and ``/gradio_api/cancel``. It also
answers what ``gradio_client.Client`` reads when it starts (``/config``,
``/gradio_api/info``, ``/gradio_api/heartbeat/<session>``), so code built on
gradio_client can be tested against it too::

    from replicate_qwen_sdk import Qwen_Qwen_2_72B
    from replicate_qwen_sdk.testing import GradioEmulator, Script

    with GradioEmulator(lambda query, history, system: Script(["4"], delay=0.01)) as app:
        assert Qwen_Qwen_2_72B(url=app.url).complete(None, "2+2?") == "4"

Without a responder, the app echoes what it received (system prompt, the
user turns of the history, the query). It is an emulator, not Gradio: it
keeps every token's whitespace, where Gradio 6's Chatbot trims each message.
Routes for :meth:`inject_fault` and :meth:`count`: ``config``, ``info``,
``heartbeat``, ``join``, ``data``, ``cancel``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from ._server import LoopbackServer, RecordedRequest, RequestHandler
from .script import Script

__all__ = ["GradioEmulator", "echo_chat"]

Responder = Callable[[str, List[Dict[str, str]], str], Script]
PREFIX = "/gradio_api"
DEFAULT_SYSTEM = "You are a helpful assistant."
#: Seconds between two ``ALIVE`` messages of the heartbeat stream (Gradio's default).
HEARTBEAT_INTERVAL = 15.0


def echo_chat(query: str, history: List[Dict[str, str]], system: str) -> Script:
    """The default answer: what the app received, word by word."""
    users = [message["content"] for message in history if message["role"] == "user"]
    words = f"[system={system}] [turns={len(users)}: {' | '.join(users)}] you said: {query}".split(" ")
    return Script([words[0]] + [" " + word for word in words[1:]], delay=0.005)


def _config() -> Dict[str, Any]:
    def textbox(id_, label, visible=True, value=""):
        props = {"visible": visible, "value": value, "type": "text", "lines": 1}
        if label:
            props["label"] = label
        return {"id": id_, "type": "textbox", "props": props}

    def dependency(id_, api_name, inputs, outputs, target):
        return {
            "id": id_,
            "api_name": api_name,
            "api_visibility": "public",
            "queue": True,
            "backend_fn": True,
            "inputs": inputs,
            "outputs": outputs,
            "targets": [target],
            "connection": "sse",
        }

    return {
        "version": "6.0.0",
        "protocol": "sse_v3",
        "api_prefix": PREFIX,
        "enable_queue": True,
        "connect_heartbeat": True,
        "mode": "blocks",
        "components": [
            textbox(1, "Status"),
            {"id": 2, "type": "button", "props": {"value": "Ping", "visible": True}},
            textbox(3, "System", value=DEFAULT_SYSTEM),
            textbox(4, None, visible=False, value=DEFAULT_SYSTEM),
            {"id": 5, "type": "chatbot", "props": {"label": "Qwen2-72B-Instruct", "value": [], "visible": True}},
            textbox(6, "Input"),
            {"id": 7, "type": "button", "props": {"value": "Send", "visible": True}},
        ],
        "dependencies": [
            dependency(0, "ping", [], [1], [2, "click"]),
            dependency(1, "model_chat", [6, 5, 4], [6, 5, 3], [6, "submit"]),
            dependency(2, "model_chat_1", [6, 5, 4], [6, 5, 3], [7, "click"]),
        ],
    }


def _api_info() -> Dict[str, Any]:
    """``/gradio_api/info``: the endpoints as gradio_client reads them (the
    real app's, with the Chatbot's JSON schema cut short)."""
    text = {"type": "string"}
    text_type = {"type": "str", "description": ""}
    messages = {
        "type": "list[dict(role: Literal['user', 'assistant'], content: list[dict(text: str, type: Literal['text'])])]",
        "description": "",
    }

    def parameter(name, label, component, kind, python_type, default=None, has_default=False, example=None):
        return {
            "label": label,
            "parameter_name": name,
            "parameter_has_default": has_default,
            "parameter_default": default,
            "type": kind,
            "python_type": python_type,
            "component": component,
            "example_input": example,
        }

    def returned(label, component, kind, python_type):
        return {"label": label, "type": kind, "python_type": python_type, "component": component}

    chat = {
        "parameters": [
            parameter("query", "Input", "Textbox", text, text_type, example="Hello!!"),
            parameter("history", "Qwen2-72B-Instruct", "Chatbot", {"type": "array"}, messages, [], True, []),
            parameter("system", "parameter_4", "Textbox", text, text_type, DEFAULT_SYSTEM, True, "Hello!!"),
        ],
        "returns": [
            returned("Input", "Textbox", text, text_type),
            returned("Qwen2-72B-Instruct", "Chatbot", {"type": "array"}, messages),
            returned("System", "Textbox", text, text_type),
        ],
        "api_visibility": "public",
        "description": "",
    }
    ping = {
        "parameters": [],
        "returns": [returned("Status", "Textbox", text, text_type)],
        "api_visibility": "public",
        "description": "",
    }
    return {"named_endpoints": {"/ping": ping, "/model_chat": chat, "/model_chat_1": chat}, "unnamed_endpoints": {}}


@dataclass
class _Event:
    id: str
    fn_index: int
    query: str
    history: List[Dict[str, Any]]
    system: str
    script: Script
    cancelled: threading.Event = field(default_factory=threading.Event)


class GradioEmulator(LoopbackServer):
    """A Qwen-shaped Gradio 6 app on ``127.0.0.1``, answering from scripts.

    :param responder: ``responder(query, history, system) -> Script``;
        ``history`` is a list of ``{"role", "content"}`` with text content.
    """

    def __init__(self, responder: Optional[Responder] = None, *, port: int = 0) -> None:
        super().__init__(port=port)
        self.responder: Responder = responder or echo_chat
        self.config = _config()
        self.api_info = _api_info()
        self._sessions: Dict[str, List[_Event]] = {}
        self.events: Dict[str, _Event] = {}

    def join(self, session: str, fn_index: int, data: List[Any]) -> _Event:
        query, history, system = data
        plain = [{"role": m["role"], "content": "".join(p["text"] for p in m["content"])} for m in history]
        event = _Event(uuid.uuid4().hex, fn_index, query, history, system, self.responder(query, plain, system))
        with self._lock:
            self._sessions.setdefault(session, []).append(event)
            self.events[event.id] = event
        return event

    def take_events(self, session: str) -> Optional[List[_Event]]:
        with self._lock:
            return self._sessions.pop(session, None)


def _message(content: str, role: str) -> Dict[str, Any]:
    return {"role": role, "metadata": None, "content": [{"text": content, "type": "text"}], "options": None}


def _history_is_valid(history: Any) -> bool:
    return isinstance(history, list) and all(
        isinstance(m, dict)
        and m.get("role") in ("user", "assistant")
        and isinstance(m.get("content"), list)
        and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in m["content"])
        for m in history
    )


class _GradioHandler(RequestHandler):
    owner: GradioEmulator

    def _route(self) -> str:
        path = urlsplit(self.path).path
        if path.startswith(f"{PREFIX}/heartbeat/"):
            return "heartbeat"
        return {
            "/config": "config",
            f"{PREFIX}/info": "info",
            f"{PREFIX}/queue/join": "join",
            f"{PREFIX}/queue/data": "data",
            f"{PREFIX}/cancel": "cancel",
        }.get(path, "")

    async def do_GET(self) -> None:
        route = self._route()
        self.owner.record(RecordedRequest("GET", self.path, dict(self.headers), None, route))
        if await self.apply_fault(self.owner.take_fault(route)):
            return
        if route == "config":
            return await self.send_json(200, self.owner.config)
        if route == "info":
            return await self.send_json(200, self.owner.api_info)
        if route == "heartbeat":
            return await self._heartbeat()
        if route == "data":
            return await self._stream(parse_qs(urlsplit(self.path).query).get("session_hash", [""])[0])
        await self.send_json(404, {"detail": "Not Found"})

    async def do_POST(self) -> None:
        route = self._route()
        body = self.read_json()
        self.owner.record(RecordedRequest("POST", self.path, dict(self.headers), body, route))
        if await self.apply_fault(self.owner.take_fault(route)):
            return
        if route == "join":
            return await self._join(body)
        if route == "cancel":
            event = self.owner.events.get((body or {}).get("event_id", ""))
            if event is not None:
                event.cancelled.set()
            return await self.send_json(200, {"success": True})
        await self.send_json(404, {"detail": "Not Found"})

    async def _join(self, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("session_hash"):
            return await self.send_json(400, {"detail": "Session hash not found."})
        if body.get("fn_index") not in (1, 2):
            return await self.send_json(500, b"Internal Server Error", content_type="text/plain; charset=utf-8")
        data = body.get("data")
        if not isinstance(data, list) or len(data) != 3 or not isinstance(data[0], str):
            return await self.send_json(422, {"detail": [{"msg": "data must be [query, history, system]"}]})
        if not _history_is_valid(data[1]):
            # What Gradio 6 does with tuples or plain-string content: a
            # validation error, reported inside the stream.
            data = [data[0], None, data[2]]
        event = self.owner.join(body["session_hash"], body["fn_index"], data)
        await self.send_json(200, {"event_id": event.id})

    async def _heartbeat(self) -> None:
        """What a page (or gradio_client) holds open to tell the app it is
        still there: ``data: ALIVE`` now and every :data:`HEARTBEAT_INTERVAL`
        seconds, until the client leaves or the emulator stops."""
        await self.start_chunked("text/event-stream; charset=utf-8")
        try:
            while not self.owner.stopping.is_set():
                await self.write_chunk(b"data: ALIVE\n\n")
                await asyncio.sleep(HEARTBEAT_INTERVAL)
        except OSError:
            pass
        self.abort_connection()

    async def _stream(self, session: str) -> None:
        events = self.owner.take_events(session)
        await self.start_chunked()
        try:
            if not events:
                await self._send(
                    {
                        "msg": "unexpected_error",
                        "event_id": None,
                        "message": "404: Not Found",
                        "session_not_found": True,
                        "success": False,
                    }
                )
                await self.end_chunked()
                return
            for event in events:
                if not await self._play(event):
                    return self.abort_connection()
            await self._send({"msg": "close_stream", "event_id": None})
            await self.end_chunked()
        except OSError:
            self.close_connection = True

    async def _play(self, event: _Event) -> bool:
        """Stream one event; False when the script cuts the connection."""
        owner, script = self.owner, event.script
        await self._send({"msg": "estimation", "event_id": event.id, "rank": 0, "queue_size": 1, "rank_eta": None})
        await self._send({"msg": "process_starts", "event_id": event.id, "eta": None})
        if event.history is None:
            await self._send(
                {
                    "msg": "process_completed",
                    "event_id": event.id,
                    "success": False,
                    "output": {"error": "1 validation error for ChatbotDataMessages", "visible": True},
                }
            )
            return True
        history = [_message("".join(p["text"] for p in m["content"]), m["role"]) for m in event.history]
        history.append(_message(event.query, "user"))
        answer_index = len(history)
        answer = ""
        started = time.monotonic()
        drop_at = script.drop_after[0] if script.drop_after else None
        for index, token in enumerate(script.tokens):
            at = started + script.first_delay + index * script.delay
            if script.silence_after is not None and index >= script.silence_after:
                at += script.silence
            if await _cancelled_by(event, at) or owner.stopping.is_set():
                return True
            if drop_at is not None and index >= drop_at:
                if script.cut_mid_event:
                    await self.write_chunk(b'data: {"msg":"process_generating","event_id":"' + event.id.encode())
                return False
            if script.error_after is not None and index >= script.error_after:
                await self._send(
                    {
                        "msg": "process_completed",
                        "event_id": event.id,
                        "success": False,
                        "output": {"error": script.error_detail, "visible": True, "title": "Error"},
                    }
                )
                return True
            values: List[Any]
            if index == 0:
                values = ["", history + [_message(token, "assistant")], event.system]
            else:
                values = [[], [["append", [answer_index, "content", 0, "text"], token]], []]
            answer += token
            await self._send(
                {
                    "msg": "process_generating",
                    "event_id": event.id,
                    "success": True,
                    "output": {"data": values, "is_generating": True},
                }
            )
        final = ["", history + [_message(answer, "assistant")] if script.tokens else history, event.system]
        await self._send(
            {
                "msg": "process_completed",
                "event_id": event.id,
                "success": True,
                "output": {"data": final, "is_generating": False},
            }
        )
        return True

    async def _send(self, message: Dict[str, Any]) -> None:
        await self.write_chunk(b"data: " + json.dumps(message).encode() + b"\n\n")


async def _cancelled_by(event: _Event, moment: float) -> bool:
    """Wait until ``moment`` (a ``time.monotonic()`` value); True if the
    event is cancelled first."""
    while not event.cancelled.is_set():
        left = moment - time.monotonic()
        if left <= 0:
            return False
        await asyncio.sleep(min(left, 0.02))
    return True


GradioEmulator.handler_class = _GradioHandler
