"""Chats: validation and flattening into a prompt."""

import pytest

from replicate_qwen_sdk.errors import InvalidArgumentError
from replicate_qwen_sdk.messages import Message, format_prompt, normalize_messages, split_system


def test_a_plain_string_is_one_user_message():
    assert normalize_messages("hi") == [Message("user", "hi")]


def test_content_as_text_parts_is_joined():
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"}, "b", {"text": "c"}]}]
    assert normalize_messages(messages) == [Message("user", "abc")]


@pytest.mark.parametrize(
    "messages, fragment",
    [
        ([], "empty"),
        (b"bytes", "prompt string or a list"),
        (42, "prompt string or a list"),
        ([{"content": "x"}], "messages[0]['role']"),
        ([{"role": "wizard", "content": "x"}], "wizard"),
        ([{"role": "user"}], "no 'content'"),
        ([{"role": "user", "content": None}], "must be a string"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}], "['image_url'] must be {'url'"),
        (["just a string in a list"], "messages[0] must be a dict"),
        ([{"role": "user", "content": "ok"}, {"role": "user", "content": 5}], "messages[1]"),
    ],
)
def test_malformed_chats_are_rejected_with_the_position(messages, fragment):
    with pytest.raises(InvalidArgumentError) as caught:
        normalize_messages(messages)
    assert fragment in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_format_prompt_passes_a_single_message_unchanged():
    assert format_prompt([Message("user", "  keep\nthis  ")]) == "  keep\nthis  "


def test_format_prompt_flattens_a_conversation_and_invites_the_answer():
    chat = [Message("user", "Hi"), Message("assistant", "Hello!"), Message("user", "2+2?")]
    assert format_prompt(chat) == "User: Hi\nAssistant: Hello!\nUser: 2+2?\nAssistant:"


def test_format_prompt_needs_a_message():
    with pytest.raises(InvalidArgumentError):
        format_prompt([])


def test_split_system_joins_system_messages_and_keeps_the_rest_in_order():
    chat = normalize_messages(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "a"},
            {"role": "system", "content": "Use French."},
            {"role": "assistant", "content": "b"},
        ]
    )
    system, rest = split_system(chat)
    assert system == "Be brief.\nUse French."
    assert rest == [Message("user", "a"), Message("assistant", "b")]
    assert split_system([Message("user", "x")]) == (None, [Message("user", "x")])
