"""Replicate: the prediction API and its Server-Sent Events stream.

One call runs like this (wire facts in the project's protocol notes):

1. ``POST {base}/models/{owner}/{name}/predictions`` (or ``POST
   {base}/predictions`` with a ``version``) creates the prediction;
2. ``GET urls.stream`` (``Accept: text/event-stream``) streams ``output``
   events (text chunks), maybe ``logs``, an ``error`` event on failure, and
   ``done`` at the end;
3. a connection that breaks, or ends before ``done``, is reopened with
   ``Last-Event-ID`` a few times; a server that answers a resume by
   replaying events already received is left for polling (below), so nothing
   is yielded twice;
4. failing that, ``GET urls.get`` is polled until the prediction is terminal
   and exactly the part of the output not yet streamed is yielded.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any, Dict, Generator, Iterator, List, Mapping, Optional, Sequence, Union

from ..errors import (
    APIConnectionError,
    APITimeoutError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    PredictionError,
    ResponseError,
    SDKError,
    ServerError,
    error_from_event_data,
)
from ..messages import Messages, format_prompt, normalize_messages, split_system
from ..retry import CREATE, DEFAULT_MAX_RETRIES, backoff_delay
from ..sse import EventStream
from ..stream import StreamSource, TextStream
from ..timeouts import Deadline, TimeoutLike
from ..transport import DEFAULT_POOL_SIZE, Transport
from .base import Provider, class_or_instance_method

__all__ = ["Replicate"]

logger = logging.getLogger("replicate_qwen_sdk")

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
#: Reconnections of a broken stream (with ``Last-Event-ID``) before falling
#: back to polling the prediction.
MAX_STREAM_RESUMES = 3
#: First and longest pause between two polls of a prediction, in seconds.
POLL_INTERVAL = 0.25
POLL_INTERVAL_MAX = 2.0
TERMINAL_STATUSES = frozenset({"succeeded", "failed", "canceled", "aborted"})

_MODEL_REF = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9._-]*)/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<version>[0-9a-f]{64}))?$"
)
_VERSION_ID = re.compile(r"^[0-9a-f]{64}$")


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
    instance_settings = ("api_key", "base_url", "timeout", "max_retries", "proxy", "pool_size")

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: TimeoutLike = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        proxy: Optional[str] = None,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self._api_key = self._credential(api_key, "REPLICATE_API_TOKEN", "api_key")
        self.base_url = _clean_base_url(base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL)
        self._connect(timeout=timeout, max_retries=max_retries, proxy=proxy, pool_size=pool_size, secret=self._api_key)

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"Replicate(base_url={self.base_url!r}, api_key=<{key}>)"

    @class_or_instance_method
    def _resolve_other_model(self, model: str) -> str:
        if _MODEL_REF.match(model) or _VERSION_ID.match(model):
            return model
        known = ", ".join(sorted(set(self.models) | set(self.model_aliases)))
        raise ModelNotFoundError(
            f"Model not found: {model!r}. Replicate models are named 'owner/name' "
            f"(optionally ':<64-hex version>'); known names and aliases: {known}."
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
    ) -> TextStream:
        """Create a prediction and return a :class:`TextStream` of its output.

        The prediction is created (and its stream opened) before this
        returns, so a bad key, an unknown model or a refused input raises
        here. Iterate the result for text chunks; ``.id`` is the prediction
        id, ``.cancel()`` stops it on the server.

        :param model: ``owner/name``, ``owner/name:version``, an alias, or
            ``None`` for :attr:`default_model`.
        :param messages: a prompt string or a list of ``{role, content}``.
            Several messages are flattened into one prompt
            (``"User: ...\\nAssistant: ...\\nAssistant:"``); system messages
            become ``system_prompt`` unless one is given.
        :param stop: a stop sequence or a list of them (sent comma-joined).
        :param extra_data: more model inputs, merged last (they win).
        :param strict: accepted for the same call shape as the Gradio
            provider; every standard parameter is a Replicate input, so none
            is ever left out.
        :raises SDKError: a typed error for every failure.
        """
        started = time.monotonic()
        model_ref = self.get_model(model)
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
        api_key = self._api_key
        if not api_key:
            raise MissingAuthError(
                f"No Replicate API token: pass api_key=... or set REPLICATE_API_TOKEN (create one at {self.login_url})."
            )
        run = _PredictionRun(
            transport=self._transport,
            base_url=self.base_url,
            auth={"Authorization": f"Bearer {api_key}"},
            model=model_ref,
            inputs=inputs,
            deadline=Deadline(self.timeout.total),
        )
        run.start()
        return TextStream(run, started_at=started)


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
        raise InvalidArgumentError(f"system_prompt must be a string, got {type(system_prompt).__name__}.")
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
            raise InvalidArgumentError(f"extra_data must be a dict, got {type(extra_data).__name__}.")
        inputs.update(extra_data)
    return inputs


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def _check_number(name: str, value: Any, low: float, high: Optional[float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}.")
    if value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise InvalidArgumentError(f"{name} must be {bounds}, got {value!r}.")
    return value


def _join_stop(stop: Union[str, Sequence[str]]) -> str:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, Sequence) or not all(isinstance(s, str) and s for s in sequences):
        raise InvalidArgumentError(f"stop must be a non-empty string or a list of them, got {stop!r}.")
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
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise InvalidArgumentError(f"base_url must be an http(s) URL, got {url!r}.")
    url = url.rstrip("/")
    if re.match(r"^https?://[^/]+$", url):
        url += "/v1"
    return url


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
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._auth = auth
        self._model = model
        self._inputs = inputs
        self._deadline = deadline
        self.id: Optional[str] = None
        self._urls: Dict[str, str] = {}
        self._created: Dict[str, Any] = {}
        self._response: Any = None  # the open stream's requests.Response
        self._cancelled = False
        self._last_event_id: Optional[str] = None
        self._first_event_id: Optional[str] = None

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        """Create the prediction and open its stream."""
        match = _MODEL_REF.match(self._model)
        if match and not match.group("version"):
            url = f"{self._base_url}/models/{match.group('owner')}/{match.group('name')}/predictions"
            body: Dict[str, Any] = {"input": self._inputs}
        else:
            url = f"{self._base_url}/predictions"
            version = match.group("version") if match else self._model
            body = {"version": version, "input": self._inputs}
        action = f"creating a prediction of {self._model}"
        response = self._transport.request(
            "POST",
            url,
            action=action,
            policy=CREATE,
            deadline=self._deadline,
            json=body,
            headers={**self._auth, "Accept": "application/json"},
            model=self._model,
        )
        prediction = self._transport.json(response, action=action)
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            raise ResponseError(
                f"Unexpected answer while {action}: no prediction id. Check the base URL.",
                status_code=response.status_code,
            )
        self.id = prediction["id"]
        urls = prediction.get("urls")
        self._urls = urls if isinstance(urls, dict) else {}
        self._created = prediction
        logger.debug("created prediction %s of %s", self.id, self._model)
        stream_url = self._urls.get("stream")
        if stream_url and prediction.get("status") not in TERMINAL_STATUSES:
            try:
                self._response = self._open_stream(stream_url, last_event_id=None)
            except (APIConnectionError, ServerError, ModelNotFoundError) as exc:
                logger.warning("could not open the stream of prediction %s (%s); polling instead", self.id, exc)

    def _open_stream(self, url: str, *, last_event_id: Optional[str]):
        headers = {**self._auth, "Accept": "text/event-stream", "Cache-Control": "no-store"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return self._transport.open_event_stream(
            url, action=f"streaming prediction {self.id}", deadline=self._deadline, headers=headers
        )

    # -- StreamSource ----------------------------------------------------------

    def chunks(self, delivered: List[str]) -> Iterator[str]:
        try:
            if self._response is None or not (yield from self._stream_events(delivered)):
                if not self._cancelled:
                    yield from self._poll_until_done(delivered)
        finally:
            response, self._response = self._response, None
            if response is not None:
                response.close()

    def interrupt(self) -> None:
        self._transport.interrupt(self._response)

    def cancel(self) -> None:
        self._cancelled = True
        if self.id is None:
            return
        url = self._urls.get("cancel") or f"{self._base_url}/predictions/{self.id}/cancel"
        response = self._transport.request(
            "POST",
            url,
            action=f"canceling prediction {self.id}",
            headers={**self._auth, "Accept": "application/json"},
        )
        response.close()
        logger.info("canceled prediction %s", self.id)

    # -- streaming -------------------------------------------------------------

    def _stream_events(self, delivered: List[str]) -> Generator[str, None, bool]:
        """Yield output chunks from the stream, reconnecting with
        ``Last-Event-ID`` when it breaks; return True once ``done`` says all
        is well, False when the rest must come from polling."""
        resumes = 0
        while True:
            events = EventStream(
                self._transport.iter_bytes(
                    self._response,
                    action=f"streaming prediction {self.id}",
                    deadline=self._deadline,
                )
            )
            first_of_connection = True
            try:
                for batch in events.batches():
                    if first_of_connection:
                        first_of_connection = False
                        event_id = batch[0][1] or None
                        if resumes == 0:
                            self._first_event_id = event_id
                        elif event_id is not None and event_id in (self._first_event_id, self._last_event_id):
                            # The server ignored Last-Event-ID and replays what
                            # was already yielded; polling gives the exact rest.
                            logger.info("the stream of prediction %s replays old events; polling instead", self.id)
                            return False
                    for kind, _event_id, data in batch:
                        if kind == "output":
                            yield data
                        elif kind == "done":
                            return _is_clean_done(data)
                        elif kind == "error":
                            raise error_from_event_data(
                                data, action=f"streaming prediction {self.id}", prediction_id=self.id
                            )
                        elif kind == "logs":
                            logger.debug("prediction %s log: %s", self.id, data)
                        # Other event names are not part of the protocol: ignored.
            except APIConnectionError as exc:
                if not self._cancelled:
                    logger.info("the stream of prediction %s broke: %s", self.id, exc)
            finally:
                if events.last_event_id is not None:
                    self._last_event_id = events.last_event_id
            # The connection ended before "done".
            if self._cancelled:
                return True
            if resumes >= MAX_STREAM_RESUMES:
                return False
            if self._last_event_id is None and delivered:
                return False  # text without ids: a reconnection could repeat it

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
        yet delivered."""
        delivered = "".join(chunks_delivered)
        prediction: Optional[Dict[str, Any]] = (
            self._created if self._created.get("status") in TERMINAL_STATUSES else None
        )
        interval = POLL_INTERVAL
        last_progress = time.monotonic()
        last_status = None
        while True:
            if prediction is None:
                prediction = self._get_prediction()
            status = prediction.get("status")
            text = output_text(prediction.get("output"))
            if not text.startswith(delivered):
                raise self._mismatch_error(prediction, delivered, text)
            if len(text) > len(delivered):
                tail = text[len(delivered) :]
                delivered = text
                last_progress = time.monotonic()
                interval = POLL_INTERVAL
                yield tail
            if status in TERMINAL_STATUSES:
                self._raise_unless_succeeded(prediction)
                return
            if status != last_status:
                last_status, last_progress = status, time.monotonic()
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

    def _get_prediction(self) -> Dict[str, Any]:
        url = self._urls.get("get") or f"{self._base_url}/predictions/{self.id}"
        action = f"polling prediction {self.id}"
        response = self._transport.request(
            "GET",
            url,
            action=action,
            deadline=self._deadline,
            headers={**self._auth, "Accept": "application/json"},
        )
        prediction = self._transport.json(response, action=action)
        if not isinstance(prediction, dict):
            raise ResponseError(f"Unexpected answer while {action}.", status_code=response.status_code)
        return prediction

    def _raise_unless_succeeded(self, prediction: Mapping[str, Any]) -> None:
        status = prediction.get("status")
        if status == "succeeded" or (status == "canceled" and self._cancelled):
            return
        detail = prediction.get("error")
        detail = detail if isinstance(detail, str) else (json.dumps(detail) if detail else "")
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
        raise PredictionError(message, prediction_id=self.id, detail=self._transport.redact(detail))

    def _mismatch_error(self, prediction: Mapping[str, Any], delivered: str, text: str) -> SDKError:
        if prediction.get("data_removed") or (not text and delivered):
            return PredictionError(
                f"The output of prediction {self.id} is no longer available on the server, so the "
                "rest of the text cannot be recovered; the text so far is in the stream's .text.",
                prediction_id=self.id,
            )
        return ResponseError(
            f"The streamed text of prediction {self.id} does not match its final output "
            f"({len(delivered)} characters streamed, {len(text)} in the output). Nothing more was "
            "yielded; fetch the prediction to compare."
        )


def _is_clean_done(data: str) -> bool:
    """``done`` with ``{}`` (or no reason) means success; a ``reason`` such as
    ``canceled`` or ``error`` is confirmed by polling the prediction."""
    try:
        payload = json.loads(data) if data.strip() else {}
    except ValueError:
        return False
    return not (isinstance(payload, dict) and payload.get("reason"))
