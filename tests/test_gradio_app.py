"""Gradio pieces on their own: layouts, chat mapping, diff application, /config failures."""

import json
import pathlib
import pickle

import pytest
import responses
from responses.registries import OrderedRegistry

from replicate_qwen_sdk import (
    AuthenticationError,
    GradioSpace,
    InvalidArgumentError,
    ModelNotFoundError,
    QueueFullError,
    Qwen_Qwen_2_72B,
    ResponseError,
    ServerError,
)
from replicate_qwen_sdk.messages import Message
from replicate_qwen_sdk.providers.gradio.answer import AnswerTracker
from replicate_qwen_sdk.providers.gradio.app import ChatFormat, parse_config
from replicate_qwen_sdk.providers.gradio.space import space_url

DATA = pathlib.Path(__file__).parent / "data" / "gradio4"
URL = "http://127.0.0.1:9"


def qwen4_config():
    return json.loads((DATA / "qwen_space.config.json").read_text())


# -- where a Space lives ----------------------------------------------------------


@pytest.mark.parametrize(
    "src, url",
    [
        ("Qwen/Qwen2-72B-Instruct", "https://qwen-qwen2-72b-instruct.hf.space"),
        ("abidlabs/my_chat.bot", "https://abidlabs-my-chat-bot.hf.space"),
        ("http://127.0.0.1:7860/", "http://127.0.0.1:7860"),
        ("https://example.org/apps/chat", "https://example.org/apps/chat"),
    ],
)
def test_space_ids_and_urls(src, url):
    assert space_url(src) == url


@pytest.mark.parametrize("src", ["", "not a space", "a/b/c", None, "ftp://x"])
def test_bad_sources_are_rejected(src):
    with pytest.raises(InvalidArgumentError):
        space_url(src)


def test_qwen_preset_keeps_the_seed_attributes():
    assert Qwen_Qwen_2_72B.label == "Qwen Qwen-2.72B"
    assert Qwen_Qwen_2_72B.url == "https://qwen-qwen2-72b-instruct.hf.space"
    assert Qwen_Qwen_2_72B.api_endpoint == Qwen_Qwen_2_72B.url + "/queue/join?"
    assert Qwen_Qwen_2_72B.default_model == "qwen-qwen2-72b-instruct"
    assert Qwen_Qwen_2_72B.model_aliases == {"qwen-2-72b": "qwen-qwen2-72b-instruct"}
    assert Qwen_Qwen_2_72B.models == ["qwen-2-72b"]
    assert Qwen_Qwen_2_72B.supports_message_history and Qwen_Qwen_2_72B.supports_system_message
    assert Qwen_Qwen_2_72B.get_model(None) == Qwen_Qwen_2_72B.get_model("qwen-2-72b") == "qwen-qwen2-72b-instruct"
    assert Qwen_Qwen_2_72B().base_url == Qwen_Qwen_2_72B.url
    assert Qwen_Qwen_2_72B(url=URL).base_url == URL


def test_a_generic_space_serves_its_own_name():
    space = GradioSpace("owner/app")
    assert space.get_model(None) == space.get_model("owner/app") == "owner/app"
    with pytest.raises(ModelNotFoundError):
        space.get_model("other/app")
    assert GradioSpace.default_model == ""  # the class is untouched


def test_spaces_pickle_without_their_lock_and_never_show_the_token():
    space = GradioSpace(URL, hf_token="hf_abc123secret")
    copy = pickle.loads(pickle.dumps(space))
    assert copy.base_url == URL and copy._hf_token == "hf_abc123secret"
    assert "hf_abc123secret" not in repr(copy) and "hf_token=<set>" in repr(copy)


# -- layouts -------------------------------------------------------------------------


