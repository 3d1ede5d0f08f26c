"""One call of a Gradio app: the steps a browser runs before the answering
one, the answering event on the queue, its updates turned into text, and
cancel.

Wire facts are in the project's protocol notes: ``POST {prefix}/queue/join``
returns an ``event_id`` and ``GET {prefix}/queue/data?session_hash=`` streams
the session's messages (Gradio 4.9+); Gradio 3 runs each queued event on a
websocket. Steps that skip the queue go through ``POST {prefix}/run/predict``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

from ...errors import (
    APIConnectionError,
    AuthenticationError,
    ModelNotFoundError,
    PredictionError,
    QueueFullError,
    ResponseError,
    SDKError,
    ServerError,
)
from ...images import Image
from ...redaction import shown_url
from ...retry import CREATE
from ...sse import EventStream
from ...stream import StreamSource
from ...timeouts import Deadline
from ...transport import Transport
from .answer import AnswerTracker
from .app import App, ChatFormat, Endpoint
from .browser import ChatValues
from .rendering import rendering_for
from .upload import check_image_box, file_values
from .websocket import QueueSocket

if TYPE_CHECKING:
    from .space import GradioSpace

__all__ = ["QueueRun", "new_session_hash"]

logger = logging.getLogger("replicate_qwen_sdk")


def new_session_hash() -> str:
    """12 random hex digits, as Gradio's own clients make them."""
    return os.urandom(6).hex()


