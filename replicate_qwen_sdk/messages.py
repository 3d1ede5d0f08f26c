"""Chats: validating them, and flattening them into a prompt.

A chat is either a plain prompt string or a list of ``{"role", "content"}``
mappings. ``content`` is a string, or a list of text parts
(``{"type": "text", "text": ...}``) as several chat APIs write it.
"""

from __future__ import annotations

from typing import Any, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from .errors import InvalidArgumentError

__all__ = [
    "Message",
    "Messages",
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
    content: str


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
    return Message(role, _content_text(where, message["content"]))


def _content_text(where: str, content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        texts = []
        for position, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            else:
                raise InvalidArgumentError(
                    f"{where}['content'][{position}] is not a text part "
                    "({'type': 'text', 'text': ...}); only text is supported."
                )
        return "".join(texts)
    raise InvalidArgumentError(
        f"{where}['content'] must be a string or a list of text parts, got {type(content).__name__}."
    )


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
