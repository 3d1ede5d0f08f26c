"""Ctrl-C and early exits stop the run on the server, on both emulators.

A real SIGINT is sent to the main thread (where pytest runs the test) while
it is blocked waiting for the server, as a Ctrl-C in a script or a notebook's
"interrupt kernel" does; the emulators record the cancel that follows.
"""

import signal
import threading
import time

import pytest

from replicate_qwen_sdk import Client, Qwen_Qwen_2_72B
from replicate_qwen_sdk.stream import CANCEL_WAIT
from replicate_qwen_sdk.testing import GradioEmulator, Script

SECRET = "r8_test_secret_value_0123456789abcdefghij"  # the emulator fixture's token (conftest.SECRET)

#: One chunk at once, the next half a minute later: a reader waiting for the
#: second one is blocked on the server.
STALLED = Script(["first", " second", " third"], delay=30.0)


class CtrlC:
    """A Ctrl-C for the main thread, sent once it waits for the server.

    Hook it on the path that blocks (:meth:`on_read`, :meth:`on_wait`), then
    :meth:`arm` it: the next time that path blocks, a helper thread sends
    SIGINT. A signal that lands in the instant before the blocking system
    call starts is only acted on when the call returns, so the signal is
    sent again until the handler has run; like Python's own, the handler
    raises one KeyboardInterrupt, and it ignores the extra signals.
    """

    def __init__(self, monkeypatch):
        self._monkeypatch = monkeypatch
        self._armed = threading.Event()
        self._waiting = threading.Event()
        self.handled = threading.Event()
        self.sent_at = None
        self._thread = threading.Thread(target=self._send)

    def on_read(self, transport):
        """Hook the reads of the streams on ``transport``."""
        original = transport.iter_bytes

        def iter_bytes(*args, **kwargs):
            for piece in original(*args, **kwargs):
                yield piece
                if self._armed.is_set():  # resumed: more bytes needed, about to block
                    self._waiting.set()

        self._monkeypatch.setattr(transport, "iter_bytes", iter_bytes)

    def on_wait(self, background_stream):
        """Hook the caller's wait for the next chunk of ``background_stream``."""
        chunks = background_stream._pipe.chunks
        original = chunks.get

        def get(*args, **kwargs):
            if self._armed.is_set():
                self._waiting.set()
            return original(*args, **kwargs)

        self._monkeypatch.setattr(chunks, "get", get)

    def arm(self):
        signal.signal(signal.SIGINT, self._handler)
        self._armed.set()
        self._thread.start()

    def _handler(self, signum, frame):
        if not self.handled.is_set():
            self.handled.set()
            raise KeyboardInterrupt

    def _send(self):
        if not self._waiting.wait(10):
            return
        self.sent_at = time.monotonic()
        main = threading.main_thread().ident
        for _ in range(200):
            signal.pthread_kill(main, signal.SIGINT)
            if self.handled.wait(0.05):
                return

    def join(self):
        self._thread.join(15)
        assert self.handled.is_set(), "no Ctrl-C reached the main thread while it waited"


@pytest.fixture
def ctrl_c(monkeypatch):
    """A :class:`CtrlC`; Python's own SIGINT handler is put back afterwards."""
    previous = signal.getsignal(signal.SIGINT)
    interrupt = CtrlC(monkeypatch)
    yield interrupt
    if interrupt._armed.is_set():
        interrupt._thread.join(15)  # no signal may outlive the test
    signal.signal(signal.SIGINT, previous)


def status_of(emulator, stream):
    return emulator.prediction(stream.id).status(time.monotonic())


# -- Replicate ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["next", "for", "read"])
def test_ctrl_c_while_a_stream_waits_cancels_the_prediction_before_it_propagates(provider, emulator, ctrl_c, how):
    emulator.add_model("acme/stalled", STALLED)
    ctrl_c.on_read(provider._transport)
    stream = provider.stream("acme/stalled", "go")
    assert next(stream) == "first"
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        try:
            if how == "next":
                next(stream)
            elif how == "for":
                for _ in stream:
                    pass
            else:
                stream.read()
        finally:
            # Looked at before the interrupt leaves the SDK's hands.
            cancels = emulator.count("cancel")
            status = status_of(emulator, stream)
    ctrl_c.join()
    assert (cancels, status) == (1, "canceled")
    assert stream.finished and stream.text == "first"


def test_ctrl_c_during_complete_cancels_the_prediction(provider, emulator, ctrl_c):
    emulator.add_model("acme/stalled", STALLED)
    ctrl_c.on_read(provider._transport)
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        provider.complete("acme/stalled", "go")
    ctrl_c.join()
    (prediction,) = emulator.predictions.values()
    assert emulator.count("cancel") == 1
    assert prediction.status(time.monotonic()) == "canceled"


def test_ctrl_c_in_the_body_of_a_with_block_cancels_the_prediction(provider, emulator):
    emulator.add_model("acme/stalled", STALLED)
    with pytest.raises(KeyboardInterrupt):
        with provider.stream("acme/stalled", "go") as stream:
            for _chunk in stream:
                raise KeyboardInterrupt  # Ctrl-C while the loop's body runs
    assert emulator.count("cancel") == 1 and status_of(emulator, stream) == "canceled"