def test_gradio_4_layout_is_read_from_config():
    app = parse_config(qwen4_config())
    assert (app.version, app.protocol, app.api_prefix, app.chat_format) == ("4.44.1", "sse_v3", "", ChatFormat.TUPLES)
    endpoint = app.endpoint(None)
    assert (endpoint.api_name, endpoint.fn_index, endpoint.trigger_id) == ("model_chat", 0, 5)
    assert app.answer_location(endpoint) == (1, "chat")


@pytest.mark.parametrize("protocol, version", [("sse", "4.0.0"), (None, "4.5.0"), ("sse_v9", "7.0.0")])
def test_protocols_not_spoken_are_refused_naming_the_supported_versions(protocol, version):
    config = qwen4_config()
    config["protocol"], config["version"] = protocol, version
    with pytest.raises(ResponseError) as caught:
        parse_config(config)
    assert "Gradio 3.x (websocket queue) and 4.9 to 6.x" in str(caught.value)


def test_gradio_3_configs_speak_the_websocket_queue():
    config = qwen4_config()
    del config["protocol"]
    config["version"] = "3.37.0\n"  # as 3.37 sends it
    app = parse_config(config)
    assert (app.version, app.protocol, app.sends_diffs) == ("3.37.0", "ws", False)


def test_something_that_is_not_a_config_is_refused():
    with pytest.raises(ResponseError):
        parse_config({"hello": "world"})


def test_chat_formats_follow_version_and_chatbot_type():
    config = qwen4_config()
    chatbot = next(c for c in config["components"] if c["type"] == "chatbot")
    chatbot["props"]["type"] = "messages"
    assert parse_config(config).chat_format == ChatFormat.MESSAGES
    config["version"] = "6.31.0"
    assert parse_config(config).chat_format == ChatFormat.PARTS


