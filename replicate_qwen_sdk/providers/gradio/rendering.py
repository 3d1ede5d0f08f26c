"""What an app's output component does to the answer text between updates,
and so how much of the text shown so far can no longer change.

An app's values are what its components render, not what the model wrote.
A Textbox, JSON or Markdown output shows the model's text as it is: every
update extends it, and all of it can be handed on at once. Gradio's Chatbot
(4.x, 5.x, 6.x, and custom chatbots such as modelscope_studio's) runs
:func:`inspect.cleandoc` on every message at every update:

* tabs become spaces, the first line loses its leading whitespace;
* lines 2..n lose their common indentation (the "margin");
* blank lines at the start and the end are dropped.

So "Install it:\\n    pip install foo" is shown as "Install it:\\npip install
foo" until a later line at column 0 arrives and the margin drops to 0; then
the second line is shown indented again. The margin of the model's raw text
is not visible in what the app sends (both texts above look the same), so
no later line is ever known to be final before the answer is: the first
line streams as it grows, and the rest arrives with the final value.
"""

from __future__ import annotations

import abc

__all__ = ["ChatbotCleandoc", "Rendering", "Verbatim", "rendering_for"]


class Rendering(abc.ABC):
    """How much of the text not yet handed on is final.

    One instance per answer: a rule may remember what it has seen.
    """

    #: True once nothing more can be released before the final value.
    closed = False

    @abc.abstractmethod
    def settled(self, held: str, at_start: bool) -> int:
        """How many leading characters of ``held`` (the text shown beyond
        what was handed on) no later update can change.

        :param at_start: nothing has been handed on yet.
        """


class Verbatim(Rendering):
    """An output that shows the text as the model wrote it."""

    def settled(self, held: str, at_start: bool) -> int:
        return len(held)


class ChatbotCleandoc(Rendering):
    """A Chatbot message: ``inspect.cleandoc`` at every update.

    The first line is final once a newline follows it, except its trailing
    whitespace while it is still the last line (a newline and an indented
    line could follow, and a whitespace-only tail can vanish). Everything
    after the first newline waits for the final value: a later line at
    column 0 can still re-indent all of it.

    A shown text that starts with whitespace cannot be the raw first line
    (cleandoc strips that one): it is a later line under the margin, so
    nothing of it is final either.
    """

    def __init__(self) -> None:
        self.closed = False

    def settled(self, held: str, at_start: bool) -> int:
        if self.closed or not held:
            return 0
        if at_start and held[0].isspace():
            self.closed = True
            return 0
        newline = held.find("\n")
        if newline >= 0:
            self.closed = True
            return newline
        return len(held.rstrip())


def rendering_for(component_type: str, *, major: int = 0, tuples: bool = False) -> Rendering:
    """The rule of an output component, by its ``/config`` type.

    Every Chatbot cleans its messages up, except Gradio 5's in the
    (deprecated) tuples format, which shows them as they are.

    :param major: the app's Gradio major version.
    :param tuples: the Chatbot holds ``[user, assistant]`` pairs.
    """
    if component_type == "chatbot" and major == 5 and tuples:
        return Verbatim()
    if component_type.endswith("chatbot"):
        return ChatbotCleandoc()
    return Verbatim()
