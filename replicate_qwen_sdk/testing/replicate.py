"""A loopback emulator of the Replicate prediction API.

It speaks the same wire protocol as ``api.replicate.com`` (create, by model,
version or deployment; get, list, cancel, the SSE stream with
``Last-Event-ID`` resume, and the ``language-models`` collection), answers
from scripts instead of models, and can misbehave on demand::

    from replicate_qwen_sdk import Replicate
    from replicate_qwen_sdk.testing import ReplicateEmulator, Script

    with ReplicateEmulator() as emulator:
        emulator.add_model("acme/poet", Script(["Roses", " are", " red"], delay=0.01))
        provider = Replicate(api_key=emulator.api_token, base_url=emulator.base_url)
        assert provider.complete("acme/poet", "A poem") == "Roses are red"

Unknown models answer 404; models added with a callable get the
prediction's ``input`` and return the :class:`Script` to play. A finished
prediction reports ``metrics`` as the API does for language models:
``input_token_count`` (the words of ``prompt`` and ``system_prompt``: a
word counts as a token), ``output_token_count`` (the script's tokens
produced), ``predict_time`` and ``total_time``.
"""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import hashlib
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

__all__ = ["Prediction", "ReplicateEmulator", "Script", "echo_tokens", "input_token_count"]

DEFAULT_TOKEN = "r8_emulator_token"
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled"})


Responder = Union[Script, Callable[[Mapping[str, Any]], Script]]


def echo_tokens(inputs: Mapping[str, Any]) -> List[str]:
    """A deterministic answer to a prompt, cut into word-sized tokens."""
    prompt = str(inputs.get("prompt", ""))
    words = re.findall(r"\s*\S+|\s+$", f"You said: {prompt}")
    return words or ["(empty prompt)"]


def input_token_count(inputs: Mapping[str, Any]) -> int:
    """The emulator's prompt size in tokens: the words of ``prompt`` and
    ``system_prompt``."""
    return sum(len(str(inputs.get(name) or "").split()) for name in ("prompt", "system_prompt"))


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
    #: ``owner/name`` of the deployment that created it, if one did.
    deployment: Optional[str] = None

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


#: The input properties the default models report: a language model's,
#: which takes no image.
LANGUAGE_MODEL_INPUTS: Mapping[str, Any] = {
    "prompt": {"type": "string", "title": "Prompt"},
    "system_prompt": {"type": "string", "title": "System Prompt"},
    "max_tokens": {"type": "integer", "title": "Max Tokens"},
    "temperature": {"type": "number", "title": "Temperature"},
    "top_p": {"type": "number", "title": "Top P"},
    "top_k": {"type": "integer", "title": "Top K"},
    "stop_sequences": {"type": "string", "title": "Stop Sequences"},
}


#: The input properties of :attr:`ReplicateEmulator.VISION_MODEL`.
VISION_MODEL_INPUTS: Mapping[str, Any] = {
    "prompt": {"type": "string", "title": "Prompt"},
    "image": {"type": "string", "format": "uri", "title": "Image"},
    "system_prompt": {"type": "string", "title": "System Prompt"},
    "max_tokens": {"type": "integer", "title": "Max Tokens"},
}


@dataclass
class UploadedFile:
    """A file received by ``POST /v1/files``."""

    id: str
    name: str
    content_type: str
    content: bytes
    created_at: float = field(default_factory=time.time)