def test_history_in_each_chatbot_format():
    history = [
        Message("user", "a"),
        Message("assistant", "b"),
        Message("user", "c"),
        Message("user", "d"),
        Message("assistant", "e"),
    ]
    config = qwen4_config()
    assert parse_config(config).history_value(history) == [["a", "b"], ["c", None], ["d", "e"]]
    assert parse_config(config).history_value([Message("assistant", "hi")]) == [[None, "hi"]]
    config["version"] = "6.0.0"
    assert parse_config(config).history_value(history[:2]) == [
        {"role": "user", "content": [{"type": "text", "text": "a"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
    ]


def test_inputs_go_where_the_layout_says():
    app = parse_config(qwen4_config())
    endpoint = app.endpoint("model_chat")
    inputs = app.build_inputs(endpoint, "q", [Message("user", "a"), Message("assistant", "b")], "sys", {})
    assert inputs.data == ["q", [["a", "b"]], "sys"] and inputs.history_length == 1
    default = app.build_inputs(endpoint, "q", [], None, {})
    assert default.data == ["q", [], "You are a helpful assistant."]


def test_a_system_prompt_with_nowhere_to_go_is_refused():
    app = parse_config(qwen4_config())
    with pytest.raises(InvalidArgumentError) as caught:
        app.build_inputs(app.endpoint("boom"), "q", [], "sys", {})
    assert "system prompt" in str(caught.value)


def test_parameters_match_input_labels():
    config = qwen4_config()
    config["components"] += [
        {"id": 98, "type": "slider", "props": {"label": "Max new tokens", "value": 512}},
        {"id": 99, "type": "slider", "props": {"label": "Top-p (nucleus sampling)", "value": 0.9}},
    ]
    boom = next(d for d in config["dependencies"] if d.get("api_name") == "boom")
    boom["inputs"] = boom["inputs"] + [98, 99]
    app = parse_config(config)
    assert app.build_inputs(app.endpoint("boom"), "q", [], None, {"max_tokens": 64}).data == ["q", 64, 0.9]
    assert app.build_inputs(app.endpoint("boom"), "q", [], None, {"top_p": 0.5}).data == ["q", 512, 0.5]
    with pytest.raises(InvalidArgumentError) as caught:
        app.build_inputs(app.endpoint("boom"), "q", [], None, {"colour": 1})
    assert "Max new tokens" in str(caught.value)


# -- following the answer through updates ---------------------------------------------


def tracker(kind="chat", history_length=0, index=1):
    delivered = []
    return AnswerTracker(index, kind, history_length, delivered), delivered


def feed(answer, delivered, delta):
    delivered.append(delta) if delta else None
    return delta


def test_appends_to_the_answer_are_the_deltas():
    answer, delivered = tracker(history_length=1)
    assert feed(answer, delivered, answer.full(["", [["hi", "hello"], ["q", "An"]], "s"])) == "An"
    for word in [" answer", ", [0, 1]", "\n"]:
        assert feed(answer, delivered, answer.diff([[], [["append", [1, 1], word]], []])) == word
    assert answer.diff([[], [], []]) == ""
    assert answer.text() == "An answer, [0, 1]\n"


def test_the_previous_turn_is_not_taken_for_the_answer():
    answer, delivered = tracker(history_length=1)
    assert answer.full(["", [["hi", "hello"]], "s"]) == ""
    assert feed(answer, delivered, answer.diff([[], [["add", [1], ["q", "New"]]], []])) == "New"
    assert feed(answer, delivered, answer.diff([[], [["append", [1, 1], "er"]], []])) == "er"


def test_gradio_6_parts_with_structural_edits():
    answer, delivered = tracker()
    user = {"role": "user", "content": [{"type": "text", "text": "q"}]}
    assert answer.full([None, [user]]) == ""
    new = {"role": "assistant", "content": [{"type": "text", "text": "He"}]}
    assert feed(answer, delivered, answer.diff([[], [["add", [1], new]]])) == "He"
    assert feed(answer, delivered, answer.diff([[], [["append", [1, "content", 0, "text"], "llo"]]])) == "llo"
    # An edit elsewhere in the same output does not disturb the answer.
    assert (
        feed(
            answer,
            delivered,
            answer.diff(
                [
                    [["replace", [], "x"]],
                    [["replace", [1, "metadata"], {"a": 1}], ["append", [1, "content", 0, "text"], "!"]],
                ]
            ),
        )
        == "!"
    )
    assert answer.text() == "Hello!"


def test_text_outputs_and_root_appends():
    answer, delivered = tracker(kind="text", index=0)
    assert feed(answer, delivered, answer.full(["echo:", None])) == "echo:"
    assert feed(answer, delivered, answer.diff([[["append", [], " hi"]], []])) == " hi"
    assert answer.text() == "echo: hi"


def test_a_rewrite_of_streamed_text_is_held_back():
    answer, delivered = tracker(kind="text", index=0)
    feed(answer, delivered, answer.full(["Thinking..."]))
    assert answer.diff([[["replace", [], "Answer"]]]) == ""
    assert answer.diff([[["append", [], " more"]]]) == ""
    assert answer.text() == "Answer more"


def test_many_appends_interleaved_with_other_edits_stay_exact():
    answer, delivered = tracker(kind="chat", index=0)
    feed(answer, delivered, answer.full([[["q", ""]], 0]))
    expected = ""
    for i in range(2000):
        piece = f"w{i} "
        expected += piece
        edits = [[["append", [0, 1], piece]], [["replace", [], i]]]
        feed(answer, delivered, answer.diff(edits))
    assert "".join(delivered) == expected == answer.text()


@pytest.mark.parametrize("bad", [[[["explode", [0], 1]], [], []], "nope", [[], []], ["not edits", [], []]])
def test_malformed_diffs_are_typed_errors(bad):
    answer, _ = tracker()
    answer.full(["", [["q", "a"]], "s"])
    with pytest.raises(ResponseError):
        answer.diff(bad)


@pytest.mark.parametrize(
    "untrusted",
    [
        [[["append", [5, 1], "x"]], [], []],  # does not apply
        [[], [["delete", [0], None], ["delete", [0], None]], []],  # several deletes: Gradio misnumbers them
    ],
)
def test_an_untrusted_diff_waits_for_the_next_full_value(untrusted):
    answer, delivered = tracker()
    feed(answer, delivered, answer.full(["", [["q", "a"]], "s"]))
    assert answer.diff(untrusted) == "" and not answer.in_sync
    assert answer.diff([[], [["append", [0, 1], "ignored"]], []]) == ""
    assert feed(answer, delivered, answer.full(["", [["q", "ab"]], "s"])) == "b" and answer.in_sync


# -- the app cannot be reached as asked -------------------------------------------------


@pytest.mark.parametrize(
    "status, cls, fragment",
    [
        (401, AuthenticationError, "hf_token"),
        (403, AuthenticationError, "private"),
        (404, ModelNotFoundError, "hf_token"),
        (503, ServerError, "asleep"),
    ],
)
@responses.activate
def test_config_failures_say_what_to_do(status, cls, fragment):
    responses.get(f"{URL}/config", status=status, json={"error": "nope"})
    with pytest.raises(cls) as caught:
        GradioSpace(URL, max_retries=0).stream(None, "hi")
    assert fragment in str(caught.value)


@responses.activate
def test_a_page_that_is_not_json_is_reported():
    responses.get(f"{URL}/config", body="<html>hello</html>", content_type="text/html")
    with pytest.raises(ResponseError) as caught:
        GradioSpace(URL).stream(None, "hi")
    assert "not JSON" in str(caught.value)


@responses.activate(registry=OrderedRegistry)
def test_a_full_queue_is_retried_then_raised_as_queue_full():
    responses.get(f"{URL}/config", json=qwen4_config())
    for _ in range(3):
        responses.post(f"{URL}/queue/join", status=503, json={"detail": "Queue is full. Max size is 1 and size is 1."})
    space = GradioSpace(URL, max_retries=2)
    space._transport.sleep = lambda seconds: None
    with pytest.raises(QueueFullError) as caught:
        space.stream(None, "hi")
    assert "Queue is full" in str(caught.value)
    assert len([c for c in responses.calls if c.request.url.endswith("/queue/join")]) == 3


def test_the_last_message_must_be_the_users():
    with pytest.raises(InvalidArgumentError):
        GradioSpace(URL).stream(None, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])


def _sse(*messages):
    return "".join(f"data: {json.dumps(message)}\n\n" for message in messages).encode()


def _generating(event_id, data):
    return {
        "msg": "process_generating",
        "event_id": event_id,
        "success": True,
        "output": {"data": data, "is_generating": True},
    }


@responses.activate
def test_sse_v1_full_values_every_update_and_every_message_type():
    config = qwen4_config()
    config["protocol"] = "sse_v1"
    mine, other = "e" * 32, "f" * 32
    history = [["Hi", "Hello"]]
    stream = _sse(
        {"msg": "estimation", "event_id": mine, "rank": 1, "queue_size": 2, "rank_eta": None},
        {"msg": "heartbeat", "event_id": None},
        _generating(other, ["", [["x", "not mine"]], "s"]),
        {"msg": "process_starts", "event_id": mine, "eta": 1.0},
        {"msg": "progress", "event_id": mine, "progress_data": [{"index": 0, "length": 3, "unit": "steps"}]},
        _generating(mine, ["", history + [["q", "An"]], "s"]),
        {"msg": "log", "event_id": mine, "log": "warming up", "level": "warning"},
        _generating(mine, ["", history + [["q", "An [0, 1]"]], "s"]),
        _generating(mine, ["", history + [["q", "An [0, 1]\n{}"]], "s"]),
        {"msg": "process_completed", "event_id": other, "success": False, "output": {"error": "other's failure"}},
        {
            "msg": "process_completed",
            "event_id": mine,
            "success": True,
            "output": {"data": ["", history + [["q", "An [0, 1]\n{} end"]], "s"]},
        },
        {"msg": "close_stream", "event_id": None},
    )
    responses.get(f"{URL}/config", json=config)
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    responses.get(f"{URL}/queue/data", body=stream, content_type="text/event-stream")
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "q"},
    ]
    with GradioSpace(URL).stream(None, chat) as text_stream:
        assert list(text_stream) == ["An", " [0, 1]", "\n{} end"]  # later lines wait for the end (Chatbot)