def test_breaking_out_of_a_with_block_cancels_and_close_does_not(provider, emulator):
    emulator.add_model("acme/stalled", STALLED)
    with provider.stream("acme/stalled", "go") as left:
        next(left)
    with provider.stream("acme/stalled", "go") as closed:
        next(closed)
        closed.close()
    assert status_of(emulator, left) == "canceled"
    assert status_of(emulator, closed) == "processing"  # closed: still running, still billing
    assert [r.path.split("/")[-2] for r in emulator.requests if r.route == "cancel"] == [left.id]


def test_a_complete_answer_sends_no_cancel_when_the_block_ends(provider, emulator):
    with provider.stream(None, "hello") as stream:
        text = stream.read()
    assert text == "You said: hello" and emulator.count("cancel") == 0


def test_a_cancel_that_hangs_holds_the_interrupt_about_two_seconds(provider, emulator, ctrl_c, sdk_log):
    emulator.add_model("acme/stalled", STALLED)
    emulator.inject_fault("cancel", status=503, delay=10.0)  # the server sits on the cancel request
    ctrl_c.on_read(provider._transport)
    stream = provider.stream("acme/stalled", "go")
    next(stream)
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        next(stream)
    held_for = time.monotonic() - ctrl_c.sent_at
    ctrl_c.join()
    # It waited for the server, but not for the 10 s the server took.
    assert CANCEL_WAIT <= held_for < CANCEL_WAIT + 3.0
    assert emulator.count("cancel") == 1  # the request was sent
    (held,) = [r for r in sdk_log.records if "did not confirm the cancel" in r.getMessage()]
    assert held.levelname == "WARNING" and stream.id in held.getMessage()
    # The request is still under way: end it here, not in another test.
    emulator.stop()
    for thread in threading.enumerate():
        if thread.name == "replicate_qwen_sdk-cancel":
            thread.join(10)


def test_a_failed_cancel_is_logged_without_the_key_and_the_interrupt_still_propagates(
    provider, emulator, ctrl_c, sdk_log
):
    emulator.add_model("acme/stalled", STALLED)
    emulator.inject_fault("cancel", status=500, body={"detail": f"refused for {SECRET}"})
    ctrl_c.on_read(provider._transport)
    stream = provider.stream("acme/stalled", "go")
    next(stream)
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        next(stream)
    ctrl_c.join()
    (failed,) = [r for r in sdk_log.records if f"could not cancel run {stream.id}" in r.getMessage()]
    assert failed.levelname == "WARNING" and "HTTP 500" in failed.getMessage()
    assert emulator.count("cancel") == 1  # a 500 is not retried
    assert SECRET not in sdk_log.text


# -- Gradio ------------------------------------------------------------------------------


@pytest.fixture
def stalled_app():
    with GradioEmulator(lambda query, history, system: STALLED) as app:
        yield app


@pytest.fixture
def qwen(stalled_app):
    with Qwen_Qwen_2_72B(url=stalled_app.url) as provider:
        yield provider


def cancels_of(app):
    return [r.body for r in app.requests if r.route == "cancel"]


def test_ctrl_c_while_a_gradio_stream_waits_cancels_the_event(qwen, stalled_app, ctrl_c):
    ctrl_c.on_read(qwen._transport)
    stream = qwen.stream(None, "go")
    assert next(stream) == "first"
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        try:
            next(stream)
        finally:
            cancels = cancels_of(stalled_app)
    ctrl_c.join()
    assert [body["event_id"] for body in cancels] == [stream.id]
    assert stalled_app.events[stream.id].cancelled.is_set()


def test_leaving_a_gradio_with_block_early_cancels_the_event_and_close_does_not(qwen, stalled_app):
    with qwen.stream(None, "go") as left:
        next(left)
    with qwen.stream(None, "go") as closed:
        next(closed)
        closed.close()
    assert [body["event_id"] for body in cancels_of(stalled_app)] == [left.id]
    assert not stalled_app.events[closed.id].cancelled.is_set()


# -- background streams -----------------------------------------------------------------


@pytest.fixture
def client(emulator):
    with Client(replicate_api_key=SECRET, replicate_base_url=emulator.base_url) as client:
        yield client


@pytest.mark.parametrize("how", ["next", "result"])
def test_ctrl_c_while_waiting_on_a_background_stream_cancels_and_ends_its_thread(client, emulator, ctrl_c, how):
    emulator.add_model("acme/stalled", STALLED)
    stream = client.stream("acme/stalled", "go", background=True)
    assert next(stream) == "first"
    ctrl_c.on_wait(stream)
    ctrl_c.arm()
    with pytest.raises(KeyboardInterrupt):
        try:
            if how == "next":
                next(stream)
            else:
                stream.result()
        finally:
            cancels = emulator.count("cancel")
            status = status_of(emulator, stream)
            reader_alive = stream._thread.is_alive()
    ctrl_c.join()
    assert (cancels, status, reader_alive) == (1, "canceled", False)
    assert list(stream) == [] and stream.text == "first"


def test_leaving_a_background_with_block_early_cancels_and_close_does_not(client, emulator):
    emulator.add_model("acme/stalled", STALLED)
    with pytest.raises(KeyboardInterrupt):
        with client.stream("acme/stalled", "go", background=True) as left:
            next(left)
            raise KeyboardInterrupt  # Ctrl-C in the body
    emulator.add_model("acme/long", Script([f"{i} " for i in range(500)], delay=0.01))
    with client.stream("acme/long", "go", background=True, buffer=2) as closed:
        next(closed)
        closed.close()
    assert status_of(emulator, left) == "canceled" and not left._thread.is_alive()
    assert status_of(emulator, closed) == "processing" and not closed._thread.is_alive()
    assert emulator.count("cancel") == 1
