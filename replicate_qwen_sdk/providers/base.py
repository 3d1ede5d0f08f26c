"""What every provider shares: model naming, complete(), g4f-style calls."""

from __future__ import annotations

import abc
import functools
import json
import os
from typing import Any, ClassVar, Dict, List, Optional

from ..errors import InvalidArgumentError, ModelNotFoundError
from ..messages import Messages
from ..stream import TextStream
from ..timeouts import Timeout, TimeoutLike
from ..transport import Transport

__all__ = ["Provider", "check_json_value", "check_model_name", "class_or_instance_method"]


def check_model_name(model: Any) -> None:
    """Refuse a ``model`` that is neither a name (a string) nor ``None``.

    :raises InvalidArgumentError: naming the type given.
    """
    if model is not None and not isinstance(model, str):
        raise InvalidArgumentError(
            f"model must be a model name or alias (a string), or None for the default; got {type(model).__name__}.",
            argument="model",
        )


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
            f"Model not found: {model!r} is not served by {name}. Known models and aliases: {', '.join(known)}."
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
        """
        if stream:
            return self.stream(model, messages, **kwargs)
        return self.complete(model, messages, **kwargs)

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
        self, *, timeout: TimeoutLike, max_retries: int, proxy: Optional[str], pool_size: int, secret: Optional[str]
    ) -> None:
        """Set ``timeout`` and this instance's own :class:`Transport`."""
        self.timeout = Timeout.coerce(timeout)
        self._transport = Transport(
            timeout=self.timeout, max_retries=max_retries, proxy=proxy, pool_size=pool_size, secrets=(secret,)
        )

    def close(self) -> None:
        """Release pooled connections."""
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