@responses.activate
def test_create_completion_on_the_preset_class():
    mine = "a" * 32
    responses.get(f"{URL}/config", json=qwen4_config())
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    responses.get(
        f"{URL}/queue/data",
        content_type="text/event-stream",
        body=_sse(
            _generating(mine, ["", [["q", "4"]], "s"]),
            {
                "msg": "process_completed",
                "event_id": mine,
                "success": True,
                "output": {"data": ["", [["q", "4"]], "s"]},
            },
        ),
    )
    assert Qwen_Qwen_2_72B.create_completion("qwen-2-72b", "q", url=URL) == "4"


def test_diffs_made_by_gradio_itself_rebuild_every_value():
    """Random chat histories evolve (text grows, messages come and go, parts
    change) and Gradio's own ``diff`` describes each step. The tracker must
    hold exactly Gradio's next value, except after an edit list Gradio
    numbers wrongly (several deletes), when it waits for the next full value
    instead of guessing; text is then late, never wrong."""
    import random

    gradio_utils = pytest.importorskip("gradio.utils")
    generator = random.Random(7)

    def message(role, text):
        return {"role": role, "metadata": None, "content": [{"type": "text", "text": text}], "options": None}

    def answer_of(values):
        last = values[1][-1] if values[1] and values[1][-1]["role"] == "assistant" else None
        return "".join(part["text"] for part in last["content"]) if last else ""

    lost_track = 0
    for _ in range(60):
        values = ["", [message("user", "q")], "sys"]
        answer, delivered = tracker()
        answer.full(json.loads(json.dumps(values)))
        for _ in range(40):
            new = json.loads(json.dumps(values))
            chat = new[1]
            move = generator.random()
            if move < 0.55 and chat and chat[-1]["role"] == "assistant":
                chat[-1]["content"][-1]["text"] += generator.choice([" word", "\n", " [0, 1]", "é", ""])
            elif move < 0.7:
                chat.append(message(generator.choice(["assistant", "user"]), generator.choice(["", "hi", "x y"])))
            elif move < 0.8 and len(chat) > 1:
                del chat[generator.randrange(len(chat))]
            elif move < 0.9 and chat:
                chat[-1]["content"].append({"type": "text", "text": "more"})
            else:
                new[0] = generator.choice(["", "typing", None])
            edits = [gradio_utils.diff(old, value) for old, value in zip(values, new)]
            answer.diff(json.loads(json.dumps(edits)))
            values = new
            if not answer.in_sync:
                lost_track += 1
                answer.full(json.loads(json.dumps(values)))  # as process_completed would
            assert answer.text() == answer_of(values)
            assert answer._values == values  # text() wrote the pending appends in
    assert lost_track > 0  # the walk did meet Gradio's misnumbered deletes


