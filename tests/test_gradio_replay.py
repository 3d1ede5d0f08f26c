"""GradioSpace on Gradio 4.44.1, replayed from raw recordings (tests/data/gradio4).

A loopback server answers /config, /queue/join and /queue/data with the
bytes a real 4.44.1 server sent: no /gradio_api prefix, a tuples Chatbot,
sse_v3 diffs. The same provider code as for Gradio 6 must handle it.
"""

import json
import pathlib
from urllib.parse import parse_qs, urlsplit

import pytest

from replicate_qwen_sdk import (
    APIConnectionError,
    GradioSpace,
    PredictionError,
    Qwen_Qwen_2_72B,
    ResponseError,
)
from replicate_qwen_sdk.testing import LoopbackServer, RecordedRequest
from replicate_qwen_sdk.testing._server import RequestHandler

DATA = pathlib.Path(__file__).parent / "data" / "gradio4"
TOKEN = "hf_secret_token_for_replay_tests"


def recorded(name):
    return json.loads((DATA / name).read_text())


class _ReplayHandler(RequestHandler):
    async def do_GET(self):
        parts = urlsplit(self.path)
        self.owner.record(RecordedRequest("GET", self.path, dict(self.headers), None, parts.path))
        if parts.path == "/config":
            return await self.send_json(200, self.owner.config)
        if parts.path == "/queue/data":
            session = parse_qs(parts.query).get("session_hash", [""])[0]
            return await self._replay(self.owner.streams.get(session, self.owner.unknown_session))
        await self.send_json(404, {"detail": "Not Found"})

    async def do_POST(self):
        path = urlsplit(self.path).path
        body = self.read_json()
        self.owner.record(RecordedRequest("POST", self.path, dict(self.headers), body, path))
        if path == "/queue/join":
            script = self.owner.scripts.get(body["fn_index"])
            if script is None:
                return await self.send_json(500, b"Internal Server Error", content_type="text/plain")
            event_id, sse = script
            self.owner.streams[body["session_hash"]] = sse
            return await self.send_json(200, {"event_id": event_id})
        if path == "/cancel":
            return await self.send_json(200, {"success": True})
        if path == "/run/predict" and body["fn_index"] in self.owner.predictions:
            return await self.send_json(200, {"data": self.owner.predictions[body["fn_index"]], "is_generating": False})
        await self.send_json(404, {"detail": "Not Found"})

    async def _replay(self, payload: bytes):
        await self.start_chunked()
        cut = self.owner.cut_after
        body = payload if cut is None else payload[:cut]
        step = self.owner.chunk_size
        for start in range(0, len(body), step):
            await self.write_chunk(body[start : start + step])
        if cut is None:
            await self.end_chunked()
        else:
            self.abort_connection()


class ReplayServer(LoopbackServer):
    handler_class = _ReplayHandler

    def __init__(self, config_file):
        super().__init__()
        self.config = recorded(config_file)
        self.scripts = {}
        self.predictions = {}
        self.streams = {}
        self.unknown_session = (DATA / "unknown_session.sse").read_bytes()
        self.cut_after = None
        self.chunk_size = 4096

    def script(self, fn_index, recording):
        join = recorded(f"{recording}.join.json")
        self.scripts[fn_index] = (join["response"]["body"]["event_id"], (DATA / f"{recording}.sse").read_bytes())
        return join["request"]["json"]

    def joins(self):
        return [r.body for r in self.requests if r.route == "/queue/join"]


@pytest.fixture
def qwen_replay():
    with ReplayServer("qwen_space.config.json") as server:
        yield server


QWEN_CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "What is 2+2?"},
]
FIRST = "[system=Answer briefly.] [turns=1] you said: What is 2+2?"


@pytest.mark.parametrize("chunk_size", [4096, 1], ids=["whole-lines", "byte-by-byte"])
def test_qwen_space_on_gradio_4_streams_true_deltas(qwen_replay, chunk_size):
    qwen_replay.chunk_size = chunk_size
    expected_join = qwen_replay.script(0, "qwen_space.model_chat")
    provider = Qwen_Qwen_2_72B(url=qwen_replay.url)
    with provider.stream("qwen-2-72b", QWEN_CHAT) as stream:
        chunks = list(stream)
    assert chunks == [FIRST] + [f" word{i}" for i in range(10)]
    (join,) = qwen_replay.joins()
    # The same request a browser would send: no /gradio_api prefix, real
    # history as tuple pairs, the system prompt in the hidden textbox.
    assert {k: v for k, v in join.items() if k != "session_hash"} == {
        k: v for k, v in expected_join.items() if k != "session_hash"
    }
    assert len(join["session_hash"]) == 12
    assert [r.route for r in qwen_replay.requests] == ["/config", "/queue/join", "/queue/data"]


def test_the_generic_provider_takes_the_same_path(qwen_replay):
    qwen_replay.script(0, "qwen_space.model_chat")
    provider = GradioSpace(qwen_replay.url, api_name="/model_chat")
    assert provider.complete(None, QWEN_CHAT) == FIRST + "".join(f" word{i}" for i in range(10))
    assert provider.app().chat_format == "tuples" and provider.app().api_prefix == ""


def test_an_app_error_on_gradio_4_is_raised_after_its_partial_output(qwen_replay):
    qwen_replay.script(4, "qwen_space.boom")
    stream = GradioSpace(qwen_replay.url, api_name="boom").stream(None, "kaboom")
    with pytest.raises(PredictionError) as caught:
        stream.read()
    assert "deliberate failure from test app" in str(caught.value)
    assert stream.text == "partial before failure: kaboom"
    assert qwen_replay.joins()[0]["data"] == ["kaboom"]


