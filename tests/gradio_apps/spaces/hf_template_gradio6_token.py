"""Replica of Hugging Face's chat Space template for Gradio 6 as Spaces commonly run it
without the visitor login: the model token comes from a Space secret.

Source: hf_template_gradio6.py beside this file (the template itself), with the change that
duplicated Spaces make so that anyone, API callers included, can use them: ``respond`` loses
its ``hf_token: gr.OAuthToken`` parameter and reads ``HF_TOKEN`` from the environment, and the
sidebar with the ``gr.LoginButton`` goes (the ChatInterface is the app).
Gradio version: 6.x, as the template.

Changes from the template: those above, and
``from huggingface_hub import InferenceClient`` -> ``from fake_models import InferenceClient``.
"""

import gradio as gr
from fake_models import InferenceClient  # was: from huggingface_hub import InferenceClient
import os

GRADIO_MAJOR = 6


def respond(
    message,
    history: list[dict[str, str]],
    system_message,
    max_tokens,
    temperature,
    top_p,
):
    """
    For more information on `huggingface_hub` Inference API support, please check the docs: https://huggingface.co/docs/huggingface_hub/v0.22.2/en/guides/inference
    """
    client = InferenceClient(token=os.environ.get("HF_TOKEN"), model="openai/gpt-oss-20b")

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

demo = chatbot


if __name__ == "__main__":
    demo.launch()
