"""Chats: validating them, and flattening them into a prompt.

A chat is either a plain prompt string or a list of ``{"role", "content"}``
mappings. ``content`` is a string, or a list of parts as OpenAI-style chat
APIs write it: text (``{"type": "text", "text": ...}``) and, in user
messages, images (``{"type": "image_url", "image_url": {"url": ...}}``,
where the URL is an http(s) URL, a ``data:`` URI or a local file path; see
:mod:`replicate_qwen_sdk.images`).
"""

from __future__ import annotations

import os
from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import InvalidArgumentError

__all__ = [
    "Message",
    "Messages",
    "chat_images",
    "format_prompt",
    "normalize_messages",
    "split_system",
]

#: What callers may pass as a chat.
Messages = Union[str, Sequence[Mapping[str, Any]]]

KNOWN_ROLES = ("system", "user", "assistant")


class Message(NamedTuple):
    """One validated turn of a chat."""

    role: str
    #: The text of the message (its text parts joined).
    content: str
    #: The ``url`` of each image part, in order (user messages only).
    images: Tuple[str, ...] = ()


def normalize_messages(messages: Messages) -> List[Message]:
    """Validate a chat and return it as a list of :class:`Message`.

    :raises InvalidArgumentError: (a ``ValueError``) for anything malformed,
        with the position and the reason.
    """
    if isinstance(messages, str):
        return [Message("user", messages)]
    if isinstance(messages, (bytes, bytearray)) or not isinstance(messages, Sequence):
        raise InvalidArgumentError(
            "messages must be a prompt string or a list of {'role': ..., 'content': ...} "
            f"dicts, got {type(messages).__name__}."
        )
    if not messages:
        raise InvalidArgumentError("messages is empty: give at least one message.")
    return [_normalize_one(index, message) for index, message in enumerate(messages)]


def _normalize_one(index: int, message: Any) -> Message:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise InvalidArgumentError(f"{where} must be a dict with 'role' and 'content', got {type(message).__name__}.")
    role = message.get("role")
    if not isinstance(role, str) or role not in KNOWN_ROLES:
        raise InvalidArgumentError(f"{where}['role'] must be one of {', '.join(KNOWN_ROLES)}; got {role!r}.")
    if "content" not in message:
        raise InvalidArgumentError(f"{where} has no 'content'.")
    text, images = _content(where, role, message["content"])
    return Message(role, text, images)


_PARTS = "text ({'type': 'text', 'text': ...}) and image ({'type': 'image_url', 'image_url': {'url': ...}}) parts"


def _content(where: str, role: str, content: Any) -> Tuple[str, Tuple[str, ...]]:
    """The text and the image URLs of a message's ``content``."""
    if isinstance(content, str):
        return content, ()
    if not isinstance(content, Sequence) or isinstance(content, (bytes, bytearray)):
        raise InvalidArgumentError(
            f"{where}['content'] must be a string or a list of {_PARTS}, got {type(content).__name__}."
        )
    texts: List[str] = []
    images: List[str] = []
    for position, part in enumerate(content):
        at = f"{where}['content'][{position}]"
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping):
            raise InvalidArgumentError(f"{at} is a {type(part).__name__}; the parts supported are {_PARTS}.")
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images.append(_image_url(at, role, part))
        else:
            what = "a text part without a string 'text'" if kind == "text" else f"a {kind!r} part"
            raise InvalidArgumentError(f"{at} is {what}; the parts supported are {_PARTS}.")
    return "".join(texts), tuple(images)


def _image_url(at: str, role: str, part: Mapping[str, Any]) -> str:
    """The ``url`` of an image part (checked later, by the provider that sends it)."""
    if role != "user":
        raise InvalidArgumentError(f"{at} is an image in a {role} message; only user messages can carry images.")
    image_url = part.get("image_url")
    url = image_url.get("url") if isinstance(image_url, Mapping) else None
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str) or not url.strip():
        raise InvalidArgumentError(
            f"{at}['image_url'] must be {{'url': ...}} holding an http(s) URL, a data: URI or a local file path."
        )
    return url


def chat_images(messages: Sequence[Message]) -> List[Tuple[str, str]]:
    """Every image of a chat, in order, as ``(where, url)``: ``where`` names
    it for messages (``"image 1 of messages[2]"``)."""
    return [
        (f"image {number} of messages[{index}]", url)
        for index, message in enumerate(messages)
        for number, url in enumerate(message.images, start=1)
    ]


def split_system(messages: List[Message]) -> Tuple[Optional[str], List[Message]]:
    """Separate the system messages from the conversation.

    :returns: the system messages' contents joined by ``\\n`` (or ``None``
        when there are none), and the remaining messages in order.
    """
    system = [message.content for message in messages if message.role == "system"]
    rest = [message for message in messages if message.role != "system"]
    return ("\n".join(system) if system else None), rest


def format_prompt(messages: List[Message]) -> str:
    """Flatten a conversation into one prompt.

    A single message is its content, unchanged. Several become
    ``"Role: content"`` lines joined by ``\\n``, followed by a line
    ``"Assistant:"`` that invites the model to answer.
    """
    if not messages:
        raise InvalidArgumentError("messages has no user or assistant message to send.")
    if len(messages) == 1:
        return messages[0].content
    lines = [f"{message.role.capitalize()}: {message.content}" for message in messages]
    return "\n".join(lines) + "\nAssistant:"
