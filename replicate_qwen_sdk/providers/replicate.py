"""Replicate: the prediction API and its Server-Sent Events stream.

One call runs like this (wire facts in the project's protocol notes):

1. ``POST {base}/models/{owner}/{name}/predictions`` (or ``POST
   {base}/predictions`` with a ``version``, or ``POST
   {base}/deployments/{owner}/{name}/predictions`` for a deployment)
   creates the prediction. It is
   sent again only after a 429 or 503 or a failure to connect, where
   Replicate did nothing. After a 502 or 504, or a connection lost once the
   request was sent, the prediction may exist: ``GET {base}/predictions`` is
   searched for it (created since, same model, version or deployment and
   input), and
   without a find :class:`~replicate_qwen_sdk.errors.PredictionMayExistError`
   is raised, so a model never runs (and bills) twice for one call;
2. ``GET urls.stream`` (``Accept: text/event-stream``) streams ``output``
   events (text chunks), maybe ``logs``, an ``error`` event on failure, and
   ``done`` at the end; a stream URL that will not serve events (an error
   status, an HTML page) is replaced by polling;
3. a connection that breaks, or ends before ``done``, is reopened with
   ``Last-Event-ID`` a few times; events a server replays on a resume are
   skipped by id, and where ids cannot tell, the rest comes from polling, so
   nothing is yielded twice;
4. failing that, ``GET urls.get`` is polled until the prediction is terminal
   and exactly the part of the output not yet streamed is yielded (an
   ``output`` that still trails the stream is waited for).

Every error raised once the prediction exists carries its id
(``.prediction_id``, and in the message), so it can be looked up or canceled.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Dict, Generator, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple, Union
from urllib.parse import urlencode, urlsplit

from ..errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    PredictionMayExistError,
    ResponseError,
    SDKError,
    ServerError,
    error_from_event_data,
)
from ..images import Image, load_image
from ..messages import Messages, chat_images, format_prompt, normalize_messages, split_system
from ..redaction import shown_name, shown_url
from ..retry import CREATE_PREDICTION, DEFAULT_MAX_RETRIES, READ, backoff_delay
from ..sse import EventStream, OutputBatch, SeenEvents
from ..stream import RunUsage, StreamSource, TextStream, cancel_on_interrupt
from ..timeouts import Deadline, TimeoutLike
from ..sse import DEFAULT_MAX_EVENT_SIZE
from ..transport import DEFAULT_MAX_BODY_SIZE, DEFAULT_POOL_SIZE, Transport
from .base import Provider, check_headers, check_json_value, class_or_instance_method

__all__ = ["ModelInfo", "Replicate"]

logger = logging.getLogger("replicate_qwen_sdk")

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
#: Reconnections of a broken stream (with ``Last-Event-ID``) before falling
#: back to polling the prediction.
MAX_STREAM_RESUMES = 3
#: First and longest pause between two polls of a prediction, in seconds.
POLL_INTERVAL = 0.25
POLL_INTERVAL_MAX = 2.0
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})
#: Searches of the prediction list for a prediction whose create request
#: lost its answer; pages read per search; predictions fetched per search
#: when a list entry leaves out its input.
LOOKUP_ATTEMPTS = 3
LOOKUP_PAGES = 3
LOOKUP_FETCHES = 5
#: How far the server's clock may lag this machine's when a prediction's
#: ``created_at`` is compared with the moment its create request was sent.
CLOCK_TOLERANCE = 60.0

_MODEL_REF = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<version>[0-9a-f]{64}))?$"
)
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")
#: A deployment, as ``owner/name`` and as a model string.
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DEPLOYMENT_PREFIX = "deployments/"
#: The collection :meth:`Replicate.list_models` reads, and how many of its
#: pages it follows at most (the API sends it whole today).
LANGUAGE_MODELS = "language-models"
COLLECTION_PAGES = 50
#: Images of at most this many bytes are sent inline, as a ``data:`` URI;
#: larger ones are uploaded (``POST /files``) and sent as the file's URL.
#: Replicate's API reference advises data URLs for files of at most 256 kB
#: (its guide on input files: under 1 MB); the stricter figure is kept.
DATA_URI_LIMIT = 256_000
#: Uploaded images remembered per provider instance (by content), so that a
#: chat resent with the same image does not upload it again.
UPLOADS_KEPT = 256


class ModelInfo(NamedTuple):
    """A model listed by Replicate (see :meth:`Replicate.list_models`)."""

    #: ``owner/name``, as :meth:`Replicate.stream` takes it.
    name: str
    description: str = ""
    run_count: Optional[int] = None
    #: The model's page on replicate.com.
    url: Optional[str] = None


class Replicate(Provider):
    """Stream text from language models hosted on Replicate.

    Safe to share between threads: each call keeps its state in its own
    stream object, and the one HTTP session is thread-safe.

    :param api_key: a Replicate API token; defaults to ``REPLICATE_API_TOKEN``.
        It is sent only as a ``Bearer`` header and never shown.
    :param base_url: the API root; defaults to ``REPLICATE_BASE_URL``, else
        ``https://api.replicate.com/v1``.
    :param timeout: a :class:`~replicate_qwen_sdk.Timeout`, or a number of
        seconds for both the connect and the idle-read limits.
    :param max_retries: retries per request after the first attempt.
    :param proxy: a proxy URL; unset, the standard proxy environment
        variables apply.
    :param pool_size: connections kept open; match your thread count.
    :param headers: more headers for every request (a gateway's key, a
        tracing id), copied when given. They cannot set ``Authorization``
        (the token goes there) nor the headers the protocol sets
        (``Accept``, ``Content-Type`` ...); their values are masked in
        error messages like the token.
    :param max_event_size: the most bytes one streamed event may take
        (default 4 MiB); a larger one raises
        :class:`~replicate_qwen_sdk.ResponseTooLargeError`.
    :param max_body_size: the most bytes (decoded) an answer that is not a
        stream may take (default 32 MiB).

    >>> provider = Replicate(api_key="r8_...")                # doctest: +SKIP
    >>> for chunk in provider.stream(None, "Write a haiku"):  # doctest: +SKIP
    ...     print(chunk, end="")
    """

    label = "Replicate"
    url = "https://replicate.com"
    login_url = "https://replicate.com/account/api-tokens"
    working = True
    needs_auth = True
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
    default_model = "meta/meta-llama-3-70b-instruct"
    models = [
        default_model,
        "meta/meta-llama-3-8b-instruct",
        "meta/meta-llama-3.1-405b-instruct",
    ]
    model_aliases = {
        "llama-3-70b": "meta/meta-llama-3-70b-instruct",
        "llama-3-8b": "meta/meta-llama-3-8b-instruct",
        "llama-3.1-405b": "meta/meta-llama-3.1-405b-instruct",
    }
    instance_settings = (
        "api_key",
        "base_url",
        "timeout",
        "max_retries",
        "proxy",
        "pool_size",
        "headers",
        "max_event_size",
        "max_body_size",
    )

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: TimeoutLike = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        proxy: Optional[str] = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        headers: Optional[Mapping[str, str]] = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self._api_key = self._credential(api_key, "REPLICATE_API_TOKEN", "api_key")
        self.base_url = _clean_base_url(base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL)
        self._headers = check_headers(headers)
        # Per model: its input properties (None: not known), read once.
        self._input_schemas: Dict[str, Optional[Mapping[str, Any]]] = {}
        # Per image content (SHA-256): (file URL, until when to reuse it).
        self._uploads: Dict[str, Tuple[str, float]] = {}
        self.base_url = self._connect(  # type: ignore[assignment]
            headers=self._headers,
            timeout=timeout,
            max_retries=max_retries,
            proxy=proxy,
            pool_size=pool_size,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
            secret=self._api_key,
            url=self.base_url,
            url_argument="base_url",
        )

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        headers = f", headers=<{', '.join(self._headers)}>" if self._headers else ""  # names only
        return f"Replicate(base_url={shown_url(self.base_url)!r}, api_key=<{key}>{headers})"

    @class_or_instance_method
    def _resolve_other_model(self, model: str) -> str:
        if _MODEL_REF.match(model) or _VERSION_ID.match(model):
            return model
        if model.startswith(DEPLOYMENT_PREFIX) and _DEPLOYMENT.match(model[len(DEPLOYMENT_PREFIX) :]):
            return model
        known = ", ".join(sorted(set(self.models) | set(self.model_aliases)))
        raise ModelNotFoundError(
            f"Model not found: {shown_name(model)!r}. Replicate models are named 'owner/name' "
            f"(optionally ':<64-hex version>'), deployments 'deployments/owner/name'; "
            f"known names and aliases: {known}."
        )

    # -- the call ------------------------------------------------------------

    def stream(  # type: ignore[override]  # named options only: a misspelt one is a TypeError
        self,
        model: Optional[str],
        messages: Messages,
        *,
        system_prompt: Optional[str] = None,
        max_tokens: Optional[int] = None,
        temperature: Optional[float] = None,
        top_p: Optional[float] = None,
        top_k: Optional[int] = None,
        stop: Union[str, Sequence[str], None] = None,
        extra_data: Optional[Mapping[str, Any]] = None,
        strict: bool = False,
        deployment: Optional[str] = None,
        image_input: str = "image",
    ) -> TextStream:
        """Create a prediction and return a :class:`TextStream` of its output.

        The prediction is created (and its stream opened) before this
        returns, so a bad key, an unknown model or a refused input raises
        here. Iterate the result for text chunks; ``.id`` is the prediction
        id, ``.cancel()`` stops it on the server.

        :param model: ``owner/name``, ``owner/name:version``, an alias,
            ``deployments/owner/name`` for a deployment, or ``None`` for
            :attr:`default_model`.
        :param messages: a prompt string or a list of ``{role, content}``.
            Several messages are flattened into one prompt
            (``"User: ...\\nAssistant: ...\\nAssistant:"``); system messages
            become ``system_prompt`` unless one is given.
        :param stop: a stop sequence or a list of them (sent comma-joined).
        :param extra_data: more model inputs, merged last (they win).
        :param strict: accepted for the same call shape as the Gradio
            provider; every standard parameter is a Replicate input, so none
            is ever left out.
        :param deployment: ``owner/name`` of a deployment to run instead of
            a model (``model`` is then ``None``): the prediction is created
            through ``POST /deployments/{owner}/{name}/predictions``, and
            streams, resumes, cancels and retries as a model's does.
        :param image_input: the model input that gets the chat's images
            (``{"type": "image_url", "image_url": {"url": ...}}`` parts of
            user messages): ``"image"`` by default, as most vision models on
            Replicate name it. An http(s) URL is sent as it is; a local file
            or a ``data:`` URI goes inline up to :attr:`image_data_uri_limit`
            bytes, else it is uploaded through Replicate's files API and its
            URL sent. The model's input schema is read once per instance
            (``GET /models/...``) to refuse a model that has no such input
            before anything runs, and to send a list to an input that takes
            several images; where it cannot be read (a deployment, a bare
            version id) the images are sent as one value (a list if several)
            and the server judges.
        :raises SDKError: a typed error for every failure.
        """
        started = time.monotonic()
        if deployment is not None:
            if model:
                raise InvalidArgumentError(
                    f"Give a model or a deployment, not both (model={shown_name(model)!r}, "
                    f"deployment={shown_name(deployment)!r}).",
                    argument="deployment",
                )
            deployment = _check_deployment(deployment)
        else:
            model_ref = self.get_model(model)
            if model_ref.startswith(DEPLOYMENT_PREFIX):
                deployment = model_ref[len(DEPLOYMENT_PREFIX) :]
        if deployment is not None:
            model_ref = DEPLOYMENT_PREFIX + deployment
        inputs = build_inputs(
            messages,
            system_prompt=system_prompt,
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            stop=stop,
            extra_data=extra_data,
        )
        images = chat_images(normalize_messages(messages))
        image_input = _check_image_input_name(image_input)
        auth = self._request_headers()
        deadline = Deadline(self.timeout.total)
        if images:
            inputs.update(self._image_inputs(model_ref, images, image_input, inputs, auth, deadline))
        run = _PredictionRun(
            transport=self._transport,
            base_url=self.base_url,
            auth=auth,
            model=model_ref,
            deployment=deployment,
            inputs=inputs,
            deadline=deadline,
        )
        with cancel_on_interrupt(run):  # Ctrl-C after the run exists stops it there
            run.start()
        return TextStream(run, started_at=started)

    def _request_headers(self) -> Dict[str, str]:
        """The custom headers and the token, for every request of a call.

        :raises MissingAuthError: without a token.
        """
        api_key = self._api_key
        if not api_key:
            raise MissingAuthError(
                f"No Replicate API token: pass api_key=... or set REPLICATE_API_TOKEN (create one at {self.login_url})."
            )
        return {**self._headers, "Authorization": f"Bearer {api_key}"}

    # -- models on the server --------------------------------------------------

    def list_models(self, collection: str = LANGUAGE_MODELS) -> List[ModelInfo]:
        """The models of one of Replicate's collections: by default
        ``language-models``, the text models Replicate curates.

        ``GET /collections/{slug}``; the class's :attr:`models` stay the
        offline list. A collection sent in pages (``next``) is read to its
        end; a ``next`` on another host is not followed (the token is not
        sent there).

        :param collection: the collection's slug.
        :raises ModelNotFoundError: for an unknown collection.
        :raises SDKError: a typed error for every other failure.
        """
        if not isinstance(collection, str) or not re.match(r"^[a-z0-9][a-z0-9-]*$", collection):
            raise InvalidArgumentError(
                f"collection must be a collection slug such as {LANGUAGE_MODELS!r}, got {_shown_value(collection)}.",
                argument="collection",
            )
        headers = {**self._request_headers(), "Accept": "application/json"}
        deadline = Deadline(self.timeout.total)
        action = f"reading Replicate's {collection!r} collection"
        url: Optional[str] = f"{self.base_url}/collections/{collection}"
        found: Dict[str, ModelInfo] = {}
        visited: Set[str] = set()
        while url is not None and url not in visited and len(visited) < COLLECTION_PAGES:
            visited.add(url)
            try:
                response = self._transport.request("GET", url, action=action, deadline=deadline, headers=headers)
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(
                    f"Replicate has no collection {collection!r} (HTTP 404); see https://replicate.com/collections.",
                    status_code=exc.status_code,
                    detail=exc.detail,
                ) from None
            page = self._transport.json(response, action=action)
            entries, next_url = _collection_page(page)
            if entries is None:
                raise ResponseError(
                    f"Unexpected answer while {action}: no list of models. Check the base URL.",
                    status_code=response.status_code,
                )
            for entry in entries:
                info = _model_info(entry)
                if info is not None:
                    found.setdefault(info.name, info)
            url = next_url if next_url is not None and _same_origin(next_url, self.base_url) else None
        logger.debug("collection %s: %d models in %d page(s)", collection, len(found), len(visited))
        return list(found.values())

    # -- images ----------------------------------------------------------------

    #: Images of at most this many bytes go inline as a ``data:`` URI, larger
    #: ones through the files API (see :data:`DATA_URI_LIMIT`). Set it on an
    #: instance or a subclass: ``0`` uploads every local image.
    image_data_uri_limit: int = DATA_URI_LIMIT

    def _image_inputs(
        self,
        model_ref: str,
        images: Sequence[Tuple[str, str]],
        image_input: str,
        inputs: Mapping[str, Any],
        auth: Mapping[str, str],
        deadline: Deadline,
    ) -> Dict[str, Any]:
        """``{image_input: value}`` for the chat's ``(where, url)`` images.

        Every image is checked (and read) first, then the model's inputs are
        looked up, then local images too large to go inline are uploaded: a
        refusal comes before anything is sent.
        """
        if image_input in inputs:
            raise InvalidArgumentError(
                f"The chat has images for the input {image_input!r}, which extra_data (or another parameter) "
                "already sets; drop one of them, or name another input with image_input=.",
                argument="image_input",
            )
        loaded = [load_image(url, where=where) for where, url in images]
        properties = self._input_properties(model_ref, auth, deadline)
        many = len(loaded) > 1
        if properties is not None:
            many = _check_image_input(model_ref, properties, image_input, len(loaded))
        values = [self._image_value(image, auth, deadline) for image in loaded]
        return {image_input: values if many else values[0]}

    def _image_value(self, image: Image, auth: Mapping[str, str], deadline: Deadline) -> str:
        """What the model input gets for ``image``: its URL, a data URI, or
        the URL of the file uploaded with its bytes."""
        if image.url is not None:
            return image.url
        if image.size <= self.image_data_uri_limit:
            return image.as_data_uri()
        return self._upload(image, auth, deadline)

    def _upload(self, image: Image, auth: Mapping[str, str], deadline: Deadline) -> str:
        """``POST /files`` (multipart, field ``content``); the file's ``urls.get``.

        An image uploaded before by this instance, whose file has not
        expired, is not uploaded again.
        """
        digest = image.digest()
        kept = self._uploads.get(digest)
        if kept is not None and kept[1] > time.time():
            return kept[0]
        action = f"uploading {image.label} ({image.size} bytes) to Replicate's files API"
        response = self._transport.request(
            "POST",
            f"{self.base_url}/files",
            action=action,
            policy=READ,  # sent twice, an upload only stores the same file twice
            deadline=deadline,
            headers={**auth, "Accept": "application/json"},
            files={"content": (image.filename, image.data, image.media_type)},
        )
        answer = self._transport.json(response, action=action)
        urls = answer.get("urls") if isinstance(answer, dict) else None
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ResponseError(
                f"Unexpected answer while {action}: no urls.get to send the file by. Check the base URL.",
                status_code=response.status_code,
            )
        expires = _parse_time(answer.get("expires_at"))
        # Reused until shortly before it expires (an hour when the API says nothing).
        until = expires - 600 if expires is not None else time.time() + 3600
        self._uploads[digest] = (url, until)
        # list() copies the keys in one step, whatever other threads add meanwhile.
        for oldest in list(self._uploads)[: max(0, len(self._uploads) - UPLOADS_KEPT)]:
            self._uploads.pop(oldest, None)
        logger.debug("uploaded %s as %s", image.label, shown_url(url))
        return url

    def _input_properties(
        self, model_ref: str, auth: Mapping[str, str], deadline: Deadline
    ) -> Optional[Mapping[str, Any]]:
        """The input properties of the model's OpenAPI schema, read once per
        instance: ``GET /models/{owner}/{name}`` (its latest version) or
        ``GET /models/{owner}/{name}/versions/{id}``. ``None`` when they cannot
        be known: a deployment or a bare version id, or an API that will not
        tell (the create request then meets the server's own checks)."""
        if model_ref in self._input_schemas:
            return self._input_schemas[model_ref]
        match = _MODEL_REF.match(model_ref)
        if match is None:
            return None
        owner, name, version = match.group("owner", "name", "version")
        url = f"{self.base_url}/models/{owner}/{name}" + (f"/versions/{version}" if version else "")
        action = f"reading the inputs of {model_ref}"
        try:
            response = self._transport.request(
                "GET", url, action=action, deadline=deadline, headers={**auth, "Accept": "application/json"}
            )
            answer = self._transport.json(response, action=action)
        except ResponseError as exc:
            logger.info("could not read the inputs of %s (%s); sending the images unchecked", model_ref, exc)
            return None
        version_info = answer.get("latest_version") if isinstance(answer, dict) and not version else answer
        properties = _schema_properties(version_info)
        self._input_schemas[model_ref] = properties
        return properties


def _check_image_input_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError(
            f"image_input must be the name of the model input that takes images, got {name!r}.",
            argument="image_input",
        )
    return name


def _schema_properties(version: Any) -> Optional[Mapping[str, Any]]:
    """``openapi_schema.components.schemas.Input.properties`` of a model
    version, or ``None`` when it is not there."""
    node = version
    for key in ("openapi_schema", "components", "schemas", "Input", "properties"):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def _is_file_input(spec: Any) -> bool:
    """A property that takes a file (``format: uri``), or a list of them."""
    if not isinstance(spec, Mapping):
        return False
    if spec.get("type") == "array":
        return _is_file_input(spec.get("items"))
    return spec.get("format") == "uri"


def _check_image_input(model: str, properties: Mapping[str, Any], name: str, count: int) -> bool:
    """Whether the model input ``name`` takes a list of images (else one).

    :raises InvalidArgumentError: when the model has no such input, or it
        takes one image and the chat has several.
    """
    spec = properties.get(name)
    if spec is None:
        files = [key for key, value in properties.items() if _is_file_input(value)]
        if files:
            hint = f"its file inputs are {', '.join(map(repr, files))}: name the one for images with image_input="
        else:
            hint = "it takes no image (a text-only model): choose a vision model"
        raise InvalidArgumentError(
            f"{model} has no input {name!r} for the chat's images; {hint}. Its inputs: {', '.join(properties)}.",
            argument="image_input",
        )
    many = isinstance(spec, Mapping) and spec.get("type") == "array"
    if not many and count > 1:
        raise InvalidArgumentError(
            f"{model}'s input {name!r} takes one image and the chat has {count}; send one image per call.",
            argument="image_input",
        )
    return many


def _check_deployment(deployment: Any) -> str:
    """``deployment`` as ``owner/name`` (a ``deployments/`` prefix is taken off).

    :raises InvalidArgumentError: for anything else.
    """
    if isinstance(deployment, str):
        name = deployment[len(DEPLOYMENT_PREFIX) :] if deployment.startswith(DEPLOYMENT_PREFIX) else deployment
        if _DEPLOYMENT.match(name):
            return name
    raise InvalidArgumentError(
        f"deployment must be a deployment's 'owner/name', got {_shown_value(deployment)}.", argument="deployment"
    )


def _shown_value(value: Any) -> str:
    """A name given by the caller, as a message shows it."""
    return repr(shown_name(value)) if isinstance(value, str) else f"a value of type {type(value).__name__}"


def _collection_page(page: Any) -> "tuple[Optional[List[Any]], Optional[str]]":
    """The model entries of one answer of ``GET /collections/{slug}`` and
    the URL of the next page, if any.

    The API documents the whole collection in one object (``{"name",
    "slug", "description", "models": [...]}``); a paged answer is read too:
    ``models`` as a page (``{"results", "next"}``), or a page at the top
    (``{"results", "next"}``, or ``models`` beside a ``next``).
    """
    if not isinstance(page, dict):
        return None, None
    models = page.get("models")
    if isinstance(models, dict):
        page = models
        models = models.get("results")
    if models is None:
        models = page.get("results")
    next_url = page.get("next")
    return (models if isinstance(models, list) else None), (next_url if isinstance(next_url, str) else None)


def _model_info(entry: Any) -> Optional[ModelInfo]:
    """A collection's model entry as :class:`ModelInfo`; ``None`` without
    an ``owner`` and ``name`` that make a model name."""
    if not isinstance(entry, dict):
        return None
    owner, name = entry.get("owner"), entry.get("name")
    if not isinstance(owner, str) or not isinstance(name, str) or not _MODEL_REF.match(f"{owner}/{name}"):
        return None
    description = entry.get("description")
    run_count = entry.get("run_count")
    url = entry.get("url")
    return ModelInfo(
        name=f"{owner}/{name}",
        description=" ".join(description.split()) if isinstance(description, str) else "",
        run_count=run_count if isinstance(run_count, int) and not isinstance(run_count, bool) else None,
        url=url if isinstance(url, str) else None,
    )


def build_inputs(
    messages: Messages,
    *,
    system_prompt: Optional[str] = None,
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    top_p: Optional[float] = None,
    top_k: Optional[int] = None,
    stop: Union[str, Sequence[str], None] = None,
    extra_data: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """The ``input`` object of a prediction; unset parameters are left out.

    :raises InvalidArgumentError: for any malformed argument.
    """
    chat = normalize_messages(messages)
    if system_prompt is None:
        system_prompt, chat = split_system(chat)
    elif not isinstance(system_prompt, str):
        raise InvalidArgumentError(
            f"system_prompt must be a string, got {type(system_prompt).__name__}.", argument="system_prompt"
        )
    inputs: Dict[str, Any] = {"prompt": format_prompt(chat)}
    if system_prompt is not None:
        inputs["system_prompt"] = system_prompt
    if max_tokens is not None:
        inputs["max_tokens"] = _check_int("max_tokens", max_tokens, minimum=1)
    if temperature is not None:
        inputs["temperature"] = _check_number("temperature", temperature, 0.0, None)
    if top_p is not None:
        inputs["top_p"] = _check_number("top_p", top_p, 0.0, 1.0)
    if top_k is not None:
        inputs["top_k"] = _check_int("top_k", top_k, minimum=0)
    if stop is not None:
        joined = _join_stop(stop)
        if joined:
            inputs["stop_sequences"] = joined
    if extra_data is not None:
        if not isinstance(extra_data, Mapping):
            raise InvalidArgumentError(
                f"extra_data must be a dict, got {type(extra_data).__name__}.", argument="extra_data"
            )
        for key, value in extra_data.items():
            if not isinstance(key, str):
                raise InvalidArgumentError(
                    f"extra_data keys must be input names (strings), got {key!r}.", argument="extra_data"
                )
            check_json_value(f"extra_data[{key!r}]", value, argument="extra_data")
        inputs.update(extra_data)
    return inputs


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}.", argument=name)
    return value


def _check_number(name: str, value: Any, low: float, high: Optional[float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgumentError(f"{name} must be a finite number, got {value!r}.", argument=name)
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value!r}.", argument=name)
    return value


def _join_stop(stop: Union[str, Sequence[str]]) -> str:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, Sequence) or not all(isinstance(s, str) and s for s in sequences):
        raise InvalidArgumentError(f"stop must be a non-empty string or a list of them, got {stop!r}.", argument="stop")
    for sequence in sequences:
        if "," in sequence:
            raise InvalidArgumentError(
                f"stop sequence {sequence!r} contains a comma, which Replicate's comma-separated "
                "stop_sequences cannot carry; pass it through extra_data if the model accepts another form."
            )
    return ",".join(sequences)


def _clean_base_url(url: str) -> str:
    """The API root, ending in its version. A bare host (``https://api.replicate.com``,
    which is how the official client spells ``REPLICATE_BASE_URL``) gets ``/v1``."""
    # The value is shown without credentials, query or fragment: any of them may hold a secret.
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise InvalidArgumentError(
            f"base_url (or REPLICATE_BASE_URL) must be an http(s) URL, got {shown_url(url)!r}.", argument="base_url"
        )
    if "?" in url or "#" in url:
        raise InvalidArgumentError(
            f"base_url (or REPLICATE_BASE_URL) must be the API root without a query or fragment "
            f"('?...' or '#...'), got {shown_url(url)!r} with one.",
            argument="base_url",
        )
    url = url.rstrip("/")
    if re.match(r"^https?://[^/]+$", url):
        url += "/v1"
    return url


def _check_prediction(prediction: Dict[str, Any], action: str, status_code: Optional[int] = None) -> Dict[str, Any]:
    """``prediction``, once its fields the SDK reads have the API's types.

    :raises ResponseError: saying which field is malformed.
    """
    for field, kinds in (("status", (str,)), ("urls", (dict, type(None))), ("error", (str, dict, list, type(None)))):
        if field in prediction and not isinstance(prediction[field], kinds):
            raise ResponseError(
                f"The server's answer was malformed while {action}: the prediction's {field!r} is a "
                f"{type(prediction[field]).__name__}. Check the base URL.",
                status_code=status_code,
            )
    return prediction


def output_text(output: Any) -> str:
    """The text of a prediction's ``output``: a list of chunks (the usual
    shape for language models), a string, or nothing yet."""
    if output is None:
        return ""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(item if isinstance(item, str) else json.dumps(item) for item in output)
    return json.dumps(output)


class _Claims:
    """Ids of the predictions that calls in this process have created or
    taken over, so that a lookup never hands one prediction to two calls."""

    def __init__(self, limit: int = 4096) -> None:
        self._ids: "OrderedDict[str, None]" = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def claim(self, prediction_id: str) -> bool:
        """Record ``prediction_id``; False if it was already recorded."""
        with self._lock:
            if prediction_id in self._ids:
                return False
            self._ids[prediction_id] = None
            if len(self._ids) > self._limit:
                self._ids.popitem(last=False)
            return True


_CLAIMS = _Claims()


class _PredictionRun(StreamSource):
    """One prediction, from creation to the end of its output.

    Implements :class:`~replicate_qwen_sdk.stream.StreamSource`.
    """

    def __init__(
        self,
        *,
        transport: Transport,
        base_url: str,
        auth: Dict[str, str],
        model: str,
        inputs: Dict[str, Any],
        deadline: Deadline,
        deployment: Optional[str] = None,
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._auth = auth  # the token, and the provider's custom headers
        self._model = model
        #: ``owner/name`` of the deployment that runs this prediction, if any.
        self._deployment = deployment
        self._inputs = inputs
        self._deadline = deadline
        self.id: Optional[str] = None
        self._urls: Dict[str, str] = {}
        self._created: Dict[str, Any] = {}
        self._response: Any = None  # the open stream's requests.Response
        self._cancelled = False
        self._released = False  # interrupt(): the caller let go; never resume or poll
        self._last_event_id: Optional[str] = None
        #: Every event id handled, with the data of output events: a resumed
        #: connection that replays them is skipped through them.
        self._seen = SeenEvents()
        #: Output was yielded after the last event that had an id, so a
        #: resume from that id would repeat it unnoticed.
        self._unidentified_output = False
        #: The prediction as last seen terminal (its ``metrics`` give usage).
        self._final: Optional[Dict[str, Any]] = None
        self._usage: Optional[RunUsage] = None
        self._usage_read = False
        self._usage_lock = threading.Lock()

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        """Create the prediction (or find the one a lost answer created) and
        open its stream. Once the prediction exists, nothing raises here: a
        stream that cannot be opened is replaced by polling."""
        prediction = self._create()
        self.id = prediction["id"]
        urls = prediction.get("urls")
        self._urls = urls if isinstance(urls, dict) else {}
        self._created = prediction
        logger.debug("created prediction %s of %s", self.id, self._model)
        stream_url = self._urls.get("stream")
        if stream_url and prediction.get("status") not in TERMINAL_STATUSES:
            try:
                self._response = self._open_stream(stream_url, last_event_id=None)
            except SDKError as exc:
                logger.warning("could not open the stream of prediction %s (%s); polling instead", self.id, exc)

    def _create(self) -> Dict[str, Any]:
        """``POST`` the prediction; after a failure that may have reached
        Replicate, find the prediction it made instead of sending it again."""
        match = _MODEL_REF.match(self._model)
        if self._deployment is not None:
            # As for an official model: no version (the deployment's release picks it).
            url = f"{self._base_url}/deployments/{self._deployment}/predictions"
            body: Dict[str, Any] = {"input": self._inputs}
        elif match and not match.group("version"):
            url = f"{self._base_url}/models/{match.group('owner')}/{match.group('name')}/predictions"
            body = {"input": self._inputs}
        else:
            url = f"{self._base_url}/predictions"
            version = match.group("version") if match else self._model
            body = {"version": version, "input": self._inputs}
        action = f"creating a prediction of {self._model}"
        sent_at = time.time()
        try:
            response = self._transport.request(
                "POST",
                url,
                action=action,
                policy=CREATE_PREDICTION,
                deadline=self._deadline,
                json=body,
                headers={**self._auth, "Accept": "application/json"},
                model=self._model,
            )
        except ModelNotFoundError as exc:
            if self._deployment is None:
                raise
            raise ModelNotFoundError(
                f"Deployment not found: {self._deployment!r} (HTTP 404 while {action}). Check its owner and name "
                "(https://replicate.com/deployments); a deployment is visible only to tokens of its owner.",
                status_code=exc.status_code,
                detail=exc.detail,
            ) from None
        except SDKError as exc:
            if not _may_have_been_received(exc):
                raise
            return self._find_lost_prediction(body, exc, sent_at)
        prediction = self._transport.json(response, action=action)
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            raise ResponseError(
                f"Unexpected answer while {action}: no prediction id. Check the base URL.",
                status_code=response.status_code,
            )
        _check_prediction(prediction, action, response.status_code)
        _CLAIMS.claim(prediction["id"])
        return prediction

    def _find_lost_prediction(self, body: Dict[str, Any], failure: SDKError, sent_at: float) -> Dict[str, Any]:
        """The prediction a create request made before its answer was lost
        (newest first among those created since, same model or version, same
        input, not taken by another call).

        :raises PredictionMayExistError: when none is found.
        """
        logger.warning(
            "creating a prediction of %s failed after the request may have reached Replicate (%s); looking for it",
            self._model,
            failure,
        )
        wanted = json.loads(json.dumps(body))  # as the server stores it
        since = sent_at - CLOCK_TOLERANCE
        problem: Optional[SDKError] = None
        for attempt in range(LOOKUP_ATTEMPTS):
            if attempt:
                delay = backoff_delay(attempt - 1)
                left = self._deadline.remaining()
                if left is not None and left <= delay:
                    break
                self._transport.sleep(delay)
            try:
                found = self._search_predictions(wanted, since)
            except SDKError as exc:
                problem = exc
                break
            if found is not None:
                logger.warning("continuing with prediction %s, which the lost request created", found["id"])
                return self._full_prediction(found)
        raise self._may_exist_error(failure, sent_at, problem) from failure

    def _search_predictions(self, wanted: Dict[str, Any], since: float) -> Optional[Dict[str, Any]]:
        """One look through ``GET /predictions`` for an unclaimed match."""
        url = f"{self._base_url}/predictions?{urlencode({'created_after': _iso_time(since)})}"
        action = f"looking for the prediction of {self._model} a failed request may have created"
        fetched = 0
        for _page in range(LOOKUP_PAGES):
            page = self._get_json(url, action)
            results = page.get("results")
            if not isinstance(results, list):
                raise ResponseError(f"Unexpected answer while {action}: no list of predictions. Check the base URL.")
            for candidate in results:
                if not isinstance(candidate, dict) or not isinstance(candidate.get("id"), str):
                    continue
                created = _parse_time(candidate.get("created_at"))
                if created is None:
                    continue
                if created < since:
                    return None  # newest first: the rest are older still
                if self._incomplete(candidate, wanted) and fetched < LOOKUP_FETCHES:
                    # A list entry that leaves out what is compared: fetch the prediction.
                    fetched += 1
                    candidate = self._get_json(self._prediction_url(candidate), action)
                if _is_match(candidate, wanted, self._model, self._deployment) and _CLAIMS.claim(candidate["id"]):
                    return candidate
            next_url = page.get("next")
            if not isinstance(next_url, str) or not _same_origin(next_url, self._base_url):
                return None  # the last page, or one on another host (the token is not sent there)
            url = next_url
        return None

    def _incomplete(self, entry: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
        """Whether a list entry that may be the prediction sought leaves out
        its input, or (for a deployment) which deployment made it."""
        if self._deployment is None:
            return "input" not in entry and _same_target(entry, wanted, self._model)
        if "input" in entry and entry["input"] != wanted["input"]:
            return False
        return "input" not in entry or "deployment" not in entry

    def _full_prediction(self, entry: Dict[str, Any]) -> Dict[str, Any]:
        """The whole prediction behind a list entry (which has no stream URL)."""
        action = f"fetching prediction {entry['id']}"
        try:
            prediction = self._get_json(self._prediction_url(entry), action)
        except SDKError as exc:
            logger.warning("could not fetch prediction %s (%s); polling it instead", entry["id"], exc)
            return entry
        return _check_prediction(prediction, action) if prediction.get("id") == entry["id"] else entry

    def _prediction_url(self, prediction: Mapping[str, Any]) -> str:
        urls = prediction.get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        return url if isinstance(url, str) and url else f"{self._base_url}/predictions/{prediction['id']}"

    def _may_exist_error(
        self, failure: SDKError, sent_at: float, problem: Optional[SDKError]
    ) -> PredictionMayExistError:
        status = failure.status_code if isinstance(failure, ResponseError) else None
        if status is not None:
            detail = getattr(failure, "detail", "")
            what = f"HTTP {status}" + (f": {detail}" if detail else "")
        elif isinstance(failure, APITimeoutError):
            limit = "overall deadline" if "overall deadline" in str(failure) else "read timeout"
            what = f"no answer within the {limit}"
        else:
            what = "the connection broke before the answer arrived"
        when = _iso_time(sent_at)
        searched = (
            f"looking for it failed too ({problem})"
            if problem is not None
            else f"no prediction of it (same {'deployment' if self._deployment else 'model'} and input) "
            f"created since {when} was found"
        )
        return PredictionMayExistError(
            f"Creating a prediction of {self._model} failed ({what}) after the request may have reached "
            f"Replicate, so a prediction may have been created and be running (and billing); {searched}. "
            "The request was not sent again, so as not to run the model twice: check your recent "
            f"predictions (https://replicate.com/predictions, or GET {shown_url(self._base_url)}/predictions) "
            "and cancel any unwanted one before trying again.",
            status_code=status,
            created_after=when,
        )

    def _open_stream(self, url: str, *, last_event_id: Optional[str]):
        headers = {**self._auth, "Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return self._transport.open_event_stream(
            url, action=f"streaming prediction {self.id}", deadline=self._deadline, headers=headers
        )

    def _with_id(self, error: SDKError) -> SDKError:
        """``error``, carrying this prediction's id as ``prediction_id`` and
        in its message, so the caller can look the prediction up or cancel it."""
        if self.id is None:
            return error
        if error.prediction_id is None:
            error.prediction_id = self.id
        message = str(error)
        if self.id not in message:
            error.args = (f"{message} (prediction {self.id})",)
        return error

    # -- StreamSource ----------------------------------------------------------

    def chunks(self, delivered: List[str]) -> Iterator[str]:
        try:
            if self._response is None or not (yield from self._stream_events(delivered)):
                if not (self._cancelled or self._released):
                    yield from self._poll_until_done(delivered)
        except SDKError as exc:
            self._with_id(exc)
            raise
        finally:
            response, self._response = self._response, None
            if response is not None:
                response.close()

    def interrupt(self) -> None:
        self._released = True
        self._transport.interrupt(self._response)

    def cancel(self) -> None:
        self._cancelled = True
        if self.id is None:
            return
        url = self._urls.get("cancel") or f"{self._base_url}/predictions/{self.id}/cancel"
        try:
            response = self._transport.request(
                "POST",
                url,
                action=f"canceling prediction {self.id}",
                headers={**self._auth, "Accept": "application/json"},
            )
        except SDKError as exc:
            self._with_id(exc)
            raise
        response.close()
        logger.info("canceled prediction %s", self.id)

    def usage(self) -> Optional[RunUsage]:
        """The finished prediction's ``metrics``: from the terminal
        prediction already read, else from one ``GET``; kept once read."""
        with self._usage_lock:
            if not self._usage_read and self.id is not None:
                prediction = self._final
                if prediction is None:
                    prediction = self._get_json(self._get_url, f"reading the metrics of prediction {self.id}")
                if prediction.get("status") in TERMINAL_STATUSES:
                    self._usage = usage_from_metrics(prediction.get("metrics"))
                else:
                    logger.debug("prediction %s is not terminal yet: no usage", self.id)
                self._usage_read = True
            return self._usage

    # -- streaming -------------------------------------------------------------

    def _other_event(self, kind: str, data: str) -> None:
        """Handle an event that is neither output nor ``done``: raise an
        ``error`` event, log a ``logs`` line; any other name is not part of
        the protocol and is ignored."""
        if kind == "error":
            raise error_from_event_data(
                data, action=f"streaming prediction {self.id}", prediction_id=self.id, redact=self._transport.redact
            )
        if kind == "logs":
            logger.debug("prediction %s log: %s", self.id, self._transport.redact(data))

    def _stream_events(self, delivered: List[str]) -> Generator[str, None, bool]:
        """Yield output chunks from the stream, reconnecting with
        ``Last-Event-ID`` when it breaks; return True once ``done`` says all
        is well, False when the rest must come from polling.

        A server may answer a resume by replaying events already handled
        (from the start, or from some earlier event): those are skipped by
        id. Where ids cannot tell (a replayed id with other data, output
        without an id before the first new id), the rest comes from polling.
        """
        resumes = 0
        seen = self._seen
        while True:
            events = EventStream(
                self._transport.iter_bytes(
                    self._response,
                    action=f"streaming prediction {self.id}",
                    deadline=self._deadline,
                ),
                max_event_size=self._transport.max_event_size,
            )
            resumed = resumes > 0
            anchored = not resumed  # a new event id has arrived on this connection
            try:
                for batch in events.output_batches():
                    if not resumed:
                        # The first connection: nothing to skip, so the usual
                        # chunk (only output events with ids) takes the
                        # shortest path, with no Python step per event.
                        if batch.__class__ is OutputBatch:
                            seen.add_batch(batch)
                            yield from batch.datas
                            continue
                        # Single events go straight into the dict unless
                        # batches wait to be read into it before them.
                        record = seen.add if seen.pending else seen.__setitem__
                        for kind, event_id, data in batch:
                            if kind == "output" and event_id:
                                record(event_id, data)
                                yield data
                                continue
                            if event_id:
                                record(event_id, None)
                            elif kind == "output":
                                self._unidentified_output = True
                                yield data
                                continue
                            if kind == "done":
                                return _is_clean_done(data)
                            self._other_event(kind, data)
                        continue
                    for kind, event_id, data in batch:
                        if event_id:
                            if resumed and event_id in seen:
                                if kind == "output" and seen[event_id] != data:
                                    logger.info(
                                        "the stream of prediction %s replayed event %s with other data; polling",
                                        self.id,
                                        event_id,
                                    )
                                    return False
                                continue  # handled before this resume
                            seen.add(event_id, data if kind == "output" else None)
                            anchored = True
                            self._unidentified_output = False
                        elif not anchored and delivered and kind == "output":
                            logger.info(
                                "the resumed stream of prediction %s sent output without an id; polling instead",
                                self.id,
                            )
                            return False
                        if kind == "output":
                            if not event_id:
                                self._unidentified_output = True
                            yield data
                        elif kind == "done":
                            return _is_clean_done(data)
                        else:
                            self._other_event(kind, data)
            except APIConnectionError as exc:
                if not (self._cancelled or self._released):
                    logger.info("the stream of prediction %s broke: %s", self.id, exc)
            finally:
                if events.last_event_id is not None:
                    self._last_event_id = events.last_event_id
            # The connection ended before "done".
            if self._cancelled or self._released:
                return True
            if resumes >= MAX_STREAM_RESUMES:
                return False
            if self._unidentified_output:
                return False  # output without an id: a resumed stream could repeat it unnoticed

            delay = backoff_delay(resumes)
            resumes += 1
            left = self._deadline.remaining()
            if left is not None and left <= delay:
                return False
            self._transport.sleep(delay)
            try:
                self._response = self._open_stream(self._urls["stream"], last_event_id=self._last_event_id)
            except SDKError as exc:
                logger.warning("could not resume the stream of prediction %s (%s)", self.id, exc)
                return False
            logger.info("resumed the stream of prediction %s after event %s", self.id, self._last_event_id)

    # -- polling ---------------------------------------------------------------

    def _poll_until_done(self, chunks_delivered: List[str]) -> Iterator[str]:
        """Poll the prediction until it is terminal, yielding the output not
        yet delivered.

        While the prediction runs, its ``output`` may trail the stream (a
        prefix of the text delivered, or nothing yet): that is waited out,
        within the idle-read and overall limits. Only the finished output is
        held against the delivered text.
        """
        delivered = "".join(chunks_delivered)
        prediction: Optional[Dict[str, Any]] = (
            self._created if self._created.get("status") in TERMINAL_STATUSES else None
        )
        interval = POLL_INTERVAL
        last_progress = time.monotonic()
        last_state: Any = None
        while True:
            if prediction is None:
                action = f"polling prediction {self.id}"
                prediction = _check_prediction(self._get_json(self._get_url, action), action)
            status = prediction.get("status")
            text = output_text(prediction.get("output"))
            if len(text) > len(delivered) and text.startswith(delivered):
                tail = text[len(delivered) :]
                delivered = text
                interval = POLL_INTERVAL
                yield tail
            if status in TERMINAL_STATUSES:
                self._final = prediction
                if status == "succeeded" and (text != delivered or (prediction.get("data_removed") and not text)):
                    raise self._mismatch_error(prediction, delivered, text)
                self._raise_unless_succeeded(prediction)
                return
            state = (status, len(text))
            if state != last_state:
                last_state, last_progress = state, time.monotonic()
            silent_for = time.monotonic() - last_progress
            if silent_for > self._transport.timeout.read:
                raise APITimeoutError(
                    f"Prediction {self.id} made no progress for {silent_for:.0f} s (status {status!r}). "
                    "It may still be running on the server; raise the read timeout or cancel it."
                )
            if self._deadline.expired():
                raise APITimeoutError(
                    f"The overall deadline of {self._deadline.seconds:g} s passed while waiting for "
                    f"prediction {self.id} (status {status!r}). It may still be running on the server."
                )
            self._transport.sleep(self._deadline.clamp(interval))
            interval = min(interval * 1.5, POLL_INTERVAL_MAX)
            prediction = None

    @property
    def _get_url(self) -> str:
        return self._urls.get("get") or f"{self._base_url}/predictions/{self.id}"

    def _get_json(self, url: str, action: str) -> Dict[str, Any]:
        """``GET`` a JSON object from the API."""
        response = self._transport.request(
            "GET",
            url,
            action=action,
            deadline=self._deadline,
            headers={**self._auth, "Accept": "application/json"},
        )
        answer = self._transport.json(response, action=action)
        if not isinstance(answer, dict):
            raise ResponseError(f"Unexpected answer while {action}.", status_code=response.status_code)
        return answer

    def _raise_unless_succeeded(self, prediction: Mapping[str, Any]) -> None:
        status = prediction.get("status")
        if status == "succeeded" or (status == "canceled" and self._cancelled):
            return
        detail = prediction.get("error")
        detail = detail if isinstance(detail, str) else (json.dumps(detail) if detail else "")
        detail = self._transport.redact(detail)  # a server may repeat the token or a URL's password
        if status == "canceled":
            message = (
                f"Prediction {self.id} was canceled on the server before it finished; "
                "the text so far is in the stream's .text."
            )
        elif status == "aborted":
            message = (
                f"Prediction {self.id} was aborted before it ran (for example, its deadline "
                "passed while it was queued). Try again."
            )
        else:
            message = f"Prediction {self.id} failed: {detail or 'no error message given'}."
        raise PredictionError(message, prediction_id=self.id, detail=detail)

    def _mismatch_error(self, prediction: Mapping[str, Any], delivered: str, text: str) -> SDKError:
        if prediction.get("data_removed"):
            return PredictionError(
                f"The output of prediction {self.id} is no longer available on the server (its data was "
                "removed), so the rest of the text cannot be recovered; the text so far is in the stream's .text.",
                prediction_id=self.id,
            )
        return ResponseError(
            f"The streamed text of prediction {self.id} does not match its final output "
            f"({len(delivered)} characters streamed, {len(text)} in the output). Nothing more was "
            "yielded; fetch the prediction to compare."
        )


def usage_from_metrics(metrics: Any) -> Optional[RunUsage]:
    """A prediction's ``metrics`` as :class:`~replicate_qwen_sdk.stream.RunUsage`
    (``input_token_count``, ``output_token_count``, ``predict_time``);
    ``None`` when it reports none of them."""
    if not isinstance(metrics, Mapping):
        return None

    def count(name: str) -> Optional[int]:
        value = metrics.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

    seconds = metrics.get("predict_time")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        seconds = None
    usage = RunUsage(count("input_token_count"), count("output_token_count"), seconds)
    return None if usage == RunUsage() else usage


def _may_have_been_received(error: SDKError) -> bool:
    """Whether a failed create request may have reached Replicate: a 502 or
    504 (the gateway may have passed it on) or a connection that broke, or
    went silent, after the request was sent. A failure to connect, or a
    deadline that passed before sending, leaves nothing behind."""
    if isinstance(error, ServerError):
        return error.status_code in (502, 504)
    if isinstance(error, (APIConnectionError, APITimeoutError)):
        # The transport's message is the only record of where the request
        # failed; tests pin these phrases on both sides.
        return not any(marker in str(error) for marker in _NOT_SENT_MARKERS)
    return False


_NOT_SENT_MARKERS = (
    "Could not connect to",  # connect timeout
    "The overall deadline",  # checked before each attempt
    "Failed to establish a new connection",  # refused, unreachable
    "NewConnectionError",
    "NameResolutionError",
    "Failed to resolve",
    "TLS failed",  # the handshake precedes the request
)


def _same_origin(url: str, base_url: str) -> bool:
    """Whether ``url`` is on the scheme, host and port of ``base_url``."""
    first, second = urlsplit(url), urlsplit(base_url)
    return bool(first.netloc) and (first.scheme, first.netloc) == (second.scheme, second.netloc)


def _same_target(
    prediction: Mapping[str, Any], body: Mapping[str, Any], model: str, deployment: Optional[str] = None
) -> bool:
    """Whether ``prediction`` runs what ``body`` asked for (model, version or
    deployment). A deployment's prediction names the deployment's model, so
    only its ``deployment`` field (``owner/name``) tells."""
    if deployment is not None:
        made_by = prediction.get("deployment")
        return isinstance(made_by, str) and made_by.lower() == deployment.lower()
    if "version" in body:
        return prediction.get("version") == body["version"]
    return prediction.get("model") == model


def _is_match(
    prediction: Mapping[str, Any], body: Mapping[str, Any], model: str, deployment: Optional[str] = None
) -> bool:
    """Whether ``prediction`` may be the one a create request with ``body``
    made: made through the API, same model, version or deployment, same input."""
    return (
        prediction.get("source") in (None, "api")
        and _same_target(prediction, body, model, deployment)
        and prediction.get("input") == body["input"]
    )


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")


def _parse_time(value: Any) -> Optional[float]:
    """Seconds since the epoch of an API time (``2023-10-29T11:19:59.558752983Z``:
    nanoseconds, ``Z`` or an offset); ``None`` when unreadable."""
    match = _TIME.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    try:
        when = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    offset = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    seconds = when.replace(tzinfo=timezone.utc).timestamp() - offset
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


def _iso_time(seconds: float) -> str:
    """``seconds`` since the epoch as the API writes times (UTC, ``Z``)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_clean_done(data: str) -> bool:
    """``done`` with ``{}`` (or no reason) means success; a ``reason`` such as
    ``canceled`` or ``error`` is confirmed by polling the prediction."""
    try:
        payload = json.loads(data) if data.strip() else {}
    except ValueError:
        return False
    return not (isinstance(payload, dict) and payload.get("reason"))
