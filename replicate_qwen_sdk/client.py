"""Client: one object for every provider, routing each call by model name."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Union

from .background import DEFAULT_BUFFER_CHUNKS, BackgroundStream
from .concurrency import DEFAULT_MAX_WORKERS, cancel_on_stop, run_all
from .errors import InvalidArgumentError, ModelNotFoundError
from .messages import Messages
from .progress import ProgressOption, counting, progress_bar
from .openai_shape import Chat
from .providers.base import Provider, check_headers, check_model_name
from .providers.gradio import GradioSpace, Qwen_Qwen_2_72B
from .providers.replicate import Replicate
from .redaction import shown_name
from .retry import DEFAULT_MAX_RETRIES
from .stream import TextStream
from .timeouts import Timeout, TimeoutLike
from .sse import DEFAULT_MAX_EVENT_SIZE
from .transport import DEFAULT_MAX_BODY_SIZE, DEFAULT_POOL_SIZE

__all__ = ["Client", "RoutableModel"]

ProviderLike = Union[str, Provider]


class RoutableModel(NamedTuple):
    """A name :meth:`Client.stream` accepts, and where it goes."""

    name: str
    provider: str
    #: The model the name stands for, when it is an alias.
    alias_of: Optional[str] = None
    #: What the provider says of the model (models listed by the server).
    description: str = ""


class Client:
    """Both providers behind one object.

    Build it from provider instances, or from settings that build the
    default providers (``Replicate`` and ``Qwen_Qwen_2_72B``) on first use::

        client = Client(replicate_api_key="r8_...", timeout=60)
        client.complete("qwen-2-72b", "Hello")                 # → the Qwen Space
        client.complete("meta/meta-llama-3-8b-instruct", "Hi")  # → Replicate

    A model is routed to the provider that names it (an alias, a default
    model, a Space id), else ``owner/name`` goes to Replicate; ``provider=``
    (a provider's name or instance) overrides. Thread-safe: share one client
    between threads. It pickles (for process pools and Dask): sessions are
    rebuilt where it lands; credentials travel, but never appear in ``repr``
    or logs.

    :param providers: provider instances, tried in order when routing.
    :param replicate_api_key: else ``REPLICATE_API_TOKEN``.
    :param replicate_base_url: else ``REPLICATE_BASE_URL``, else the public API.
    :param qwen_url: where the Qwen preset points (a mirror, a local copy);
        else ``QWEN_SPACE_URL``, else the Space.
    :param hf_token: else ``HF_TOKEN``.
    :param replicate_headers: more headers for every Replicate request (a
        gateway's key); see :class:`Replicate`.
    :param qwen_headers: more headers for every request to the Qwen app.
    :param max_event_size: the most bytes one streamed event may take
        (default 4 MiB), for every provider built here.
    :param max_body_size: the most bytes an answer that is not a stream may
        take (default 32 MiB).
    """

    def __init__(
        self,
        providers: Optional[Iterable[Provider]] = None,
        *,
        replicate_api_key: Optional[str] = None,
        replicate_base_url: Optional[str] = None,
        qwen_url: Optional[str] = None,
        hf_token: Optional[str] = None,
        replicate_headers: Optional[Mapping[str, str]] = None,
        qwen_headers: Optional[Mapping[str, str]] = None,
        timeout: TimeoutLike = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        proxy: Optional[str] = None,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self._lock = threading.Lock()
        self._settings: Dict[str, Any] = dict(
            # The timeout is checked now, not at the first call.
            timeout=Timeout.coerce(timeout),
            max_retries=max_retries,
            proxy=proxy,
            pool_size=pool_size,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
        )
        # Headers are checked (and copied) now, not at the first call.
        self._replicate_settings: Dict[str, Any] = dict(
            api_key=replicate_api_key, base_url=replicate_base_url, headers=check_headers(replicate_headers)
        )
        self._qwen_settings: Dict[str, Any] = dict(url=qwen_url, hf_token=hf_token, headers=check_headers(qwen_headers))
        if providers is not None:
            given = list(providers)
            if not given or not all(isinstance(p, Provider) for p in given):
                raise InvalidArgumentError("providers must be a non-empty list of provider instances.")
            self._providers: Optional[List[Provider]] = given
        else:
            self._providers = None

    # -- providers ---------------------------------------------------------------

    @property
    def providers(self) -> List[Provider]:
        """The providers, built on first use from the client's settings."""
        providers = self._providers
        if providers is None:
            with self._lock:
                if self._providers is None:
                    self._providers = [
                        Replicate(**self._replicate_settings, **self._settings),
                        Qwen_Qwen_2_72B(**self._qwen_settings, **self._settings),
                    ]
                providers = self._providers
        return providers

    def provider_for(
        self, model: Optional[str], provider: Optional[ProviderLike] = None, *, deployment: Optional[str] = None
    ) -> Provider:
        """The provider a call with ``model`` (and ``provider=``) goes to; a
        call with ``deployment=`` (a Replicate deployment) goes to Replicate.

        :raises ModelNotFoundError: listing what is available.
        """
        check_model_name(model)
        if isinstance(provider, Provider):
            return provider
        providers = self.providers
        if provider is None and deployment is not None:
            for candidate in providers:
                if isinstance(candidate, Replicate):
                    return candidate
            raise ModelNotFoundError(
                "deployment= names a Replicate deployment, and this client has no Replicate provider."
            )
        if provider is not None:
            wanted = _normalize(provider)
            for candidate in providers:
                if wanted in _names_of(candidate):
                    return candidate
            raise ModelNotFoundError(
                f"No provider named {provider!r}; this client has: {', '.join(type(p).__name__ for p in providers)}."
            )
        if not model:
            return providers[0]
        for candidate in providers:  # a provider that names the model exactly
            if model in candidate.model_aliases or model == candidate.default_model or model in candidate.models:
                return candidate
        for candidate in providers:  # else one that accepts the name's form (Replicate: owner/name)
            try:
                candidate.get_model(model)
            except ModelNotFoundError:
                continue
            return candidate
        available = ", ".join(sorted({m.name for m in self.models()}))
        replicate = any(isinstance(p, Replicate) for p in providers)
        raise ModelNotFoundError(
            f"Model not found: no provider of this client serves {shown_name(model)!r}. Available: {available}"
            + (" (and any Replicate 'owner/name' or 'deployments/owner/name')." if replicate else ".")
        )

    def models(self, *, remote: bool = False) -> List[RoutableModel]:
        """Every model name and alias this client routes, with its provider.

        :param remote: also the models Replicate lists in its
            ``language-models`` collection (see :meth:`Replicate.list_models`;
            one request per Replicate provider). Without it, the list is the
            providers' own, and no request is made.
        :raises SDKError: (``remote`` only) when Replicate cannot be read.
        """
        listed: Dict[str, RoutableModel] = {}
        for provider in self.providers:
            label = type(provider).__name__
            for name in (provider.default_model, *provider.models):
                if name and name not in listed and name not in provider.model_aliases:
                    listed[name] = RoutableModel(name, label)
            for alias, target in provider.model_aliases.items():
                listed.setdefault(alias, RoutableModel(alias, label, target))
        if remote:
            for provider in self.providers:
                if isinstance(provider, Replicate):
                    for info in provider.list_models():
                        entry = listed.get(info.name)
                        if entry is None or entry.provider == type(provider).__name__:
                            listed[info.name] = RoutableModel(
                                info.name, type(provider).__name__, description=info.description
                            )
        return list(listed.values())

    # -- calls -------------------------------------------------------------------------

    @property
    def chat(self) -> Chat:
        """The OpenAI call shape: ``client.chat.completions.create(model=...,
        messages=[...], stream=...)`` (see :mod:`replicate_qwen_sdk.openai_shape`)."""
        return Chat(self)

    def stream(
        self,
        model: Optional[str],
        messages: Messages,
        *,
        provider: Optional[ProviderLike] = None,
        background: bool = False,
        buffer: int = DEFAULT_BUFFER_CHUNKS,
        **params: Any,
    ) -> Union[TextStream, BackgroundStream]:
        """Stream the answer of ``model`` to ``messages``.

        :param provider: a provider's name (``"replicate"``, ``"qwen"``...)
            or instance, instead of routing by model.
        :param background: return at once a :class:`BackgroundStream` whose
            daemon thread does the call and reads the network.
        :param buffer: chunks a background stream holds for a slow consumer.
        :param params: the provider's parameters (``max_tokens``,
            ``temperature``, ``system_prompt``...).
        """
        target = self.provider_for(model, provider, deployment=params.get("deployment"))
        if background:
            return BackgroundStream(lambda: target.stream(model, messages, **params), buffer=buffer)
        return target.stream(model, messages, **params)

    def complete(
        self, model: Optional[str], messages: Messages, *, provider: Optional[ProviderLike] = None, **params: Any
    ) -> str:
        """The whole answer of ``model`` to ``messages``."""
        return self.provider_for(model, provider, deployment=params.get("deployment")).complete(
            model, messages, **params
        )

    def batch(
        self,
        jobs: Sequence[Mapping[str, Any]],
        *,
        max_workers: int = DEFAULT_MAX_WORKERS,
        executor: Optional[concurrent.futures.Executor] = None,
        return_exceptions: bool = True,
        on_result: Optional[Callable[[int, Any], None]] = None,
        progress: ProgressOption = False,
    ) -> List[Any]:
        """Run many completions concurrently.

        :param jobs: ``{"model": ..., "messages": ..., **params}`` each
            (``"prompt"`` may stand for ``"messages"``).
        :param max_workers: threads, when no ``executor`` is given; the
            connection pools grow to match.
        :param executor: any ``concurrent.futures.Executor``, e.g. a Dask
            cluster's ``dask_client.get_executor()``.
        :param return_exceptions: a failed job's exception takes its place in
            the results (default); when false the first failure is raised.
        :param on_result: ``on_result(index, text_or_exception)`` as each job
            finishes, in the calling thread.
        :param progress: show a ``tqdm.auto`` progress bar (a widget in
            Jupyter, text on stderr in a terminal) counting jobs and
            failures; a dict gives tqdm options (``{"desc": "questions"}``).
        :returns: texts (or exceptions), in the order of ``jobs``.
        :raises InvalidArgumentError: ``progress`` is asked for and tqdm is
            not installed (before any job starts).
        :raises KeyboardInterrupt: on Ctrl-C (or what ``on_result`` raised),
            within about two seconds: the jobs not started never start, the
            running ones are canceled on the server (on a process pool they
            run to their end), and every job finished before that has been
            passed to ``on_result``.
        """
        if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
            raise InvalidArgumentError("jobs must be a list of {'model': ..., 'messages': ...} dicts.")
        bar = progress_bar(len(jobs), progress)
        try:
            if executor is None:
                for provider in self.providers:
                    provider._transport.ensure_pool_size(max_workers)
            return run_all(
                _complete_job,
                [(self, job) for job in jobs],
                max_workers=max_workers,
                executor=executor,
                return_exceptions=return_exceptions,
                on_result=on_result if bar is None else counting(bar, on_result),
            )
        finally:
            if bar is not None:
                bar.close()

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release every provider's connections."""
        for provider in self._providers or []:
            provider.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        # Build the providers here, so that credentials found in this
        # process's environment travel to the worker, which may have none.
        state["_providers"] = self.providers
        state["_lock"] = None
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        if self._providers is None:
            return "Client(<default providers, not built yet>)"
        return f"Client(providers=[{', '.join(repr(p) for p in self._providers)}])"


def _complete_job(client: Client, job: Mapping[str, Any]) -> str:
    """One batch job (module level, so process pools and Dask can pickle it)."""
    if not isinstance(job, Mapping):
        raise InvalidArgumentError(f"A job must be a dict with 'messages' (or 'prompt'), got {type(job).__name__}.")
    params = dict(job)
    model = params.pop("model", None)
    if "messages" in params:
        messages = params.pop("messages")
        if "prompt" in params:
            raise InvalidArgumentError("A job has both 'messages' and 'prompt'; give one.")
    elif "prompt" in params:
        messages = params.pop("prompt")
    else:
        raise InvalidArgumentError("A job needs 'messages' (or 'prompt').")
    target = client.provider_for(model, params.pop("provider", None), deployment=params.get("deployment"))
    stream = target.stream(model, messages, **params)
    with stream, cancel_on_stop(stream.cancel):  # a stopping batch cancels the run
        return stream.read()


def _normalize(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _names_of(provider: Provider) -> set:
    names = {_normalize(type(provider).__name__), _normalize(provider.label)}
    if isinstance(provider, Replicate):
        names.add("replicate")
    if isinstance(provider, Qwen_Qwen_2_72B):
        names.update({"qwen", "qwen2", "qwen272b"})
    if isinstance(provider, GradioSpace):
        names.update({"gradio", _normalize(provider.src)})
    return names
