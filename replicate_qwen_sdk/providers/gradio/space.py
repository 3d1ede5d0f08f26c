"""Gradio Spaces: any Gradio chat app, spoken to through its queue.

One call runs like this (wire facts in the project's protocol notes):

1. ``GET /config`` (cached per instance) tells the version, protocol, route
   prefix (``/gradio_api`` from Gradio 5 on), components and steps
   (:mod:`.app`); the endpoint is found by ``api_name``, ``fn_index`` or
   its shape, never by a fixed number, with the chain of steps a browser
   runs before it;
2. the chat becomes the component values a page would send
   (:mod:`.browser`): query, history in the Chatbot's own format, system
   prompt, parameters by label;
3. the steps run in one session and the answering one joins the queue
   (:mod:`.run`); its updates (full values, then diffs) become text as the
   app's rendering allows (:mod:`.answer`, :mod:`.rendering`);
   ``process_completed`` ends the answer, or raises the app's error.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from typing import Any, Dict, List, Mapping, Optional

from ...errors import (
    AuthenticationError,
    InvalidArgumentError,
    ModelNotFoundError,
    ServerError,
)
from ...images import Image, load_image
from ...messages import Message, Messages, chat_images, normalize_messages, split_system
from ...redaction import shown_name, shown_url, without_userinfo
from ...retry import DEFAULT_MAX_RETRIES
from ...stream import TextStream, cancel_on_interrupt
from ...timeouts import Deadline, TimeoutLike
from ...sse import DEFAULT_MAX_EVENT_SIZE
from ...transport import DEFAULT_MAX_BODY_SIZE, DEFAULT_POOL_SIZE
from ..base import Provider, check_headers, check_json_value, class_or_instance_method, pop_extra_body
from .app import App, parse_config
from .run import QueueRun

__all__ = ["GradioSpace", "Qwen_Qwen_2_72B", "space_url"]

logger = logging.getLogger("replicate_qwen_sdk")

_SPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def space_url(src: str) -> str:
    """The base URL of ``src``: a URL as given (without trailing slash), or a
    Space id ``owner/name`` → ``https://owner-name.hf.space``."""
    # The value is shown without credentials, query or fragment: any of them may hold a secret.
    if not isinstance(src, str) or not src.strip():
        raise InvalidArgumentError(
            f"src must be a URL or a Space id like 'owner/name', got {shown_url(src)!r}.", argument="src"
        )
    src = src.strip()
    if re.match(r"^https?://", src):
        if "?" in src or "#" in src:
            raise InvalidArgumentError(
                f"src must be the app's URL without a query or fragment ('?...' or '#...'), "
                f"got {shown_url(src)!r} with one.",
                argument="src",
            )
        return src.rstrip("/")
    if _SPACE_ID.match(src):
        host = re.sub(r"[^a-z0-9-]", "-", src.lower().replace("/", "-"))
        return f"https://{host}.hf.space"
    raise InvalidArgumentError(
        f"src must be an http(s) URL or a Space id like 'owner/name', got {shown_url(src)!r}.", argument="src"
    )


#: What a failed ``GET /config`` means for a Space, and what to do about it.
_CONFIG_FAILURES = {
    AuthenticationError: "The app at {url} refused access (HTTP {status}): it is private or gated. "
    "Pass hf_token= (or set HF_TOKEN) with a token that can read it.",
    ModelNotFoundError: "No Gradio app at {url} (HTTP {status}): the Space may not exist, be private "
    "(pass hf_token= or set HF_TOKEN), or be paused. Check the id or URL.",
    ServerError: "The app at {url} is not running (HTTP {status}): a Space that is asleep, building or paused "
    "answers like this. Open it in a browser to wake it, then retry.",
}


