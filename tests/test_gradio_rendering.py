"""Answers shown through a Chatbot, which runs inspect.cleandoc on every
message at every update: what is handed on is never taken back, and the
chunks add up to the app's final message exactly."""

import inspect
import random
import re

import pytest

from replicate_qwen_sdk.providers.gradio.answer import AnswerTracker
from replicate_qwen_sdk.providers.gradio.rendering import ChatbotCleandoc, Verbatim, rendering_for

ANSWERS = {
    "indented code line": "Install it:\n    pip install foo\nThen restart.",
    "nested bullets": "Steps:\n- one\n  - one.a\n  - one.b\n- two\n",
    "code block after a colon": "Run:\n\n    make\n    make install\n\nDone.",
    "leading spaces": "   Hello there\n  world",
    "tabs": "Table:\n\tcol1\tcol2\n\tx\ty\nend",
    "blank lines at start and end": "\n\nHello\nworld\n\n\n",
    "only one line": "A plain answer with spaces at the end   ",
    "indented to the end": "Code:\n    a = 1\n    b = 2\n",
    "crlf": "one\r\n  two\r\nthree",
    "starts with an indented block": "\n    x = 1\n    y = 2\nz",
}


def tokens(text):
    return re.findall(r"\s+|\S+", text)


def chatbot_updates(raw, split):
    """What a tuples Chatbot shows after each token: cleandoc of the prefix."""
    shown, prefix = [], ""
    for token in split(raw):
        prefix += token
        shown.append([["question", inspect.cleandoc(prefix)]])
    return shown


def run_full_values(updates, rendering):
    delivered = []
    tracker = AnswerTracker(0, "chat", 0, delivered, rendering)
    first_chunk_at = None
    for position, value in enumerate(updates):
        chunk = tracker.full([value])
        if chunk:
            first_chunk_at = position if first_chunk_at is None else first_chunk_at
            delivered.append(chunk)
    return delivered, tracker, first_chunk_at


def string_diff(old, new):
    """Gradio's diff of one string: an append when it grows, else a replace."""
    return [["append", [], new[len(old) :]]] if new.startswith(old) else [["replace", [], new]]


def run_diffs(updates, rendering):
    """Updates as Gradio sends them: a full value, then edit lists."""
    delivered = []
    tracker = AnswerTracker(0, "text", 0, delivered, rendering)
    previous = None
    for value in updates:
        text = value[0][1]
        chunk = tracker.full([text]) if previous is None else tracker.diff([string_diff(previous, text)])
        previous = text
        if chunk:
            delivered.append(chunk)
    return delivered, tracker


@pytest.mark.parametrize("name", sorted(ANSWERS))
@pytest.mark.parametrize("split", [tokens, list], ids=["tokens", "characters"])
def test_chunks_add_up_to_the_final_message_and_are_never_taken_back(name, split):
    raw = ANSWERS[name]
    updates = chatbot_updates(raw, split)
    final = updates[-1][0][1]
    delivered, tracker, _ = run_full_values(updates, ChatbotCleandoc())
    assert not tracker.diverged
    streamed = "".join(delivered)
    assert final.startswith(streamed)
    assert streamed + final[len(streamed) :] == final  # the end supplies the rest
    delivered, tracker = run_diffs(updates, ChatbotCleandoc())
    assert not tracker.diverged
    assert final.startswith("".join(delivered))


def test_the_first_line_streams_before_the_end():
    raw = "Here is a long first line of an answer\n    indented\nback at column 0"
    updates = chatbot_updates(raw, tokens)
    delivered, _, first_at = run_full_values(updates, ChatbotCleandoc())
    assert first_at == 0
    assert "".join(delivered) == "Here is a long first line of an answer"


def test_trailing_whitespace_of_the_last_line_waits_for_what_follows():
    rendering = ChatbotCleandoc()
    assert rendering.settled("Hello ", at_start=True) == len("Hello")
    assert rendering.settled(" world", at_start=False) == len(" world")
    assert rendering.settled("\n  more", at_start=False) == 0
    assert rendering.closed


def test_a_shown_text_that_starts_indented_is_never_final_early():
    rendering = ChatbotCleandoc()
    assert rendering.settled("  x = 1", at_start=True) == 0
    assert rendering.closed


def test_text_outputs_hand_everything_on_at_once():
    assert Verbatim().settled("a\n  b \n", at_start=True) == len("a\n  b \n")
    assert isinstance(rendering_for("chatbot"), ChatbotCleandoc)
    assert isinstance(rendering_for("modelscopechatbot"), ChatbotCleandoc)
    assert isinstance(rendering_for("textbox"), Verbatim)
    # Gradio 5 shows tuples messages as they are; its messages format is cleaned.
    assert isinstance(rendering_for("chatbot", major=5, tuples=True), Verbatim)
    assert isinstance(rendering_for("chatbot", major=5, tuples=False), ChatbotCleandoc)
    assert isinstance(rendering_for("chatbot", major=4, tuples=True), ChatbotCleandoc)


def test_random_answers_never_diverge():
    rng = random.Random(7)
    alphabet = ["a", "b", " ", "  ", "\t", "\n", "\n    ", "\n  ", "x y", "-", "\r\n"]
    for _ in range(400):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        if raw.lstrip() and not raw[0].isspace():  # the raw first line is a text line
            updates = chatbot_updates(raw, tokens)
            delivered, tracker, _ = run_full_values(updates, ChatbotCleandoc())
            final = updates[-1][0][1]
            assert not tracker.diverged, raw
            assert final.startswith("".join(delivered)), raw


def test_an_unexplained_rewrite_stops_the_chunks_without_an_error():
    delivered = []
    tracker = AnswerTracker(0, "chat", 0, delivered, ChatbotCleandoc())
    delivered.append(tracker.full([[["q", "Thinking"]]]))
    assert delivered == ["Thinking"]
    assert tracker.full([[["q", "The answer is 4."]]]) == ""
    assert tracker.diverged
    assert tracker.full([[["q", "The answer is 4. Done"]]]) == ""
    assert tracker.text() == "The answer is 4. Done"
