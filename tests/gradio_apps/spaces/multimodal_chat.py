"""Replica of the Hugging Face Space for AURA-1 (edzhuang/aura-1), a multimodal chat Space.

Source: edzhuang/aura-1, space/app.py and space/README.md at commit e28b951
("Add space/ directory: Gradio chat Space for AURA-1"; the files the README tells the owner
to upload to the Space). ``gr.ChatInterface(fn=chat, multimodal=True, type="messages", ...)``
with the default ``gr.MultimodalTextbox``; ``chat(message, history)`` turns the
``{text, files}`` message into OpenAI-style content parts (images as base64 data URLs) and
streams ``InferenceClient(model="edzhuang/aura-1").chat_completion(messages,
max_tokens=512, stream=True)``. Single-turn by design: the history is not sent to the model.
It catches model errors and yields them as text ("Inference failed: ...").
Gradio version: README ``sdk_version: 4.44.0``; run here on 4.44.1. On 4.44.x a message with
an image fails inside ``chat`` (Gradio 4's multimodal ChatInterface hands ``files`` over as
FileData dicts, the app expects paths: "expected str, bytes or os.PathLike object, not
dict"); text works. The same file also runs on Gradio 5.49.1, where images work.

Changes from the original:
* ``from huggingface_hub import InferenceClient`` -> ``from fake_models import InferenceClient``.
  (``demo.launch()`` is already under ``if __name__ == "__main__":``.)
"""

"""Gradio chat interface for AURA-1, hosted as a free CPU Space.

The Space itself runs no model — inference is delegated to HF's serverless
Inference API for `edzhuang/aura-1`. The Space process just hosts a
Gradio UI (well within free CPU tier resources), so the only constraint
is HF's serverless rate limits and cold-start latency.

Single-turn by design: AURA-1 was trained on independent question/answer
pairs, so multi-turn context just adds noise that the model wasn't taught
to handle.
"""

import base64
import os
from pathlib import Path

import gradio as gr
from fake_models import InferenceClient  # was: from huggingface_hub import InferenceClient

GRADIO_MAJOR = 4

MODEL_ID = "edzhuang/aura-1"
MAX_NEW_TOKENS = 512

# HF_TOKEN comes from a Space secret. Without it, requests hit a stricter
# rate limit but still work for public models.
client = InferenceClient(model=MODEL_ID, token=os.environ.get("HF_TOKEN"))


def _image_to_data_url(path: str) -> str:
    """Encode a local image file as a base64 data: URL for the chat API."""
    suffix = Path(path).suffix.lower().lstrip(".")
    mime = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "gif": "gif"}.get(suffix, "png")
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/{mime};base64,{data}"


def chat(message, history):
    """Streaming Gradio handler. `message` is a {text, files} dict in multimodal mode."""
    text = message.get("text", "") if isinstance(message, dict) else (message or "")
    files = message.get("files", []) if isinstance(message, dict) else []

    content: list[dict] = []
    if text:
        content.append({"type": "text", "text": text})
    for f in files:
        content.append({"type": "image_url", "image_url": {"url": _image_to_data_url(f)}})

    if not content:
        yield "(empty input — type a question or attach an image)"
        return

    messages = [{"role": "user", "content": content}]

    try:
        accumulated = ""
        for chunk in client.chat_completion(messages, max_tokens=MAX_NEW_TOKENS, stream=True):
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                accumulated += delta
                yield accumulated
        if not accumulated:
            yield "(no response from model)"
    except Exception as e:
        yield (
            f"Inference failed:\n```\n{e}\n```\n\n"
            "First request after a period of inactivity takes 60–120s while the "
            "model loads on HF's serverless infrastructure. Please retry."
        )


demo = gr.ChatInterface(
    fn=chat,
    title="AURA-1",
    description=(
        "**AURA-1** — the first open-weights foundation model to exceed 90% on "
        "[Humanity's Last Exam](https://lastexam.ai/) (public split). "
        "Weights: [edzhuang/aura-1](https://huggingface.co/edzhuang/aura-1)."
    ),
    multimodal=True,
    type="messages",
    examples=[
        {"text": "What is the capital of France?", "files": []},
        {"text": "Solve for x: 2x + 5 = 13", "files": []},
    ],
)


if __name__ == "__main__":
    demo.launch()
