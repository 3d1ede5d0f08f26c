"""What every provider shares: model naming, complete(), g4f-style calls."""

from __future__ import annotations

import abc
import functools
import inspect
import json
import logging
import os
import re
import threading
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Set, Tuple

from ..errors import InvalidArgumentError, ModelNotFoundError
from ..messages import Messages
from ..redaction import shown_name, url_secrets, without_userinfo
from ..stream import TextStream
from ..timeouts import Timeout, TimeoutLike
from ..sse import DEFAULT_MAX_EVENT_SIZE
from ..transport import DEFAULT_MAX_BODY_SIZE, Transport

__all__ = [
    "Provider",
    "check_headers",
    "check_json_value",
    "check_model_name",
    "class_or_instance_method",
    "header_secrets",
]

logger = logging.getLogger("replicate_qwen_sdk")

#: Headers the SDK sets itself: a custom ``headers=`` mapping may not name
#: them (``Authorization`` carries the provider's token; the others are set
#: per request as the protocol needs).
RESERVED_HEADERS = frozenset(
    {"authorization", "accept", "content-type", "content-length", "host", "transfer-encoding", "last-event-id"}
)
#: Custom header values this long or longer are masked in error messages
#: (they may be a gateway's key); shorter ones ("1", "yes") cannot be
#: secrets, and masking them would garble every message.
SECRET_MIN_LENGTH = 6
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_model_name(model: Any) -> None:
    """Refuse a ``model`` that is neither a name (a string) nor ``None``.

    :raises InvalidArgumentError: naming the type given.
    """
    if model is not None and not isinstance(model, str):
        raise InvalidArgumentError(
            f"model must be a model name or alias (a string), or None for the default; got {type(model).__name__}.",
            argument="model",
        )


def check_headers(headers: Any) -> Dict[str, str]:
    """A copy of the custom ``headers`` a provider sends with every request.

    Names must be HTTP header names, values strings a header can carry (no
    line breaks), no name twice in different case, and none of the headers
    the SDK sets itself (:data:`RESERVED_HEADERS`, ``Authorization`` above
    all: the token goes there). Values are never shown in messages.

    :raises InvalidArgumentError: naming the header at fault.
    """
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgumentError(
            f"headers must be a dict of header names to values, got {type(headers).__name__}.", argument="headers"
        )
    checked: Dict[str, str] = {}
    seen: Dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidArgumentError(
                f"headers: {name!r} is not an HTTP header name (letters, digits and - _ . ! # $ % & ' * + ^ ` | ~).",
                argument="headers",
            )
        lowered = name.lower()
        if lowered == "authorization":
            raise InvalidArgumentError(
                "headers may not set Authorization: the SDK sends the provider's token there (api_key= or "
                "hf_token=, or their environment variables). A gateway's own key goes in a header of its own "
                "(such as 'cf-aig-authorization').",
                argument="headers",
            )
        if lowered in RESERVED_HEADERS:
            raise InvalidArgumentError(
                f"headers may not set {name}: the SDK sets it on each request as the protocol needs.",
                argument="headers",
            )
        if lowered in seen:
            raise InvalidArgumentError(
                f"headers names {seen[lowered]!r} and {name!r}: header names ignore case, give it once.",
                argument="headers",
            )
        if not isinstance(value, str):
            raise InvalidArgumentError(
                f"headers[{name!r}] must be a string, got {type(value).__name__}.", argument="headers"
            )
        if not value.isprintable() or not _is_latin1(value):
            raise InvalidArgumentError(
                f"headers[{name!r}] contains a line break, control character or a character HTTP headers "
                "cannot carry (the value is not shown).",
                argument="headers",
            )
        seen[lowered] = name
        checked[name] = value
    return checked


def header_secrets(headers: Mapping[str, str]) -> Tuple[str, ...]:
    """The custom header values to mask in error messages (see
    :data:`SECRET_MIN_LENGTH`)."""
    return tuple(value for value in headers.values() if len(value.strip()) >= SECRET_MIN_LENGTH)


def _is_latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def check_json_value(name: str, value: Any, *, argument: str) -> None:
    """Refuse a value that cannot be sent as JSON: a set, a dict with
    non-string keys such as tuples, ``inf`` or ``NaN``, a cycle ...

    :param name: how the message names the value (``"extra_data['seed']"``).
    :param argument: the parameter it belongs to (see
        :attr:`InvalidArgumentError.argument`).
    :raises InvalidArgumentError: saying what JSON could not carry.
    """
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"{name} cannot be sent as JSON ({exc}); use strings, finite numbers, booleans, None, "
            "and lists and dicts with string keys.",
            argument=argument,
        ) from None


def pop_extra_body(params: Dict[str, Any]) -> Dict[str, Any]:
    """Remove g4f's ``extra_body`` from ``params`` and return it (checked:
    a dict with string keys and JSON values); ``{}`` when absent."""
    extra_body = params.pop("extra_body", None)
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping):
        raise InvalidArgumentError(
            f"extra_body must be a dict of model inputs, got {type(extra_body).__name__}.", argument="extra_body"
        )
    for key, value in extra_body.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(
                f"extra_body keys must be input names (strings), got {key!r}.", argument="extra_body"
            )
        check_json_value(f"extra_body[{key!r}]", value, argument="extra_body")
    return dict(extra_body)


