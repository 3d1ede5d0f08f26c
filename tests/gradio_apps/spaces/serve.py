"""Serve Space replicas on 127.0.0.1 until stdin closes.

Usage: ``python serve.py NAME [NAME ...]`` where each NAME is a module of this folder
(``qwen2_72b_instruct``, ``hf_template_gradio5``, ...) defining ``demo``. Prints one JSON
line, ``{"NAME": "http://127.0.0.1:PORT", ...}``, once every demo is up, then waits for
stdin to close and closes the demos. Run it with the Python of a virtual environment holding
the Gradio major the replicas are meant for (their ``GRADIO_MAJOR``).

The process works in a temporary directory, so that files Gradio writes next to the app
(cached examples, flagged data) stay out of the source tree.
"""

import contextlib
import inspect
import json
import os
import socket
import sys
import tempfile

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

WORKDIR = tempfile.mkdtemp(prefix="gradio-spaces-")
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", os.path.join(WORKDIR, "cached_examples"))
os.chdir(WORKDIR)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(demo):
    kwargs = dict(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
    )
    if "ssr_mode" in inspect.signature(demo.launch).parameters:  # Gradio 5+
        kwargs["ssr_mode"] = False
    demo.launch(**kwargs)
    return demo.local_url.rstrip("/")


def main(names) -> None:
    if not names:
        sys.exit("usage: python serve.py NAME [NAME ...]")
    urls = {}
    launched = []
    # Gradio prints progress (e.g. "Caching examples at: ...") to stdout: keep stdout for the URLs.
    with contextlib.redirect_stdout(sys.stderr):
        modules = [__import__(name) for name in names]
        for name, module in zip(names, modules):
            urls[name] = launch(module.demo)
            launched.append(module.demo)
    print(json.dumps(urls), flush=True)
    sys.stdin.read()  # until the caller closes our stdin
    for demo in launched:
        demo.close()


if __name__ == "__main__":
    main(sys.argv[1:])
