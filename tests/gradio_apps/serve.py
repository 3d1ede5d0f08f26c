"""Serve the test apps on 127.0.0.1 until stdin closes.

Prints one JSON line, ``{"qwen": url, "chat": url, "busy": url, "vision":
url}``, once all are up.
"""

import json
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["NO_PROXY"] = "127.0.0.1,localhost"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apps  # noqa: E402
import vision  # noqa: E402


def main() -> None:
    urls = {}
    launched = []
    builders = [("qwen", apps.qwen_app), ("chat", apps.chat_app), ("busy", apps.busy_app)]
    builders.append(("vision", vision.vision_app))
    for name, build in builders:
        demo = build()
        demo.launch(
            server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, show_error=name == "chat", ssr_mode=False
        )
        urls[name] = demo.local_url.rstrip("/")
        launched.append(demo)
    print(json.dumps(urls), flush=True)
    sys.stdin.read()  # until the test session closes our stdin
    for demo in launched:
        demo.close()


if __name__ == "__main__":
    main()
