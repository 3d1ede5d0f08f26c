"""Replica of Hugging Face's default chat Space template (gradio-templates/chatbot), Gradio 5, messages.

Source: Perazok008/CaseStudy_1, app.py and README.md at commit f73c5dd
("Duplicate from gradio-templates/chatbot", 2026-02-03): the newest Gradio 5 template.
README ``sdk_version: 5.42.0``, ``hf_oauth: true``, ``hf_oauth_scopes: [inference-api]``.
``respond(message, history: list[dict[str, str]], system_message, max_tokens, temperature,
top_p, hf_token: gr.OAuthToken)`` builds ``InferenceClient(token=hf_token.token,
model="openai/gpt-oss-20b")``; ``gr.ChatInterface(respond, type="messages", ...)`` is rendered
in a ``gr.Blocks`` with a ``gr.Sidebar`` holding a ``gr.LoginButton``.
The zephyr + ``type="messages"`` variant was not found: the template went from the tuples
zephyr version (README 5.0.1) to this OAuth version.
Gradio version: 5.42.0; run here on 5.49.1.

Like the Space, ``respond`` needs a logged-in user: a call without the OAuth session
cookie fails with "This action requires a logged in user. Please sign in and retry."
Locally, Gradio's mocked login at ``/login/huggingface`` sets that session cookie.

Changes from the original:
* ``from huggingface_hub import InferenceClient`` -> ``from fake_models import InferenceClient``;
* Gradio's local mock of HF OAuth (used because of ``gr.LoginButton``) reads the machine's
  HF token and calls ``whoami()`` when the app is launched; it is pointed at a fixed fake
  profile (``fake_models.mocked_oauth_info``).
  (``demo.launch()`` is already under ``if __name__ == "__main__":``.)
"""

import gradio as gr
from fake_models import InferenceClient  # was: from huggingface_hub import InferenceClient
import gradio.oauth
from fake_models import mocked_oauth_info

# Gradio's local OAuth mock would read this machine's HF token and call whoami(): use a fake profile.
gradio.oauth._get_mocked_oauth_info = mocked_oauth_info

GRADIO_MAJOR = 5


def respond(
    message,
    history: list[dict[str, str]],
    system_message,
    max_tokens,
    temperature,
    top_p,
    hf_token: gr.OAuthToken,
):
    """
    For more information on `huggingface_hub` Inference API support, please check the docs: https://huggingface.co/docs/huggingface_hub/v0.22.2/en/guides/inference
    """
    client = InferenceClient(token=hf_token.token, model="openai/gpt-oss-20b")

    messages = [{"role": "system", "content": system_message}]

    messages.extend(history)

    messages.append({"role": "user", "content": message})

    response = ""

    for message in client.chat_completion(
        messages,
        max_tokens=max_tokens,
        stream=True,
        temperature=temperature,
        top_p=top_p,
    ):
        choices = message.choices
        token = ""
        if len(choices) and choices[0].delta.content:
            token = choices[0].delta.content

        response += token
        yield response


"""
For information on how to customize the ChatInterface, peruse the gradio docs: https://www.gradio.app/docs/chatinterface
"""
chatbot = gr.ChatInterface(
    respond,
    type="messages",
    additional_inputs=[
        gr.Textbox(value="You are a friendly Chatbot.", label="System message"),
        gr.Slider(minimum=1, maximum=2048, value=512, step=1, label="Max new tokens"),
        gr.Slider(minimum=0.1, maximum=4.0, value=0.7, step=0.1, label="Temperature"),
        gr.Slider(
            minimum=0.1,
            maximum=1.0,
            value=0.95,
            step=0.05,
            label="Top-p (nucleus sampling)",
        ),
    ],
)

with gr.Blocks() as demo:
    with gr.Sidebar():
        gr.LoginButton()
    chatbot.render()


if __name__ == "__main__":
    demo.launch()