@responses.activate
def test_a_stream_followed_through_misnumbered_deletes_ends_with_the_final_text():
    mine = "b" * 32
    responses.get(f"{URL}/config", json=qwen4_config())
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    steps = [
        _generating(mine, ["", [["x", "y"], ["z", "w"], ["q", "A"]], "s"]),
        _generating(mine, [[], [["delete", [0], None], ["delete", [0], None]], []]),  # not trusted
        _generating(mine, [[], [["append", [0, 1], "B"]], []]),  # ignored until the full value
        {"msg": "process_completed", "event_id": mine, "success": True, "output": {"data": ["", [["q", "ABC"]], "s"]}},
    ]
    responses.get(f"{URL}/queue/data", content_type="text/event-stream", body=_sse(*steps))
    with GradioSpace(URL).stream(None, "q") as stream:
        assert list(stream) == ["A", "BC"]


@pytest.mark.parametrize("seed", range(40))
@responses.activate
def test_whatever_an_app_sends_fails_only_with_typed_errors(seed):
    """Odd but well-framed messages: the stream either ends with text or
    raises an SDKError, never a bare AttributeError, KeyError or TypeError."""
    import random

    from replicate_qwen_sdk import SDKError

    generator = random.Random(seed)
    mine = "c" * 32
    shapes = [
        None,
        1,
        "text",
        [],
        {},
        [1, 2],
        {"data": 5},
        {"data": [None, None, None]},
        {"data": ["", "x", "s"]},
        {"data": [[], [["append", [0, 1], "x"]], []]},
        {"data": [[], [["replace", [], 3]], []]},
        {"data": [[], [["add", ["k"], 1]], []]},
        {"error": ["not", "text"]},
        {"data": ["", [["q", "ok"]], "s"]},
    ]
    messages = [_generating(mine, ["", [["q", "start"]], "s"])]
    for _ in range(generator.randint(1, 6)):
        kind = generator.choice(
            [
                "process_generating",
                "process_completed",
                "log",
                "progress",
                "estimation",
                "unexpected_error",
                "heartbeat",
                "weird",
            ]
        )
        messages.append(
            {
                "msg": kind,
                "event_id": generator.choice([mine, None, "other"]),
                "success": generator.choice([True, False, None]),
                "output": generator.choice(shapes),
                "log": generator.choice(shapes),
                "message": generator.choice(shapes),
            }
        )
    responses.get(f"{URL}/config", json=qwen4_config())
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    responses.get(f"{URL}/queue/data", content_type="text/event-stream", body=_sse(*messages))
    stream = GradioSpace(URL, max_retries=0).stream(None, "q")
    try:
        text = stream.read()
    except SDKError:
        return
    assert isinstance(text, str) and (stream.rewritten or text.startswith("start"))


