"""Replica of Hugging Face's default chat Space template (gradio-templates/chatbot), Gradio 4 era.

Source: Uzair-A-Jokhio/TalkBot-HuggingFace, app.py at commit 2772b44 ("initial commit",
2025-05-10), the template's ``app.py`` unmodified: ``InferenceClient("HuggingFaceH4/zephyr-7b-beta")``,
``respond(message, history: list[tuple[str, str]], system_message, max_tokens, temperature,
top_p)`` and a ``gr.ChatInterface`` without ``type=`` (tuples history).
The Gradio 4 Spaces made from this template have the same ``app.py``: see
Bhavjot121/ZephyrLLMChatbot719, app.py at b51354b (2024-06-24, only its system message,
examples and title customised) with README ``sdk_version: 4.36.1``, and the other
"CustomizedLLMApp" Spaces of that course (Rinkalpreet/Customized-LLM-APP4368571,
Sukhraj8842/Customized-LLM-APP842), all README ``sdk_version: 4.36.1``.
Gradio version: 4.36.1 (template README of mid-2024); run here on 4.44.1.

Changes from the original:
* ``from huggingface_hub import InferenceClient`` -> ``from fake_models import InferenceClient``.
  (``demo.launch()`` is already under ``if __name__ == "__main__":``.)
"""

import gradio as gr
from fake_models import InferenceClient  # was: from huggingface_hub import InferenceClient

"""
For more information on `huggingface_hub` Inference API support, please check the docs: https://huggingface.co/docs/huggingface_hub/v0.22.2/en/guides/inference
"""
client = InferenceClient("HuggingFaceH4/zephyr-7b-beta")

GRADIO_MAJOR = 4


def respond(
    message,
    history: list[tuple[str, str]],
    system_message,
    max_tokens,
    temperature,
    top_p,
):
    messages = [{"role": "system", "content": system_message}]

    for val in history:
        if val[0]:
            messages.append({"role": "user", "content": val[0]})
        if val[1]:
            messages.append({"role": "assistant", "content": val[1]})

    messages.append({"role": "user", "content": message})

    response = ""

    for message in client.chat_completion(
        messages,
        max_tokens=max_tokens,
        stream=True,
        temperature=temperature,
        top_p=top_p,
    ):
        token = message.choices[0].delta.content

        response += token
        yield response


"""
For information on how to customize the ChatInterface, peruse the gradio docs: https://www.gradio.app/docs/chatinterface
"""
demo = gr.ChatInterface(
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


if __name__ == "__main__":
    demo.launch()