def test_a_stream_cut_before_completion_is_an_error_not_a_short_answer(qwen_replay):
    qwen_replay.script(0, "qwen_space.model_chat")
    sse = qwen_replay.scripts[0][1]
    qwen_replay.cut_after = sse.index(b"word5")  # mid-message
    stream = Qwen_Qwen_2_72B(url=qwen_replay.url).stream(None, QWEN_CHAT)
    with pytest.raises(APIConnectionError) as caught:
        stream.read()
    assert "before the answer was complete" in str(caught.value)
    assert stream.text == FIRST + "".join(f" word{i}" for i in range(5))  # word5 was cut mid-message


def test_a_lost_session_is_joined_again_once_then_reported(qwen_replay):
    qwen_replay.script(0, "qwen_space.model_chat")
    original = qwen_replay.scripts[0]
    qwen_replay.scripts[0] = (original[0], qwen_replay.unknown_session)
    with pytest.raises(ResponseError) as caught:
        Qwen_Qwen_2_72B(url=qwen_replay.url).complete(None, "hi")
    assert "Session not found" in str(caught.value)
    assert len(qwen_replay.joins()) == 2


def test_a_session_lost_once_is_recovered(qwen_replay):
    qwen_replay.script(0, "qwen_space.model_chat")
    event_id, good = qwen_replay.scripts[0]
    streams = iter([qwen_replay.unknown_session, good])

    class OneLoss(dict):
        def __setitem__(self, key, value):
            super().__setitem__(key, next(streams))

    qwen_replay.streams = OneLoss()
    assert Qwen_Qwen_2_72B(url=qwen_replay.url).complete(None, QWEN_CHAT).endswith("word9")
    assert len(qwen_replay.joins()) == 2


def test_a_stale_layout_is_reloaded_once(qwen_replay):
    qwen_replay.script(0, "qwen_space.model_chat")
    provider = Qwen_Qwen_2_72B(url=qwen_replay.url)
    provider.app()  # cached now
    # The app restarts with its chat endpoint at another fn_index.
    config = json.loads(json.dumps(qwen_replay.config))
    config["dependencies"][0]["id"] = 7
    qwen_replay.config = config
    qwen_replay.scripts[7] = qwen_replay.scripts.pop(0)
    assert provider.complete(None, QWEN_CHAT).endswith("word9")
    assert [j["fn_index"] for j in qwen_replay.joins()] == [0, 7]
    assert [r.route for r in qwen_replay.requests].count("/config") == 2


def test_hf_token_is_sent_as_bearer_and_never_shown(qwen_replay, caplog):
    qwen_replay.script(0, "qwen_space.model_chat")
    provider = Qwen_Qwen_2_72B(url=qwen_replay.url, hf_token=TOKEN)
    provider.complete(None, QWEN_CHAT)
    assert all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in qwen_replay.requests)
    assert TOKEN not in repr(provider) and TOKEN not in caplog.text


def test_chat_interface_on_gradio_4():
    with ReplayServer("chat_interface.config.json") as server:
        server.script(18, "chat_interface.chat")
        provider = GradioSpace(server.url)
        assert provider.complete(None, "Hello bot") == "echo:Hello bot Hello there friend"
        join = server.joins()[0]
        assert join["fn_index"] == 18 and join["trigger_id"] == 11
        assert join["data"] == ["Hello bot", None]  # a State input: the server keeps the value


def test_chat_interface_on_gradio_4_takes_history_through_its_own_chain():
    """Its history lives in session state, filled by the page's own chain:
    save the message, show it in the Chatbot, then generate from the
    Chatbot's value. With earlier messages, the SDK runs that chain in one
    session, with the values a browser would pass."""
    history = [["hi", "hello"]]
    shown = history + [["Hello bot", None]]
    event = "e" * 32
    stream = b"".join(
        b"data: " + json.dumps(message).encode() + b"\n\n"
        for message in [
            {"msg": "process_starts", "event_id": event},
            {"msg": "process_generating", "event_id": event, "output": {"data": [history + [["Hello bot", "echo"]]]}},
            {"msg": "process_generating", "event_id": event, "output": {"data": [[["append", [1, 1], ": 2 turns"]]]}},
            {
                "msg": "process_completed",
                "event_id": event,
                "success": True,
                "output": {"data": [history + [["Hello bot", "echo: 2 turns"]]]},
            },
            {"msg": "close_stream", "event_id": None},
        ]
    )
    with ReplayServer("chat_interface.config.json") as server:
        server.predictions = {0: ["", None], 1: [shown]}
        server.scripts[2] = (event, stream)
        text = GradioSpace(server.url).complete(
            None,
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "Hello bot"},
            ],
        )
        assert text == "echo: 2 turns"
        steps = [(r.route, r.body) for r in server.requests if r.method == "POST"]
        sessions = {body["session_hash"] for _, body in steps}
        assert len(sessions) == 1  # one browser session for the whole chain
        assert [(route, body["fn_index"], body["data"]) for route, body in steps] == [
            ("/run/predict", 0, ["Hello bot"]),
            ("/run/predict", 1, [None, history]),
            ("/queue/join", 2, [None, shown]),
        ]
        assert all(body["trigger_id"] == 8 for _, body in steps)  # the message box's submit
