"""Replica of the Space gradio/chatbot_streaming: a hand-built ``gr.Blocks`` chat, messages format.

Source: gradio-app/gradio, demo/chatbot_streaming/run.py at tag gradio@5.49.1. Gradio's
scripts/upload_website_demos.py uploads each demo folder to the Space ``gradio/<demo>`` with a
README ``sdk_version: <release>``; the guide "How to Create a Custom Chatbot with Gradio
Blocks" lists https://huggingface.co/spaces/gradio/chatbot_streaming as its Space.
``gr.Chatbot(type="messages")``, ``msg.submit(user, [msg, chatbot], [msg, chatbot],
queue=False).then(bot, chatbot, chatbot)``; ``bot`` appends an empty assistant message and
streams the reply into it item by item (``time.sleep(0.05)`` per item).
Gradio version: 5.49.1 (the release the demo was taken from).

Changes from the original:
* the demo's stand-in for a model, ``random.choice(["How are you?", "I love you", "I'm very
  hungry"])``, is replaced by ``fake_models.bot_reply(history)``: the reply to the history,
  as tokens (so ``for character in bot_message`` streams token by token);
  ``import random`` is then unused and left in place.
  (``demo.launch()`` is already under ``if __name__ == "__main__":``.)
"""

import gradio as gr
import random
import time

from fake_models import bot_reply

GRADIO_MAJOR = 5

with gr.Blocks() as demo:
    chatbot = gr.Chatbot(type="messages")
    msg = gr.Textbox()
    clear = gr.Button("Clear")

    def user(user_message, history: list):
        return "", history + [{"role": "user", "content": user_message}]

    def bot(history: list):
        bot_message = bot_reply(history)  # was: random.choice(["How are you?", "I love you", "I'm very hungry"])
        history.append({"role": "assistant", "content": ""})
        for character in bot_message:
            history[-1]['content'] += character
            time.sleep(0.05)
            yield history

    msg.submit(user, [msg, chatbot], [msg, chatbot], queue=False).then(
        bot, chatbot, chatbot
    )
    clear.click(lambda: None, None, chatbot, queue=False)

if __name__ == "__main__":
    demo.launch()
