"""A multimodal chat app: ``gr.ChatInterface(multimodal=True)``, whose reply
says what arrived, so a test can prove an image's bytes reached the app.

The reply is ``text=<message text> files=<name>:<size>:<sha256 first 12>,...``
(``files=`` empty when none came). It runs on Gradio 4.44, 5.x and 6.x;
serve it on its own with ``python vision.py`` (any of those Gradios): it
prints ``{"vision": url}`` once up and serves until stdin closes.
"""

import hashlib
import inspect
import json
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["NO_PROXY"] = "127.0.0.1,localhost"

import gradio as gr  # noqa: E402


def _path(item):
    """A file of the message: a path (Gradio 5, 6) or a FileData dict (4.44)."""
    return item["path"] if isinstance(item, dict) else item


def describe(message):
    files = []
    for item in message.get("files") or []:
        path = _path(item)
        with open(path, "rb") as handle:
            data = handle.read()
        files.append(f"{os.path.basename(path)}:{len(data)}:{hashlib.sha256(data).hexdigest()[:12]}")
    return f"text={message.get('text', '')} files={','.join(files)}"


def vision_chat(message, history):
    words = describe(message).split(" ")
    reply = ""
    for index, word in enumerate(words):
        reply += ("" if index == 0 else " ") + word
        yield reply


def vision_app():
    options = {"multimodal": True}
    if "api_name" in inspect.signature(gr.ChatInterface).parameters:
        options["api_name"] = "chat"
    return gr.ChatInterface(vision_chat, **options).queue(default_concurrency_limit=None)


def main():
    demo = vision_app()
    options = dict(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, show_error=True)
    if "ssr_mode" in inspect.signature(demo.launch).parameters:  # Gradio 5+
        options["ssr_mode"] = False
    demo.launch(**options)
    print(json.dumps({"vision": demo.local_url.rstrip("/")}), flush=True)
    sys.stdin.read()  # until the caller closes our stdin
    demo.close()


if __name__ == "__main__":
    main()