class ReplicateEmulator(LoopbackServer):
    """The Replicate API on ``127.0.0.1``, driven by scripts.

    :param api_token: the only token accepted (``Bearer`` or ``Token``);
        ``None`` accepts any non-empty token.
    :param models: model name → :class:`Script` or callable(input) → Script.
        Without it, :attr:`DEFAULT_MODELS` all answer with an echo of the
        prompt; :attr:`VISION_MODEL` among them takes an ``image`` input
        and adds what it received (``[image: image/png, 161 bytes]``).
    :param deployments: deployment ``owner/name`` → the model it runs.
        Without it (and without ``models``), :attr:`DEFAULT_DEPLOYMENTS`.

    Routes are named ``create`` (models, versions and deployments alike),
    ``get``, ``list``, ``cancel``, ``stream``, ``collection``, ``model``
    (a model's or version's schema), ``upload`` (``POST /v1/files``) and
    ``file`` for :meth:`inject_fault` and :meth:`count`. The ``language-models``
    collection lists every model served by name; it comes whole, as the API
    sends it, or in pages of :attr:`COLLECTION_PAGE_SIZE` models when that
    is set.
    """

    #: Predictions per page of ``GET /v1/predictions`` (the API's is 100).
    LIST_PAGE_SIZE = 100
    #: Models per page of ``GET /v1/collections/{slug}``; ``None``: the
    #: whole collection in one answer, as the API sends it.
    COLLECTION_PAGE_SIZE: Optional[int] = None
    #: Deployments served when neither ``models`` nor ``deployments`` is given.
    DEFAULT_DEPLOYMENTS = {"acme/chat": "meta/meta-llama-3-8b-instruct"}

    #: A default model that takes images (as Anthropic's Claude on Replicate does).
    VISION_MODEL = "anthropic/claude-4-sonnet"

    DEFAULT_MODELS = (
        "meta/meta-llama-3-70b-instruct",
        "meta/meta-llama-3-8b-instruct",
        "meta/meta-llama-3.1-405b-instruct",
        VISION_MODEL,
    )

    def __init__(
        self,
        *,
        api_token: Optional[str] = DEFAULT_TOKEN,
        models: Optional[Mapping[str, Responder]] = None,
        deployments: Optional[Mapping[str, str]] = None,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.api_token = api_token
        self._models: Dict[str, Responder] = (
            dict(models) if models is not None else {name: _echo for name in self.DEFAULT_MODELS}
        )
        if deployments is None:
            deployments = self.DEFAULT_DEPLOYMENTS if models is None else {}
        self._deployments: Dict[str, str] = dict(deployments)
        self.predictions: Dict[str, Prediction] = {}
        # Input properties of each model's schema (GET /v1/models/{owner}/{name}).
        self._inputs: Dict[str, Mapping[str, Any]] = (
            {} if models is not None else {name: LANGUAGE_MODEL_INPUTS for name in self.DEFAULT_MODELS}
        )
        #: Files uploaded through ``POST /v1/files``, by id.
        self.files: Dict[str, UploadedFile] = {}
        if models is None:
            self._models[self.VISION_MODEL] = self._see
            self._inputs[self.VISION_MODEL] = VISION_MODEL_INPUTS

    def _see(self, inputs: Mapping[str, Any]) -> Script:
        """The vision model's answer: the echo of the prompt, then a note on
        each image received."""
        images = inputs.get("image") or []
        notes = [self._image_note(image) for image in (images if isinstance(images, list) else [images])]
        return Script(echo_tokens(inputs) + [f" [image: {note}]" for note in notes], delay=0.005)

    def _image_note(self, value: Any) -> str:
        """What an image input held: the type and size of an inline or
        uploaded image, else the URL (without its query)."""
        text = str(value)
        if text.startswith("data:"):
            header, _, payload = text.partition(",")
            try:
                size = len(base64.b64decode(payload))
            except ValueError:
                return "malformed data URI"
            return f"{header[5:].split(';')[0]}, {size} bytes"
        prefix = f"{self.base_url}/files/"
        if text.startswith(prefix):
            with self._lock:
                upload = self.files.get(text[len(prefix) :])
            if upload is not None:
                return f"{upload.content_type}, {len(upload.content)} bytes, uploaded"
        return text.split("?", 1)[0]

    @property
    def base_url(self) -> str:
        """The value for ``Replicate(base_url=...)``."""
        return f"{self.url}/v1"

    def add_model(self, name: str, responder: Responder, *, inputs: Optional[Mapping[str, Any]] = None) -> None:
        """Serve ``name`` with a fixed :class:`Script` or a callable.

        :param inputs: the ``properties`` of the model's input schema
            (``{"prompt": {"type": "string"}, "image": {"type": "string",
            "format": "uri"}}``), served by ``GET /v1/models/{owner}/{name}``;
            without it the model reports no schema (``latest_version`` null).
        """
        with self._lock:
            self._models[name] = responder
            if inputs is None:
                self._inputs.pop(name, None)
            else:
                self._inputs[name] = dict(inputs)

    def model_inputs(self, name: str) -> Optional[Mapping[str, Any]]:
        """The input properties given for ``name`` (see :meth:`add_model`)."""
        with self._lock:
            return self._inputs.get(name)

    def add_deployment(self, name: str, model: str) -> None:
        """Serve the deployment ``name`` (``owner/name``), running ``model``
        (one served by :meth:`add_model`)."""
        with self._lock:
            self._deployments[name] = model

    def deployment_model(self, name: str) -> Optional[str]:
        """The model the deployment ``name`` runs; ``None`` if unknown."""
        with self._lock:
            return self._deployments.get(name)

    def model_names(self) -> List[str]:
        """The models served by ``owner/name``, sorted (the collection's content)."""
        with self._lock:
            names = list(self._models)
        return sorted(name for name in names if _MODEL_NAME.match(name))

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

    def create_prediction(
        self, model: str, version: str, inputs: Dict[str, Any], deployment: Optional[str] = None
    ) -> Optional[Prediction]:
        responder = self.responder(model)
        if responder is None:
            return None
        script = responder(inputs) if callable(responder) else responder
        prediction = Prediction(uuid.uuid4().hex[:26], model, version, inputs, script, deployment=deployment)
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
        answer: Dict[str, Any] = {
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
        if prediction.deployment is not None:
            answer["deployment"] = prediction.deployment
        if finished:
            ran = (prediction.token_time(produced - 1) if produced else prediction.created) - prediction.created
            answer["metrics"] = {
                "predict_time": round(ran, 6),
                "total_time": round(ran, 6),
                "input_token_count": input_token_count(prediction.input),
                "output_token_count": produced,
            }
        return answer


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


def _form_parts(content_type: str, body: bytes) -> Dict[str, Tuple[Optional[str], str, bytes]]:
    """The fields of a ``multipart/form-data`` body: name → (file name,
    content type, bytes)."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts: Dict[str, Tuple[Optional[str], str, bytes]] = {}
    if not message.is_multipart():
        return parts
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = (part.get_filename(), part.get_content_type(), payload)
    return parts


_CREATE_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)/predictions$")
_CREATE_DEPLOYMENT = re.compile(r"^/v1/deployments/([^/]+)/([^/]+)/predictions$")
_COLLECTION = re.compile(r"^/v1/collections/([^/]+)$")
_MODEL_NAME = re.compile(r"^[^/:]+/[^/:]+$")
_PREDICTION = re.compile(r"^/v1/predictions/([^/]+)$")
_CANCEL = re.compile(r"^/v1/predictions/([^/]+)/cancel$")
_STREAM = re.compile(r"^/stream/v1/predictions/([^/]+)$")
_MODEL = re.compile(r"^/v1/models/([^/]+)/([^/]+)(?:/versions/([^/]+))?$")
_FILE = re.compile(r"^/v1/files/([^/]+)$")
#: How long an uploaded file lives (the API's files expire after a day).
FILE_LIFETIME = 24 * 3600.0

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
        create = _CREATE_MODEL.match(path) or _CREATE_DEPLOYMENT.match(path)
        if create or path == "/v1/predictions":
            await self._handle("create", body, self._create, create)
        elif _CANCEL.match(path):
            await self._handle("cancel", body, self._cancel, _CANCEL.match(path))
        elif path == "/v1/files":
            await self._handle("upload", None, self._upload, None)
        else:
            await self.send_json(404, {"detail": "Not found", "status": 404})

    async def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if _STREAM.match(path):
            await self._handle("stream", None, self._stream, _STREAM.match(path))
        elif path == "/v1/predictions":
            await self._handle("list", None, self._list, None)
        elif _COLLECTION.match(path):
            await self._handle("collection", None, self._collection, _COLLECTION.match(path))
        elif _PREDICTION.match(path):
            await self._handle("get", None, self._get, _PREDICTION.match(path))
        elif _MODEL.match(path):
            await self._handle("model", None, self._model, _MODEL.match(path))
        elif _FILE.match(path):
            await self._handle("file", None, self._file, _FILE.match(path))
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
        deployment = None
        if match and match.re is _CREATE_DEPLOYMENT:
            deployment = f"{match.group(1)}/{match.group(2)}"
            model = self.owner.deployment_model(deployment) or ""
            # A deployment runs one version of its model (the release's).
            version = hashlib.sha256(model.encode()).hexdigest()
            if not model:
                return 404, {"title": "Not found", "detail": "The requested deployment does not exist", "status": 404}
        elif match:
            model, version = f"{match.group(1)}/{match.group(2)}", "hidden"
        else:
            version = str(body.get("version", ""))
            model = version.split(":", 1)[0]
        prediction = self.owner.create_prediction(model, version, body["input"], deployment)
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

    async def _collection(self, body: Any, match) -> None:
        """``GET /v1/collections/{slug}``: ``language-models`` lists every
        model served by name, whole or a page at a time (``cursor``)."""
        owner = self.owner
        slug = match.group(1)
        if slug != "language-models":
            await self.send_json(404, {"detail": "Collection not found", "status": 404})
            return
        with owner._lock:
            runs: Dict[str, int] = {}
            for prediction in owner.predictions.values():
                runs[prediction.model] = runs.get(prediction.model, 0) + 1
        models = [
            {
                "url": f"{owner.url}/{name}",
                "owner": name.split("/")[0],
                "name": name.split("/")[1],
                "description": f"{name}, served by the emulator",
                "visibility": "public",
                "run_count": runs.get(name, 0),
            }
            for name in owner.model_names()
        ]
        answer: Dict[str, Any] = {
            "name": "Language models",
            "slug": slug,
            "description": "Models that understand and generate text",
        }
        size = owner.COLLECTION_PAGE_SIZE
        if size is None:
            answer["models"] = models
        else:
            query = parse_qs(urlsplit(self.path).query)
            try:
                start = int(query.get("cursor", ["0"])[0])
            except ValueError:
                await self.send_json(400, {"detail": "Bad cursor", "status": 400})
                return
            answer["models"] = models[start : start + size]
            more = start + size < len(models)
            answer["next"] = f"{owner.base_url}/collections/{slug}?cursor={start + size}" if more else None
            answer["previous"] = None
        await self.send_json(200, answer)

    async def _model(self, body: Any, match) -> None:
        """``GET /v1/models/{owner}/{name}`` (with its latest version) or
        ``.../versions/{id}``: the input schema given to :meth:`add_model`."""
        owner = self.owner
        name = f"{match.group(1)}/{match.group(2)}"
        if owner.responder(name) is None:
            await self.send_json(404, {"detail": "Model not found", "status": 404})
            return
        inputs = owner.model_inputs(name)
        version = None
        if inputs is not None:
            schema = {"type": "object", "title": "Input", "properties": dict(inputs)}
            version = {
                "id": match.group(3) or hashlib.sha256(name.encode()).hexdigest(),
                "created_at": _iso_time(time.time()),
                "cog_version": "0.9.0",
                "openapi_schema": {"openapi": "3.0.2", "components": {"schemas": {"Input": schema}}},
            }
        if match.group(3):
            if version is None:
                await self.send_json(404, {"detail": "Version not found", "status": 404})
            else:
                await self.send_json(200, version)
            return
        await self.send_json(
            200,
            {
                "url": f"{owner.url}/{name}",
                "owner": match.group(1),
                "name": match.group(2),
                "description": f"{name}, served by the emulator",
                "visibility": "public",
                "latest_version": version,
            },
        )

    async def _upload(self, body: Any, match) -> None:
        """``POST /v1/files``: a multipart form whose ``content`` field is the file."""
        parts = _form_parts(self.headers.get("Content-Type") or "", self.body)
        if "content" not in parts:
            problem = {"title": "Invalid request", "detail": "content is required", "status": 400}
            await self.send_json(400, problem, content_type="application/problem+json")
            return
        filename, content_type, content = parts["content"]
        upload = UploadedFile(uuid.uuid4().hex[:26], filename or "file", content_type, content)
        with self.owner._lock:
            self.owner.files[upload.id] = upload
        await self.send_json(201, self._file_json(upload))

    async def _file(self, body: Any, match) -> None:
        with self.owner._lock:
            upload = self.owner.files.get(match.group(1))
        if upload is None:
            await self.send_json(404, {"detail": "File not found", "status": 404})
            return
        await self.send_json(200, self._file_json(upload))

    def _file_json(self, upload: UploadedFile) -> Dict[str, Any]:
        return {
            "id": upload.id,
            "name": upload.name,
            "content_type": upload.content_type,
            "size": len(upload.content),
            "etag": hashlib.sha256(upload.content).hexdigest()[:32],
            "checksums": {"sha256": hashlib.sha256(upload.content).hexdigest()},
            "metadata": {},
            "created_at": _iso_time(upload.created_at),
            "expires_at": _iso_time(upload.created_at + FILE_LIFETIME),
            "urls": {"get": f"{self.owner.base_url}/files/{upload.id}"},
        }

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