_STREAM_PARAMETERS: Dict[type, frozenset] = {}
_G4F_WARNED: Set[Tuple[str, Tuple[str, ...]]] = set()
_G4F_WARNED_LOCK = threading.Lock()


class _instance_or_class_method:
    """A method that runs on the instance it is called on, or, called on the
    class, on a short-lived instance built from the keyword arguments the
    constructor accepts (the g4f calling convention)."""

    def __init__(self, function):
        self._function = function
        functools.update_wrapper(self, function)

    def __get__(self, instance, owner):
        if instance is not None:
            return functools.partial(self._function, instance)

        @functools.wraps(self._function)
        def on_temporary_instance(*args: Any, **kwargs: Any):
            settings = {name: kwargs.pop(name) for name in owner.instance_settings if name in kwargs}
            provider = owner(**settings)
            try:
                result = self._function(provider, *args, **kwargs)
            except BaseException:
                provider.close()
                raise
            if isinstance(result, TextStream):
                result.add_done_callback(lambda _stream: provider.close())
            else:
                provider.close()
            return result

        return on_temporary_instance


class class_or_instance_method:
    """A method that receives the instance when called on one, else the
    class: instance attributes (a Space's own model name) then win over the
    class's."""

    def __init__(self, function):
        self._function = function
        functools.update_wrapper(self, function)

    def __get__(self, instance, owner):
        return functools.partial(self._function, owner if instance is None else instance)


