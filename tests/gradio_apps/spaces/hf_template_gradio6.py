"""Replica of Hugging Face's default chat Space template (gradio-templates/chatbot), Gradio 6.

Source: the Gradio 5 template (Perazok008/CaseStudy_1, app.py at f73c5dd, "Duplicate from
gradio-templates/chatbot", README ``sdk_version: 5.42.0``) without ``type="messages"``, which
Gradio 6's ``gr.ChatInterface`` no longer accepts. The template body in exactly that form
(no ``type=``) is in two 2026 Spaces held by the code index (file ids 69535038313 and
52630250034; the index does not name their repositories), and Perazok008/CaseStudy_1 made
the same single change when it moved to ``sdk_version: 6.5.1`` (commit a4027ed). No copy of
the template repository itself with a Gradio 6 README was found.
Gradio version: 6.x; run here on the newest 6.x (6.31.0).

Like the Space, ``respond`` needs a logged-in user (OAuth session cookie); see
hf_template_gradio5.py.

Changes from the original:
* ``from huggingface_hub import InferenceClient`` -> ``from fake_models import InferenceClient``;
* Gradio's local mock of HF OAuth is pointed at a fixed fake profile, as in
  hf_template_gradio5.py.
  (``demo.launch()`` is already under ``if __name__ == "__main__":``.)
"""

import gradio as gr
from fake_models import InferenceClient  # was: from huggingface_hub import InferenceClient
import gradio.oauth
from fake_models import mocked_oauth_info

# Gradio's local OAuth mock would read this machine's HF token and call whoami(): use a fake profile.
gradio.oauth._get_mocked_oauth_info = mocked_oauth_info

GRADIO_MAJOR = 6


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