class GradioSpace(Provider):
    """Stream text from a Gradio chat app: a Hugging Face Space or any URL.

    Safe to share between threads. The app's layout (``/config``) is read
    once per instance and refreshed once if the app no longer knows the
    endpoint.

    :param src: the app's URL, or a Space id (``"Qwen/Qwen2-72B-Instruct"``).
    :param api_name: the endpoint to call (``"/chat"``); by default the app's
        chat endpoint is found from its layout.
    :param fn_index: the step to call by its number in the app's layout, for
        an app whose chat step has no name; the steps wired before it run
        first, as in a browser.
    :param strict: make a standard parameter (``max_tokens``,
        ``temperature``, ``top_p``, ``top_k``, ``stop``) that the app has no
        input for an error; by default it is left out with a warning and
        listed in the stream's ``ignored_parameters``.
    :param hf_token: a Hugging Face token for private or gated Spaces;
        defaults to ``HF_TOKEN``. Sent only as a ``Bearer`` header, never shown.
    :param timeout: a :class:`~replicate_qwen_sdk.Timeout` or seconds.
    :param max_retries: retries per request after the first attempt (a full
        queue is retried with backoff).
    :param proxy: a proxy URL; unset, the standard proxy variables apply.
    :param headers: more headers for every request (a gateway's key, a
        tracing id), copied when given. They cannot set ``Authorization``
        (``hf_token`` goes there) nor the headers the protocol sets
        (``Accept``, ``Content-Type`` ...); their values are masked in
        error messages like the token.
    :param max_event_size: the most bytes one streamed event may take
        (default 4 MiB); a larger one raises
        :class:`~replicate_qwen_sdk.ResponseTooLargeError`.
    :param max_body_size: the most bytes (decoded) an answer that is not a
        stream may take (default 32 MiB).
    """

    label = "Gradio Space"
    working = True
    needs_auth = False
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
    instance_settings = (
        "src",
        "api_name",
        "fn_index",
        "strict",
        "hf_token",
        "timeout",
        "max_retries",
        "proxy",
        "pool_size",
        "headers",
        "max_event_size",
        "max_body_size",
    )
    #: The endpoint to prefer when ``api_name`` is not given.
    default_api_name: Optional[str] = None

    def __init__(
        self,
        src: str,
        *,
        api_name: Optional[str] = None,
        fn_index: Optional[int] = None,
        strict: bool = False,
        hf_token: Optional[str] = None,
        timeout: TimeoutLike = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        proxy: Optional[str] = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        headers: Optional[Mapping[str, str]] = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.src = src
        self.base_url = space_url(src)
        self.api_name = api_name
        self.fn_index = _check_fn_index(fn_index)
        self.strict = bool(strict)
        self._warned: set = set()
        self._hf_token = self._credential(hf_token, "HF_TOKEN", "hf_token")
        self._custom_headers = check_headers(headers)
        self.base_url = self._connect(  # type: ignore[assignment]
            headers=self._custom_headers,
            timeout=timeout,
            max_retries=max_retries,
            proxy=proxy,
            pool_size=pool_size,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
            secret=self._hf_token,
            url=self.base_url,
            url_argument="src",
        )
        self._app: Optional[App] = None
        self._app_lock = threading.Lock()
        if type(self).default_model == "":
            # The Space's own model name is listed and shown: never with a password.
            self.default_model = without_userinfo(src)
            self.models = [self.default_model]

    def __repr__(self) -> str:
        token = "set" if self._hf_token else "none"
        src = shown_name(self.src)
        headers = f", headers=<{', '.join(self._custom_headers)}>" if self._custom_headers else ""  # names only
        return f"{type(self).__name__}(src={src!r}, api_name={self.api_name!r}, hf_token=<{token}>{headers})"

    @class_or_instance_method
    def get_model(self, model: Optional[str]) -> str:
        """As :meth:`Provider.get_model`; ``src`` as given (a URL with a
        password) also names this Space's model."""
        if isinstance(model, str) and model == getattr(self, "src", None):
            return self.default_model
        return super().get_model(model)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["_app_lock"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._app_lock = threading.Lock()

    # -- the app's layout ------------------------------------------------------

    def app(self, *, refresh: bool = False) -> App:
        """The app's layout from ``/config`` (cached; ``refresh`` re-reads it)."""
        app = self._app
        if app is not None and not refresh:
            return app
        with self._app_lock:
            if self._app is None or refresh and self._app is app:
                self._app = self._fetch_app()
            return self._app

    def _fetch_app(self) -> App:
        shown = shown_url(self.base_url)
        action = f"reading the app's layout from {shown}/config"
        try:
            response = self._transport.request("GET", f"{self.base_url}/config", action=action, headers=self._headers())
        except (AuthenticationError, ModelNotFoundError, ServerError) as exc:
            kind = next(kind for kind in _CONFIG_FAILURES if isinstance(exc, kind))
            message = _CONFIG_FAILURES[kind].format(url=shown, status=exc.status_code)
            raise kind(message, status_code=exc.status_code, detail=exc.detail) from None
        app = parse_config(self._transport.json(response, action=action))
        logger.debug(
            "app at %s: Gradio %s, %s, prefix %r, %d endpoints",
            shown,
            app.version,
            app.protocol,
            app.api_prefix,
            len(app.endpoints),
        )
        return app

    def _warn_ignored(self, route: str, names: "tuple[str, ...]") -> None:
        """Say once per endpoint and set of names that they were left out."""
        key = (route, names)
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(
                "%s has no input for %s: left out of the call (strict=True makes this an error)",
                route,
                ", ".join(names),
            )

    def _headers(self, accept: str = "application/json") -> Dict[str, str]:
        headers = {**self._custom_headers, "Accept": accept}
        if self._hf_token:
            headers["Authorization"] = f"Bearer {self._hf_token}"
        return headers

    # -- the call ---------------------------------------------------------------

    def stream(
        self,
        model: Optional[str],
        messages: Messages,
        *,
        system_prompt: Optional[str] = None,
        api_name: Optional[str] = None,
        fn_index: Optional[int] = None,
        strict: Optional[bool] = None,
        _optional: frozenset = frozenset(),  # create_completion's keywords: left out where no input takes them
        **params: Any,
    ) -> TextStream:
        """Send the chat to the app and return a :class:`TextStream` of the answer.

        The app is joined (and its stream opened) before this returns, so a
        missing app, an unknown endpoint or a full queue raises here.

        :param model: ``None``, this Space's model name, or an alias.
        :param messages: a prompt or a list of ``{role, content}``; the last
            message is the user's question, the ones before it are sent as
            the Chatbot's history. Images in the last message
            (``{"type": "image_url", "image_url": {"url": ...}}`` parts) go
            in the app's ``MultimodalTextbox``: local files and ``data:``
            URIs uploaded through the app's upload route, http(s) URLs
            passed on for the app to fetch. An endpoint whose message box
            takes no files is refused before anything is sent, as are
            images in earlier messages (a history carries text only).
        :param system_prompt: overrides the system messages.
        :param api_name: the endpoint for this call (else the instance's).
        :param fn_index: the step for this call, by number (else the instance's).
        :param strict: overrides the instance's ``strict`` for this call.
        :param params: values for the app's other inputs, by label
            (``max_tokens``/``temperature``/``top_p``/``top_k``/``stop`` also
            match labels such as "Max new tokens", "Top-p"). A standard one
            the app has no input for is left out (see ``strict``); any other
            name no input matches is an error.
        """
        started = time.monotonic()
        self.get_model(model)
        chat = normalize_messages(messages)
        system, conversation = split_system(chat)
        if system_prompt is not None:
            if not isinstance(system_prompt, str):
                raise InvalidArgumentError(f"system_prompt must be a string, got {type(system_prompt).__name__}.")
            system = system_prompt
        for name, value in params.items():
            check_json_value(name, value, argument=name)
        if not conversation or conversation[-1].role != "user":
            raise InvalidArgumentError("The last message must be the user's (role 'user'): it is what the app answers.")
        query, history = conversation[-1].content, conversation[:-1]
        images = _last_message_images(chat)
        if fn_index is not None:
            _check_fn_index(fn_index)
        elif api_name is None:
            fn_index = self.fn_index
        run = QueueRun(
            self,
            api_name or self.api_name,
            fn_index,
            self.strict if strict is None else bool(strict),
            query,
            history,
            system,
            params,
            Deadline(self.timeout.total),
            optional=_optional,
            images=images,
        )
        with cancel_on_interrupt(run):  # Ctrl-C after the run exists stops it there
            run.start()
        return TextStream(run, started_at=started)

    def _g4f_stream(self, model: Optional[str], messages: Messages, kwargs: Dict[str, Any]) -> TextStream:
        """:meth:`stream` with g4f-style keywords: every keyword not named by
        :meth:`stream` goes to the app's input with that label if it has one,
        else it is left out with a warning (as ``max_tokens`` is), while
        ``extra_body`` entries must match inputs."""
        params = dict(kwargs)
        extra_body = pop_extra_body(params)
        named = {name: params.pop(name) for name in _CALL_SETTINGS if name in params}
        # Settings of the instance (hf_token, proxy ...) given to a call on it.
        self._warn_g4f_ignored([name for name in params if name in self.instance_settings])
        params = {name: value for name, value in params.items() if name not in self.instance_settings}
        optional = frozenset(params)
        clash = sorted(key for key in extra_body if key in params and params[key] != extra_body[key])
        if clash:
            raise InvalidArgumentError(
                f"extra_body and the keywords both set {', '.join(map(repr, clash))}, to different values; "
                "give each once.",
                argument="extra_body",
            )
        params.update(extra_body)
        return self.stream(model, messages, **named, _optional=optional - set(extra_body), **params)


#: The keywords :meth:`GradioSpace.stream` names (the rest are app inputs).
_CALL_SETTINGS = ("system_prompt", "api_name", "fn_index", "strict")


def _last_message_images(chat: List[Message]) -> List[Image]:
    """The images of the chat's last (user) message, checked and read.

    :raises InvalidArgumentError: for an image in an earlier message (a
        Gradio chat history is sent as text), or one that cannot be read.
    """
    last = max(index for index, message in enumerate(chat) if message.role != "system")
    images = []
    for where, url in chat_images(chat):
        if not where.endswith(f" of messages[{last}]"):
            raise InvalidArgumentError(
                f"The chat has an image before its last message ({where}); a Gradio app gets the earlier "
                "messages as its chat history, in text only. Send images with the last message."
            )
        images.append(load_image(url, where=where))
    return images


def _check_fn_index(fn_index: Any) -> Optional[int]:
    if fn_index is not None and (not isinstance(fn_index, int) or isinstance(fn_index, bool) or fn_index < 0):
        raise InvalidArgumentError(f"fn_index must be a step number (an int >= 0), got {fn_index!r}.")
    return fn_index


class Qwen_Qwen_2_72B(GradioSpace):
    """The Qwen2-72B-Instruct Space (``Qwen/Qwen2-72B-Instruct``).

    ``Qwen_Qwen_2_72B(url=...)`` points it at a mirror or a local copy of the
    app; without ``url``, the ``QWEN_SPACE_URL`` environment variable does,
    else it is the Space itself. Other keywords are those of
    :class:`GradioSpace`.
    """

    label = "Qwen Qwen-2.72B"
    url = "https://qwen-qwen2-72b-instruct.hf.space"
    api_endpoint = "https://qwen-qwen2-72b-instruct.hf.space/queue/join?"
    working = True
    supports_stream = True
    supports_system_message = True
    supports_message_history = True
    default_model = "qwen-qwen2-72b-instruct"
    model_aliases = {"qwen-2-72b": default_model}
    models = list(model_aliases)
    default_api_name = "model_chat"
    instance_settings = (
        "url",
        "api_name",
        "fn_index",
        "strict",
        "hf_token",
        "timeout",
        "max_retries",
        "proxy",
        "pool_size",
        "headers",
        "max_event_size",
        "max_body_size",
    )

    def __init__(self, url: Optional[str] = None, **settings: Any) -> None:
        super().__init__(url or os.environ.get("QWEN_SPACE_URL", "").strip() or type(self).url, **settings)