class QueueRun(StreamSource):
    """One event on the app's queue. Implements ``StreamSource``."""

    def __init__(
        self,
        space: GradioSpace,
        api_name,
        fn_index,
        strict,
        query,
        history,
        system,
        params,
        deadline: Deadline,
        optional: frozenset = frozenset(),
        images: Sequence[Image] = (),
    ) -> None:
        self._space = space
        self._transport: Transport = space._transport
        self._api_name = api_name
        self._fn_index = fn_index
        self._strict = strict
        self._query = query
        self._history = history
        self._system = system
        self._params = params
        #: Names in ``params`` left out (with a warning) where no input takes them.
        self._optional = optional
        #: Images for the message box, checked and read (see :mod:`.upload`).
        self._images = images
        self._deadline = deadline
        self.id: Optional[str] = None
        self._session = new_session_hash()
        self._app: Optional[App] = None
        self._endpoint: Optional[Endpoint] = None
        self._history_length = 0
        self._response: Any = None  # the open stream's requests.Response
        self._cancelled = False
        self._socket: Optional[QueueSocket] = None  # Gradio 3: the event's websocket

    # -- start -------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._join(self._space.app())
        except (ServerError, ModelNotFoundError, ResponseError) as exc:
            if isinstance(exc, QueueFullError) or getattr(exc, "status_code", None) not in (404, 422, 500):
                raise
            # The cached layout may be stale (the app was restarted or
            # changed): read it again once and retry with what it says now.
            logger.info("joining %s failed (%s); reloading the app's layout", shown_url(self._space.base_url), exc)
            self._session = new_session_hash()
            self._join(self._space.app(refresh=True))
        self._open_stream()

    def _joined(self) -> "tuple[App, Endpoint]":
        """The layout and endpoint of this event (set by :meth:`_join`)."""
        assert self._app is not None and self._endpoint is not None, "the event has not joined the queue"
        return self._app, self._endpoint

    def _url(self, route: str) -> str:
        assert self._app is not None, "the event has not read the app's layout"
        return f"{self._space.base_url}{self._app.api_prefix}{route}"

    def _join(self, app: App) -> None:
        """Run the steps before the answering one, as a browser would, then
        join the queue with the answering one."""
        self._app = app
        steps = app.route(
            self._api_name, self._space.default_api_name, fn_index=self._fn_index, with_history=bool(self._history)
        )
        endpoint = self._endpoint = steps[-1]
        values = ChatValues(
            app,
            steps,
            self._query,
            self._history,
            self._system,
            self._params,
            strict=self._strict,
            optional=self._optional,
        )
        if self._images:
            check_image_box(values.query_box, self._images, endpoint.route, app.max_file_size)
            files = file_values(
                self._transport, self._url("/upload"), self._space._headers(), self._images, self._deadline
            )
            values.attach_files(files)
        self._history_length = values.history_length
        self.ignored_parameters = values.ignored
        if values.ignored:
            self._space._warn_ignored(endpoint.route, values.ignored)
        trigger_id = steps[0].trigger_id
        if values.seed is not None:
            fn_index, value = values.seed
            self._predict(fn_index, [value], None, f"loading the chat history into {endpoint.route}")
        for step in steps[:-1]:
            if not step.backend:
                logger.debug("skipping step %d: it runs in the browser only", step.fn_index)
                continue
            action = f"running step {step.fn_index} before {endpoint.route}"
            data = values.inputs_for(step)
            if step.queued:
                outputs = self._run_to_completion(step, data, trigger_id, action)
            else:
                outputs = self._predict(step.fn_index, data, trigger_id, action)
            values.take_outputs(step, outputs)
        if app.protocol == "ws":
            self._socket = self._open_socket(endpoint, values.inputs_for(endpoint))
            self.id = self._session  # Gradio 3 events have no id of their own
        else:
            self.id = self._join_queue(endpoint, values.inputs_for(endpoint), trigger_id)
        logger.debug("joined %s as event %s (fn_index %d)", endpoint.route, self.id, endpoint.fn_index)

    def _body(self, fn_index: int, data: List[Any], trigger_id: Optional[int]) -> Dict[str, Any]:
        return {
            "data": data,
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": trigger_id,
            "session_hash": self._session,
        }

    def _predict(self, fn_index: int, data: List[Any], trigger_id: Optional[int], action: str) -> Any:
        """Run a step that skips the queue (``queue=False``); its outputs."""
        try:
            response = self._transport.request(
                "POST",
                self._url("/run/predict"),
                action=action,
                policy=CREATE,
                deadline=self._deadline,
                headers={**self._space._headers(), "Content-Type": "application/json"},
                json=self._body(fn_index, data, trigger_id),
            )
        except ServerError as exc:
            if exc.status_code == 500 and exc.detail:
                raise self._app_error({"output": {"error": _error_text(exc.detail)}}) from None
            raise
        answer = self._transport.json(response, action=action)
        if not isinstance(answer, dict):
            raise ResponseError(f"Unexpected answer while {action}: not a JSON object.")
        if answer.get("error") is not None:
            raise self._app_error({"output": answer})
        return answer.get("data")

    def _join_queue(self, endpoint: Endpoint, data: List[Any], trigger_id: Optional[int]) -> str:
        action = f"joining the queue of {endpoint.route} at {shown_url(self._space.base_url)}"
        try:
            response = self._transport.request(
                "POST",
                self._url("/queue/join"),
                action=action,
                policy=CREATE,
                deadline=self._deadline,
                headers={**self._space._headers(), "Content-Type": "application/json"},
                json=self._body(endpoint.fn_index, data, trigger_id),
            )
        except ServerError as exc:
            if exc.status_code == 503:
                raise QueueFullError(
                    f"The app's queue is full ({exc.detail or 'HTTP 503'}) after {self._transport.max_retries} "
                    "retries. Try again later, or raise max_retries.",
                    status_code=503,
                    detail=exc.detail,
                ) from None
            raise
        joined = self._transport.json(response, action=action)
        if not isinstance(joined, dict) or not isinstance(joined.get("event_id"), str):
            raise ResponseError(f"Unexpected answer while {action}: no event_id.", status_code=response.status_code)
        return joined["event_id"]

    def _run_to_completion(self, step: Endpoint, data: List[Any], trigger_id: Optional[int], action: str) -> Any:
        """Run a queued step that comes before the answering one; its final outputs."""
        event_id: Optional[str] = None
        if self._joined_app().protocol == "ws":
            socket = self._open_socket(step, data)
            messages, close = socket.messages(), socket.close
        else:
            event_id = self._join_queue(step, data, trigger_id)
            response = self._transport.open_event_stream(
                f"{self._url('/queue/data')}?session_hash={self._session}",
                action=action,
                deadline=self._deadline,
                headers=self._space._headers("text/event-stream"),
            )
            messages, close = self._sse_messages(response, action), response.close
        try:
            for message in messages:
                if message.get("event_id") not in (None, event_id):
                    continue  # another event of the session
                if message.get("msg") == "process_completed":
                    if not message.get("success", True):
                        raise self._app_error(message)
                    return _output_data(message, self._transport.redact)
                if message.get("msg") == "unexpected_error":
                    text = self._transport.redact(str(message.get("message") or "no message"))
                    raise ResponseError(f"The app reported an unexpected error while {action}: {text}.", detail=text)
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, SDKError):
                raise
            raise ResponseError(
                f"The app sent a malformed message (not JSON, or nested too deeply to read) while {action}."
            ) from None
        finally:
            close()
        raise APIConnectionError(
            f"The app's stream ended before step {step.fn_index} finished while {action}. Retry the call."
        )

    def _joined_app(self) -> App:
        assert self._app is not None, "the event has not read the app's layout"
        return self._app

    def _open_socket(self, step: Endpoint, data: List[Any]) -> QueueSocket:
        """Join a Gradio 3 app's websocket queue with ``step``; returns once
        the inputs are sent."""
        timeout = self._space.timeout
        socket = QueueSocket(
            self._space.base_url,
            fn_index=step.fn_index,
            session_hash=self._session,
            data=data,
            headers=self._space._headers(),
            connect_timeout=timeout.connect,
            read_timeout=timeout.read,
            deadline=self._deadline,
            redact=self._transport.redact,
        )
        socket.open()
        return socket

    def _open_stream(self) -> None:
        if self._socket is not None:
            return  # the websocket carries the event's messages
        response = self._transport.open_event_stream(
            f"{self._url('/queue/data')}?session_hash={self._session}",
            action=f"opening the event stream of {shown_url(self._space.base_url)}",
            deadline=self._deadline,
            headers=self._space._headers("text/event-stream"),
        )
        self._response = response

    # -- StreamSource ----------------------------------------------------------------

    def interrupt(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._transport.interrupt(self._response)

    def cancel(self) -> None:
        self._cancelled = True
        if self.id is None or self._endpoint is None:
            return
        if self._socket is not None:
            # What a Gradio 3 page does: leave the queue, then reset the
            # session's run so that the generator stops.
            self._socket.close()
            response = self._transport.request(
                "POST",
                self._url("/reset"),
                action=f"canceling the run of fn_index {self._endpoint.fn_index}",
                headers={**self._space._headers(), "Content-Type": "application/json"},
                json={"session_hash": self._session, "fn_index": self._endpoint.fn_index},
            )
            response.close()
            logger.info("canceled the run of fn_index %d", self._endpoint.fn_index)
            return
        response = self._transport.request(
            "POST",
            self._url("/cancel"),
            action=f"canceling event {self.id}",
            headers={**self._space._headers(), "Content-Type": "application/json"},
            json={"session_hash": self._session, "fn_index": self._endpoint.fn_index, "event_id": self.id},
        )
        response.close()
        logger.info("canceled event %s", self.id)

    def chunks(self, delivered: List[str]) -> Iterator[str]:
        try:
            yield from self._read_event(delivered)
        except _SessionLost as lost:
            if delivered or self._cancelled:
                raise lost.error from None
            # The app (or the replica behind a proxy) lost the session before
            # any output: join once more, with the layout read again.
            logger.info("the app lost session %s; joining again", self._session)
            self._session = new_session_hash()
            self._join(self._space.app(refresh=True))
            self._open_stream()
            try:
                yield from self._read_event(delivered)
            except _SessionLost as again:
                raise again.error from None

    def _read_event(self, delivered: List[str]) -> Iterator[str]:
        app, endpoint = self._joined()
        index, kind = app.answer_location(endpoint)
        output = endpoint.outputs[index]
        rendering = rendering_for(output.type, major=app.major, tuples=app.chat_format_of(output) == ChatFormat.TUPLES)
        answer = AnswerTracker(index, kind, self._history_length, delivered, rendering)
        diffs = app.sends_diffs
        have_full = False
        action = f"streaming event {self.id} from {shown_url(self._space.base_url)}"
        if self._socket is not None:
            messages = self._socket.messages()
        else:
            messages = self._sse_messages(self._response, action)
        event_id = self.id
        try:
            for message in messages:
                owner = message.get("event_id")
                if owner is not None and owner != event_id:
                    continue  # another event of the session
                kind_of_message = message.get("msg")
                if kind_of_message in ("process_generating", "process_streaming"):
                    if message.get("success") is False:
                        raise self._app_error(message)
                    values = _output_data(message, self._transport.redact)
                    if diffs and have_full:
                        delta = answer.diff(values)
                    else:
                        delta = answer.full(values)
                        have_full = True
                    if delta:
                        yield delta
                elif kind_of_message == "process_completed":
                    if not message.get("success", True):
                        raise self._app_error(message)
                    yield from self._finish(answer, message, delivered)
                    return
                elif kind_of_message == "unexpected_error":
                    text = self._transport.redact(str(message.get("message") or "no message"))
                    lost = message.get("session_not_found") or "session not found" in text.lower()
                    error = ResponseError(
                        f"The app reported an unexpected error while {action}: {text}"
                        + (" (it does not know this session; retry the call)." if lost else "."),
                        detail=text,
                    )
                    raise _SessionLost(error) if lost else error
                elif kind_of_message == "close_stream":
                    break
                elif kind_of_message == "log":
                    level = logging.WARNING if message.get("level") in ("warning", "error") else logging.INFO
                    logger.log(
                        level, "app log for event %s: %s", event_id, self._transport.redact(str(message.get("log")))
                    )
                # estimation, process_starts, progress, heartbeat: nothing to yield.
        except APIConnectionError as exc:
            if self._cancelled:
                return
            broken = f" ({exc})"
        except (ValueError, RecursionError) as exc:
            if isinstance(exc, SDKError):
                raise
            raise ResponseError(
                f"The app sent a malformed message (not JSON, or nested too deeply to read) while {action}."
            ) from None
        else:
            broken = ""
        finally:
            response, self._response = self._response, None
            if response is not None:
                response.close()
            if self._socket is not None:
                self._socket.close()
        if self._cancelled:
            return
        # Gradio has no way to resume an event: say so rather than end short.
        raise APIConnectionError(
            f"The app's stream ended before the answer was complete while {action}{broken}: "
            f"{len(''.join(delivered))} characters received, the text so far is in the stream's .text. "
            "Retry the call."
        )

    def _sse_messages(self, response: Any, action: str) -> Iterator[Dict[str, Any]]:
        """The JSON objects of a session's event stream."""
        events = EventStream(
            self._transport.iter_bytes(response, action=action, deadline=self._deadline),
            max_event_size=self._transport.max_event_size,
        )
        loads = json.loads
        for batch in events.batches():
            for _kind, _id, data in batch:
                message = loads(data)
                if isinstance(message, dict):
                    yield message

    def _finish(self, answer: AnswerTracker, message: Mapping[str, Any], delivered: List[str]) -> Iterator[str]:
        values = _output_data(message, self._transport.redact)
        if values is not None:  # the full final values
            answer.full(values)
        elif not answer.in_sync:
            raise ResponseError(
                f"The app's updates for event {self.id} could not be followed and it sent no final value, "
                "so the answer is incomplete; retry the call."
            )
        final = answer.text()
        if not final and answer.kind == "text":
            _, endpoint = self._joined()
            outputs = ", ".join(f"{c.type} {c.label!r}" if c.label else c.type for c in endpoint.outputs)
            raise ResponseError(
                f"{endpoint.route} ended with an empty text output and no chat output was found among its "
                f"outputs ({outputs}), so this is likely not the answer; choose the endpoint that "
                "answers with api_name= or fn_index=."
            )
        text = "".join(delivered)
        if final.startswith(text):
            if len(final) > len(text):
                yield final[len(text) :]
            return
        # Text already handed on was rewritten in a way no known rendering
        # explains: it cannot be taken back, and the answer is still good.
        logger.warning(
            "the app rewrote text it had already streamed for event %s; the stream's .text holds the "
            "app's final answer (%d characters), which differs from the chunks yielded",
            self.id,
            len(final),
        )
        self.final_text = final

    def _app_error(self, message: Mapping[str, Any]) -> ResponseError:
        output = message.get("output") or {}
        error = output.get("error") if isinstance(output, dict) else None
        title = output.get("title") if isinstance(output, dict) else None
        detail = self._transport.redact(str(error or ""))
        if error and _LOGIN_REQUIRED in str(error):
            return AuthenticationError(
                'The app needs a signed-in Hugging Face user (the visitor\'s "Sign in with Hugging Face" '
                "login), and API callers cannot sign in: hf_token does not replace that login. Use a Space "
                "that does not require it, or duplicate the Space and remove the requirement.",
                detail=detail,
            )
        if error:
            reason = _sentence(_unquote(str(error)))
            text = f"The app failed: {reason}" + (f" (title: {title}.)" if title and title != "Error" else "")
        else:
            text = (
                "The app failed without an error message (it hides errors unless launched with "
                "show_error=True); check the app's logs."
            )
        return PredictionError(self._transport.redact(text), prediction_id=self.id, detail=detail)


#: What Gradio says when a function needs a signed-in (OAuth) user.
_LOGIN_REQUIRED = "requires a logged in user"


def _unquote(text: str) -> str:
    """Gradio 3 and 4 send a ``gr.Error``'s text ``repr()``-quoted."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _sentence(text: str) -> str:
    """``text`` ending as a sentence, without doubling its own full stop."""
    text = text.strip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _error_text(detail: str) -> str:
    """The app's error text from a failed step's body (``{"error": ...}``)."""
    try:
        body = json.loads(detail)
    except ValueError:
        return detail
    return str(body.get("error") or detail) if isinstance(body, dict) else detail


def _output_data(message: Mapping[str, Any], redact: Callable[[str], str]) -> Any:
    """``message["output"]["data"]``, or ``None``; a malformed output is a
    typed error, quoting it with ``redact``'s secrets masked."""
    output = message.get("output")
    if output is None:
        return None
    if not isinstance(output, dict):
        raise ResponseError(f"The app sent an update whose output is not an object: {redact(str(output))[:200]!r}.")
    return output.get("data")


class _SessionLost(Exception):
    """The app no longer knows the session; carries the error to raise."""

    def __init__(self, error: ResponseError) -> None:
        super().__init__(str(error))
        self.error = error