# -- one parameter vocabulary, system prompts in the chat, custom chatbots ------------


def test_standard_parameters_without_an_input_are_left_out_unless_strict():
    app = parse_config(qwen4_config())
    endpoint = app.endpoint("model_chat")
    inputs = app.build_inputs  # strict: the one-step helper refuses, naming what there is
    with pytest.raises(InvalidArgumentError) as caught:
        inputs(endpoint, "q", [], None, {"max_tokens": 256})
    assert "max_tokens" in str(caught.value) and "strict" in str(caught.value)
    from replicate_qwen_sdk.providers.gradio.browser import ChatValues

    values = ChatValues(app, (endpoint,), "q", [], None, {"max_tokens": 256, "temperature": 0.2, "stop": "x"})
    assert values.ignored == ("max_tokens", "stop", "temperature")
    assert values.inputs_for(endpoint) == ["q", [], "You are a helpful assistant."]


def test_an_unknown_parameter_lists_only_parameter_inputs():
    app = parse_config(qwen4_config())
    with pytest.raises(InvalidArgumentError) as caught:
        app.build_inputs(app.endpoint("model_chat"), "q", [], None, {"colour": "red"})
    message = str(caught.value)
    assert "colour" in message and "Qwen2-72B-Instruct" not in message  # the chatbot's label is no parameter