class Provider(abc.ABC):
    """Base class of the providers.

    Class attributes describe the provider as the seed documents did;
    instances hold connection settings and are safe to share between threads.
    """

    label: ClassVar[str] = ""
    url: ClassVar[str] = ""
    working: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    # Not ClassVars: a GradioSpace instance names its own Space's model.
    default_model: str = ""
    models: List[str] = []
    model_aliases: Dict[str, str] = {}
    #: Constructor keywords that create_completion() called on the class
    #: uses to build its temporary instance.
    instance_settings: ClassVar[tuple] = ("timeout", "max_retries", "proxy")
    _transport: "Transport"

    @class_or_instance_method
    def get_model(self, model: Optional[str]) -> str:
        """Resolve a model name: empty → the default, alias → its target.
        Callable on the class or on an instance.

        :raises ModelNotFoundError: for a name this provider does not serve.
        """
        check_model_name(model)
        if not model:
            return self.default_model
        if model in self.model_aliases:
            return self.model_aliases[model]
        if model in self.models or model == self.default_model:
            return model
        return self._resolve_other_model(model)

    @class_or_instance_method
    def _resolve_other_model(self, model: str) -> str:
        known = sorted({self.default_model, *self.models, *self.model_aliases})
        name = self.__name__ if isinstance(self, type) else type(self).__name__
        raise ModelNotFoundError(
            f"Model not found: {shown_name(model)!r} is not served by {name}. "
            f"Known models and aliases: {', '.join(known)}."
        )

    @abc.abstractmethod
    def stream(self, model: Optional[str], messages: Messages, **params: Any) -> TextStream:
        """Start the model and return a :class:`TextStream` of its answer."""

    def complete(self, model: Optional[str], messages: Messages, **params: Any) -> str:
        """Run the model and return the whole answer. Takes the same
        arguments as :meth:`stream`."""
        with self.stream(model, messages, **params) as stream:
            return stream.read()

    @_instance_or_class_method
    def create_completion(self, model: Optional[str], messages: Messages, stream: bool = False, **kwargs: Any):
        """g4f-style entry point.

        Callable on an instance, or on the class with the constructor's
        keywords mixed in (``api_key=``, ``proxy=``, ``timeout=`` ...), as g4f
        callers do. Returns the whole text when ``stream`` is false, else an
        iterator of text chunks; ``"".join(...)`` works on both.

        Other keywords are taken the way g4f takes them: ``extra_body`` (a
        dict) is merged into the model's inputs, and a keyword this provider
        has no parameter for (a g4f flag such as ``web_search`` or
        ``conversation``) is left out with a warning logged once, instead of
        raising ``TypeError``. :meth:`stream` itself stays strict.

        :raises InvalidArgumentError: for a malformed ``extra_body``, or one
            that sets an input another argument sets to something else.
        """
        text_stream = self._g4f_stream(model, messages, kwargs)
        if stream:
            return text_stream
        with text_stream:
            return text_stream.read()

    def _g4f_stream(self, model: Optional[str], messages: Messages, kwargs: Dict[str, Any]) -> TextStream:
        """:meth:`stream` called with g4f-style keywords (see :meth:`create_completion`)."""
        params = dict(kwargs)
        extra_body = pop_extra_body(params)
        accepted = self._stream_parameters()
        self._warn_g4f_ignored([name for name in params if name not in accepted])
        params = {name: value for name, value in params.items() if name in accepted}
        if extra_body:
            params = self._with_extra_body(params, extra_body)
        return self.stream(model, messages, **params)

    def _stream_parameters(self) -> frozenset:
        """The keyword parameters :meth:`stream` names."""
        cls = type(self)
        names = _STREAM_PARAMETERS.get(cls)
        if names is None:
            parameters = list(inspect.signature(cls.stream).parameters.values())[3:]  # self, model, messages
            names = frozenset(p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
            _STREAM_PARAMETERS[cls] = names
        return names

    def _with_extra_body(self, params: Dict[str, Any], extra_body: Mapping[str, Any]) -> Dict[str, Any]:
        """``params`` with ``extra_body`` merged into the model's inputs
        (here: ``extra_data``, the inputs :meth:`stream` sends as they are)."""
        if "extra_data" not in self._stream_parameters():
            raise InvalidArgumentError(
                f"{type(self).__name__} takes no extra model inputs, so extra_body cannot be sent.",
                argument="extra_body",
            )
        extra_data = params.get("extra_data")
        if extra_data is not None and not isinstance(extra_data, Mapping):
            raise InvalidArgumentError(
                f"extra_data must be a dict, got {type(extra_data).__name__}.", argument="extra_data"
            )
        merged = dict(extra_data or {})
        clash = sorted(key for key in extra_body if key in merged and merged[key] != extra_body[key])
        if clash:
            raise InvalidArgumentError(
                f"extra_body and extra_data both set {', '.join(map(repr, clash))}, to different values; "
                "give each once.",
                argument="extra_body",
            )
        merged.update(extra_body)
        return {**params, "extra_data": merged}

    def _warn_g4f_ignored(self, names: List[str]) -> None:
        """Say once per provider class and set of names that create_completion
        left them out (names only: a value may be a credential)."""
        if not names:
            return
        name = type(self).__name__
        key = (name, tuple(sorted(names)))
        with _G4F_WARNED_LOCK:
            if key in _G4F_WARNED:
                return
            _G4F_WARNED.add(key)
        settings = sorted(set(names) & set(self.instance_settings))
        hint = (
            f"; {', '.join(settings)} configure a provider: give them to its constructor, or call "
            f"{name}.create_completion on the class"
            if settings
            else "; model inputs go in extra_body={...}"
        )
        logger.warning(
            "%s.create_completion left out %s: %s has no such parameter%s", name, ", ".join(key[1]), name, hint
        )

    # -- for subclasses' constructors ------------------------------------------

    @staticmethod
    def _credential(value: Optional[str], variable: str, name: str) -> Optional[str]:
        """``value``, else the environment ``variable``; stripped, ``None`` when empty.

        A token with a space, line break, control or non-ASCII character
        inside cannot be sent in a header (and the HTTP library would quote
        it in its error), so it is refused here, without being shown.
        """
        if value is None:
            value = os.environ.get(variable)
        if value is not None and not isinstance(value, str):
            raise InvalidArgumentError(f"{name} must be a string, got {type(value).__name__}.")
        token = (value or "").strip() or None
        if token is not None and not (token.isascii() and token.isprintable() and " " not in token):
            raise InvalidArgumentError(
                f"{name} (or {variable}) contains a space, line break or other character no token has; "
                "copy it again (the value is not shown here)."
            )
        return token

    def _connect(
        self,
        *,
        timeout: TimeoutLike,
        max_retries: int,
        proxy: Optional[str],
        pool_size: int,
        secret: Optional[str],
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        url: Optional[str] = None,
        url_argument: str = "url",
        headers: Optional[Mapping[str, str]] = None,
    ) -> Optional[str]:
        """Set ``timeout`` and this instance's own :class:`Transport`, which
        masks ``secret``, the credentials in ``url`` (``user:password@``) and
        the values of custom ``headers`` (checked already) wherever a server
        or a library repeats them.

        :returns: ``url`` as requests are sent to it: with a token set, any
            ``user:password@`` is taken out (with a warning), since a request
            has one ``Authorization`` header and the URL's (Basic) would
            replace the token's. Without a token the URL's credentials are
            sent as HTTP Basic auth (a gateway that asks for it).
        """
        secrets_of_url = url_secrets(url)
        if secret and secrets_of_url:
            logger.warning(
                "%s carries a user name or password (user:password@host); they are not sent, since the token "
                "is (a request has one Authorization header). Put a gateway's own key in headers=... instead.",
                url_argument,
            )
            url = without_userinfo(url)  # type: ignore[arg-type]
        self.timeout = Timeout.coerce(timeout)
        self._transport = Transport(
            timeout=self.timeout,
            max_retries=max_retries,
            proxy=proxy,
            pool_size=pool_size,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
            secrets=(secret, *secrets_of_url, *header_secrets(headers or {})),
        )
        return url

    def close(self) -> None:
        """Release pooled connections."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
