"""A loopback emulator of the Replicate prediction API.

It speaks the same wire protocol as ``api.replicate.com`` (create, get,
list, cancel, and the SSE stream with ``Last-Event-ID`` resume), answers
from scripts instead of models, and can misbehave on demand::

    from replicate_qwen_sdk import Replicate
    from replicate_qwen_sdk.testing import ReplicateEmulator, Script

    with ReplicateEmulator() as emulator:
        emulator.add_model("acme/poet", Script(["Roses", " are", " red"], delay=0.01))
        provider = Replicate(api_key=emulator.api_token, base_url=emulator.base_url)
        assert provider.complete("acme/poet", "A poem") == "Roses are red"

Unknown models answer 404; models added with a callable get the
prediction's ``input`` and return the :class:`Script` to play.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlencode, urlsplit

from ._server import Fault, LoopbackServer, RecordedRequest, RequestHandler
from .script import Script

__all__ = ["Prediction", "ReplicateEmulator", "Script", "echo_tokens"]

DEFAULT_TOKEN = "r8_emulator_token"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})


Responder = Union[Script, Callable[[Mapping[str, Any]], Script]]


def echo_tokens(inputs: Mapping[str, Any]) -> List[str]:
    """A deterministic answer to a prompt, cut into word-sized tokens."""
    prompt = str(inputs.get("prompt", ""))
    words = re.findall(r"\s*\S+|\s+$", f"You said: {prompt}")
    return words or ["(empty prompt)"]


def _echo(inputs: Mapping[str, Any]) -> Script:
    return Script(echo_tokens(inputs), delay=0.005)


@dataclass
class Prediction:
    """Server-side state of one emulated prediction."""

    id: str
    model: str
    version: str
    input: Dict[str, Any]
    script: Script
    created: float = field(default_factory=time.monotonic)
    #: Wall-clock creation time, reported as ``created_at``.
    created_at: float = field(default_factory=time.time)
    canceled_at: Optional[float] = None
    connections: int = 0
    #: ``(status, output tokens shown)`` of every ``GET`` of this prediction.
    polls: List[Tuple[str, int]] = field(default_factory=list)

    def token_time(self, index: int) -> float:
        script = self.script
        at = self.created + script.first_delay + index * script.delay
        if script.silence_after is not None and index >= script.silence_after:
            at += script.silence
        return at

    def produced(self, now: float) -> int:
        """How many tokens exist at ``now``."""
        limit = len(self.script.tokens)
        if self.script.error_after is not None:
            limit = min(limit, self.script.error_after)
        if self.canceled_at is not None:
            now = min(now, self.canceled_at)
        count = 0
        while count < limit and self.token_time(count) <= now:
            count += 1
        return count

    def status(self, now: float) -> str:
        produced = self.produced(now)
        limit = len(self.script.tokens)
        if self.canceled_at is not None:
            return "canceled"
        if self.script.error_after is not None and produced >= self.script.error_after:
            return "failed"
        if produced >= limit:
            return "succeeded"
        return "processing" if produced else "starting"


class ReplicateEmulator(LoopbackServer):
    """The Replicate API on ``127.0.0.1``, driven by scripts.

    :param api_token: the only token accepted (``Bearer`` or ``Token``);
        ``None`` accepts any non-empty token.
    :param models: model name → :class:`Script` or callable(input) → Script.
        Without it, :attr:`DEFAULT_MODELS` all answer with an echo of the
        prompt.

    Routes are named ``create``, ``get``, ``list``, ``cancel`` and ``stream``
    for :meth:`inject_fault` and :meth:`count`.
    """

    #: Predictions per page of ``GET /v1/predictions`` (the API's is 100).
    LIST_PAGE_SIZE = 100

    DEFAULT_MODELS = (
        "meta/meta-llama-3-70b-instruct",
        "meta/meta-llama-3-8b-instruct",
        "meta/meta-llama-3.1-405b-instruct",
    )

    def __init__(
        self,
        *,
        api_token: Optional[str] = DEFAULT_TOKEN,
        models: Optional[Mapping[str, Responder]] = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.api_token = api_token
        self._models: Dict[str, Responder] = (
            dict(models) if models is not None else {name: _echo for name in self.DEFAULT_MODELS}
        )
        self.predictions: Dict[str, Prediction] = {}

    @property
    def base_url(self) -> str:
        """The value for ``Replicate(base_url=...)``."""
        return f"{self.url}/v1"

    def add_model(self, name: str, responder: Responder) -> None:
        """Serve ``name`` with a fixed :class:`Script` or a callable."""
        with self._lock:
            self._models[name] = responder

    def inject_fault(
        self, route: str, fault: Optional[Fault] = None, *, after_create: bool = False, **fields: Any
    ) -> Fault:
        """Make the next request(s) of ``route`` fail as ``fault`` says (or as
        the :class:`Fault` fields given by keyword).

        :param after_create: (``create`` only) create the prediction first,
            then fail: a gateway that gave up (``status=504``) or a connection
            that broke (``reset=True``) after the request reached Replicate.
        """
        if after_create:
            if route != "create":
                raise ValueError("after_create applies to the 'create' route only")
            fault = _AfterCreate(**(vars(fault) if fault is not None else fields))
        return super().inject_fault(route, fault, **fields)

    def responder(self, name: str) -> Optional[Responder]:
        with self._lock:
            return self._models.get(name)

    def create_prediction(self, model: str, version: str, inputs: Dict[str, Any]) -> Optional[Prediction]:
        responder = self.responder(model)
        if responder is None:
            return None
        script = responder(inputs) if callable(responder) else responder
        prediction = Prediction(uuid.uuid4().hex[:26], model, version, inputs, script)
        with self._lock:
            self.predictions[prediction.id] = prediction
        return prediction

    def prediction(self, prediction_id: str) -> Optional[Prediction]:
        with self._lock:
            return self.predictions.get(prediction_id)

    def prediction_json(self, prediction: Prediction) -> Dict[str, Any]:
        now = time.monotonic()
        produced = prediction.produced(now)
        status = prediction.status(now)
        script = prediction.script
        finished = status in TERMINAL_STATUSES
        shown = produced if finished else max(0, produced - script.output_lag)
        removed = finished and script.data_removed
        base = self.base_url
        return {
            "id": prediction.id,
            "model": prediction.model,
            "version": prediction.version,
            "input": {} if removed else prediction.input,
            "logs": "",
            "output": list(script.tokens[:shown]) if shown and not removed else None,
            "error": script.error_detail if status == "failed" else None,
            "status": status,
            "source": "api",
            "data_removed": removed,
            "created_at": _iso_time(prediction.created_at),
            "urls": {
                "get": f"{base}/predictions/{prediction.id}",
                "cancel": f"{base}/predictions/{prediction.id}/cancel",
                "stream": f"{self.url}/stream/v1/predictions/{prediction.id}",
                "web": f"{self.url}/p/{prediction.id}",
            },
        }


@dataclass
class _AfterCreate(Fault):
    """A fault of the ``create`` route answered once the prediction exists."""


def _iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso_time(text: str) -> float:
    """Seconds since the epoch of an ISO 8601 time (``Z`` or an offset;
    any fraction, cut to microseconds)."""
    text = re.sub(r"\.(\d+)", lambda m: "." + m.group(1)[:6].ljust(6, "0"), text.strip()).replace("Z", "+00:00")
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


_CREATE_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
_PREDICTION = re.compile(r"^/v1/predictions/([^/]+)$")
_CANCEL = re.compile(r"^/v1/predictions/([^/]+)/cancel$")
_STREAM = re.compile(r"^/stream/v1/predictions/([^/]+)$")

_UNAUTHENTICATED = {
    "title": "Unauthenticated",
    "detail": "You did not pass a valid authentication token",
    "status": 401,
}


class _ReplicateHandler(RequestHandler):
    owner: ReplicateEmulator

    async def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.read_json()
        create = _CREATE_MODEL.match(path)
        if create or path == "/v1/predictions":
            await self._handle("create", body, self._create, create)
        elif _CANCEL.match(path):
            await self._handle("cancel", body, self._cancel, _CANCEL.match(path))
        else:
            await self.send_json(404, {"detail": "Not found", "status": 404})

    async def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if _STREAM.match(path):
            await self._handle("stream", None, self._stream, _STREAM.match(path))
        elif path == "/v1/predictions":
            await self._handle("list", None, self._list, None)
        elif _PREDICTION.match(path):
            await self._handle("get", None, self._get, _PREDICTION.match(path))
        else:
            await self.send_json(404, {"detail": "Not found", "status": 404})

    async def _handle(self, route: str, body: Any, action: Callable, match) -> None:
        self.owner.record(RecordedRequest(self.command, self.path, dict(self.headers), body, route))
        fault = self.owner.take_fault(route)
        if isinstance(fault, _AfterCreate) and self._authorized():
            self._new_prediction(body, match)  # created; the answer is lost to the fault
        if await self.apply_fault(fault):
            return
        if not self._authorized():
            await self.send_json(401, _UNAUTHENTICATED, content_type="application/problem+json")
            return
        await action(body, match)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme not in ("Bearer", "Token") or not token:
            return False
        return self.owner.api_token is None or token == self.owner.api_token

    async def _create(self, body: Any, match) -> None:
        await self.send_json(*self._new_prediction(body, match))

    def _new_prediction(self, body: Any, match) -> Tuple[int, Dict[str, Any]]:
        """Create the prediction ``body`` asks for; the answer to send."""
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return 422, {"title": "Input validation failed", "detail": "input is required", "status": 422}
        if match:
            model, version = f"{match.group(1)}/{match.group(2)}", "hidden"
        else:
            version = str(body.get("version", ""))
            model = version.split(":", 1)[0]
        prediction = self.owner.create_prediction(model, version, body["input"])
        if prediction is None:
            return 404, {"title": "Not found", "detail": "The requested model does not exist", "status": 404}
        created = self.owner.prediction_json(prediction)
        # Like the real API without "Prefer: wait": a new prediction is
        # always reported as starting, whatever its script.
        created.update(status="starting", output=None, error=None)
        return 201, created

    async def _get(self, body: Any, match) -> None:
        prediction = self.owner.prediction(match.group(1))
        if prediction is None:
            await self.send_json(404, {"detail": "Not found", "status": 404})
            return
        answer = self.owner.prediction_json(prediction)
        prediction.polls.append((answer["status"], len(answer["output"] or ())))
        await self.send_json(200, answer)

    async def _list(self, body: Any, match) -> None:
        """``GET /v1/predictions``: newest first, a page at a time, optionally
        only those created at or after ``created_after``."""
        owner = self.owner
        query = parse_qs(urlsplit(self.path).query)
        try:
            after = _parse_iso_time(query["created_after"][0]) if "created_after" in query else None
            start = int(query.get("cursor", ["0"])[0])
        except ValueError:
            problem = {"title": "Invalid query", "detail": "Bad created_after or cursor", "status": 400}
            await self.send_json(400, problem, content_type="application/problem+json")
            return
        with owner._lock:
            predictions = sorted(owner.predictions.values(), key=lambda p: p.created_at, reverse=True)
        if after is not None:
            predictions = [p for p in predictions if p.created_at >= after]
        end = start + owner.LIST_PAGE_SIZE
        results = []
        for prediction in predictions[start:end]:
            entry = owner.prediction_json(prediction)
            entry["urls"].pop("stream")  # list entries carry no stream URL
            results.append(entry)
        next_url = None
        if end < len(predictions):
            next_url = f"{owner.base_url}/predictions?{urlencode(dict(query, cursor=[str(end)]), doseq=True)}"
        await self.send_json(200, {"next": next_url, "previous": None, "results": results})

    async def _cancel(self, body: Any, match) -> None:
        prediction = self.owner.prediction(match.group(1))
        if prediction is None:
            await self.send_json(404, {"detail": "Not found", "status": 404})
            return
        now = time.monotonic()
        if prediction.status(now) in ("starting", "processing"):
            prediction.canceled_at = now
        await self.send_json(200, self.owner.prediction_json(prediction))

    async def _stream(self, body: Any, match) -> None:
        owner = self.owner
        prediction = owner.prediction(match.group(1))
        if prediction is None:
            await self.send_json(404, {"detail": "Not found", "status": 404})
            return
        script = prediction.script
        if script.stream_unavailable is not None:
            status = script.stream_unavailable
            if status < 400:
                page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
                await self.send_json(status, page, content_type="text/html; charset=utf-8")
            else:
                problem = {"detail": "Stream not available", "status": status}
                await self.send_json(status, problem, content_type="application/problem+json")
            return
        last_event_id = self.headers.get("Last-Event-ID")
        if last_event_id is not None and not script.resumable:
            await self.send_json(404, {"detail": "Stream expired", "status": 404})
            return
        start = 0
        if last_event_id is not None and not script.replay_on_resume:
            start = max(0, int(last_event_id.rsplit(":", 1)[-1]) + 1 - script.rewind_on_resume)
        with owner._lock:
            connection = prediction.connections
            prediction.connections += 1
        drop_at = script.drop_after[connection] if connection < len(script.drop_after) else None
        await self.start_chunked()
        writer = _EventWriter(self, script.line_ending, script.keepalive, script.batch_bytes)
        writer.comment("hi")
        stamp = int(prediction.created)
        index = start
        total = len(script.tokens)
        try:
            while True:
                if owner.stopping.is_set():
                    return self.abort_connection()
                if prediction.canceled_at is not None:
                    await writer.event("done", f"{stamp}:{total + 1}", json.dumps({"reason": "canceled"}))
                    break
                if drop_at is not None and index >= drop_at:
                    if script.cut_mid_event and index < total:
                        writer.cut(f"{stamp}:{index}", script.tokens[index])
                    await writer.flush()
                    return self.abort_connection()
                if script.error_after is not None and index >= script.error_after:
                    await writer.event("error", f"{stamp}:{index}", json.dumps({"detail": script.error_detail}))
                    await writer.event("done", f"{stamp}:{index + 1}", json.dumps({"reason": "error"}))
                    break
                if index >= total:
                    if connection < script.end_without_done:
                        await writer.flush()
                        await self.end_chunked()
                        return
                    await writer.event("done", f"{stamp}:{total}", "{}")
                    break
                wait = prediction.token_time(index) - time.monotonic()
                if wait > 0:
                    await writer.flush()
                    await asyncio.sleep(wait)
                    continue
                await writer.event("output", f"{stamp}:{index}", script.tokens[index])
                index += 1
            await writer.flush()
            await self.end_chunked()
        except OSError:
            self.close_connection = True


class _EventWriter:
    """Formats SSE events and writes them in chunks."""

    def __init__(self, handler: RequestHandler, line_ending: str, keepalive: bool, batch_bytes: int) -> None:
        self._handler = handler
        self._eol = line_ending.encode()
        self._keepalive = keepalive
        self._batch = batch_bytes
        self._buffer: List[bytes] = []
        self._size = 0

    def _format(self, name: str, event_id: str, data: str) -> bytes:
        eol = self._eol
        lines = [b"event: " + name.encode(), b"id: " + event_id.encode()]
        lines += [b"data: " + line.encode() for line in data.split("\n")]
        payload = eol.join(lines) + eol + eol
        if self._keepalive:
            payload = b": keep-alive" + eol + payload
        return payload

    async def event(self, name: str, event_id: str, data: str) -> None:
        payload = self._format(name, event_id, data)
        self._buffer.append(payload)
        self._size += len(payload)
        if self._size >= self._batch:
            await self.flush()

    def comment(self, text: str) -> None:
        self._buffer.append(b": " + text.encode() + self._eol)
        self._size += 1

    def cut(self, event_id: str, data: str) -> None:
        """Write the first half of an event, as a connection dying mid-write would."""
        payload = self._format("output", event_id, data)
        self._buffer.append(payload[: max(1, len(payload) // 2)])
        self._size += 1

    async def flush(self) -> None:
        if self._buffer:
            await self._handler.write_chunk(b"".join(self._buffer))
            self._buffer.clear()
            self._size = 0


ReplicateEmulator.handler_class = _ReplicateHandler
