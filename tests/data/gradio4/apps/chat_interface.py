"""Minimal gr.ChatInterface test app (Gradio 4.x).

Usage: python chat_interface.py PORT
"""

import os
import sys
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402


def fn(message, history):
    words = ["echo:" + message, " Hello", " there", " friend"]
    out = ""
    for w in words:
        out += w
        yield out
        time.sleep(0.05)


demo = gr.ChatInterface(fn)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7861
    demo.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        show_error=True,
    )
    print(f"READY {port}", flush=True)
    demo.block_thread()