def test_a_messages_chatbot_without_a_system_input_carries_the_system_prompt():
    config = qwen4_config()
    chatbot = next(c for c in config["components"] if c["type"] == "chatbot")
    chatbot["props"]["type"] = "messages"
    model_chat = next(d for d in config["dependencies"] if d.get("api_name") == "model_chat")
    model_chat["inputs"] = model_chat["inputs"][:2]  # no hidden system box
    app = parse_config(config)
    inputs = app.build_inputs(app.endpoint("model_chat"), "q", [Message("user", "a")], "Be brief.", {})
    assert inputs.data == ["q", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"}]]
    assert inputs.history_length == 2


def test_a_custom_chatbot_is_the_chat_and_takes_pairs_of_text_dicts():
    config = qwen4_config()
    for component in config["components"]:
        if component["type"] == "chatbot":
            component["type"] = "modelscopechatbot"
    app = parse_config(config)
    endpoint = app.endpoint(None)
    assert endpoint.api_name == "model_chat" and app.answer_location(endpoint) == (1, "chat")
    inputs = app.build_inputs(endpoint, "q", [Message("user", "a"), Message("assistant", "b")], None, {})
    assert inputs.data[1] == [[{"text": "a"}, {"text": "b"}]]
    delivered = []
    answer = AnswerTracker(1, "chat", 1, delivered)
    delivered.append(answer.full(["", [[{"text": "a"}, {"text": "b"}], [{"text": "q"}, {"text": "Hel"}]], "s"]))
    delivered.append(answer.diff([[], [["append", [1, 1, "text"], "lo"]], []]))
    assert delivered == ["Hel", "lo"]


def test_a_text_box_that_is_also_an_input_is_not_taken_for_the_answer():
    config = qwen4_config()
    for component in config["components"]:
        if component["type"] == "chatbot":
            component["type"] = "unknowncomponent"
    app = parse_config(config)
    model_chat = app.endpoint("model_chat")
    # Output 0 is the message box being cleared; the next text output is taken.
    assert app.answer_location(model_chat) == (2, "text")
    model_chat = model_chat._replace(outputs=model_chat.outputs[:2])
    with pytest.raises(ModelNotFoundError) as caught:
        app.answer_location(model_chat)
    assert "/model_chat" in str(caught.value) and "textbox 'Input'" in str(caught.value)


def test_a_step_is_reached_by_fn_index_with_the_chain_before_it():
    config = json.loads((DATA / "chat_interface.config.json").read_text())
    app = parse_config(config)
    assert [step.fn_index for step in app.route(fn_index=2)] == [0, 1, 2]
    assert [step.fn_index for step in app.route(with_history=True)] == [0, 1, 2]
    assert [step.fn_index for step in app.route()] == [18]  # the public /chat, when no history needs the chain
    with pytest.raises(ModelNotFoundError) as caught:
        app.route(fn_index=99)
    assert "fn_index 99" in str(caught.value)
    with pytest.raises(InvalidArgumentError):
        GradioSpace(URL, fn_index=-1)


@responses.activate
def test_a_space_that_needs_a_signed_in_user_says_so_in_sentences():
    mine = "d" * 32
    error = {"error": "This action requires a logged in user. Please sign in and retry.", "visible": True}
    responses.get(f"{URL}/config", json=qwen4_config())
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    responses.get(
        f"{URL}/queue/data",
        content_type="text/event-stream",
        body=_sse({"msg": "process_completed", "event_id": mine, "success": False, "output": error}),
    )
    with pytest.raises(AuthenticationError) as caught:
        GradioSpace(URL, hf_token="hf_not_a_login_0123456789").complete(None, "q")
    message = str(caught.value)
    assert "cannot sign in" in message and "hf_token does not replace" in message
    assert message.endswith(".") and ".." not in message and "hf_not_a_login" not in message


@responses.activate
def test_app_errors_end_as_one_sentence():
    mine = "d" * 32
    responses.get(f"{URL}/config", json=qwen4_config())
    responses.post(f"{URL}/queue/join", json={"event_id": mine})
    responses.get(
        f"{URL}/queue/data",
        content_type="text/event-stream",
        body=_sse({"msg": "process_completed", "event_id": mine, "success": False, "output": {"error": "'Too long.'"}}),
    )
    from replicate_qwen_sdk import PredictionError

    with pytest.raises(PredictionError) as caught:
        GradioSpace(URL).complete(None, "q")
    assert str(caught.value) == "The app failed: Too long."
