"""Client CPU of a long streamed answer from a real Gradio 6 app.

The app is the Qwen-shaped test app (``tests/gradio_apps``), in its own
process; its ``LONG n`` query streams ``n`` updates, each a diff appending
one word to the Chatbot's last message. Compared, on the same server:

* floor: ``requests`` + byte split + ``json.loads`` + taking the appended
  text of each diff — the least a client can do;
* this SDK (``Qwen_Qwen_2_72B(url=...).complete``);
* ``gradio_client`` (``Client.submit`` and iterating the job), if installed.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from typing import Callable, Dict, List, Optional, Tuple

import requests

from replicate_qwen_sdk import Qwen_Qwen_2_72B


def expected_text(words: int) -> str:
    return "".join(f"w{i} " for i in range(words)).strip()  # the Chatbot strips its messages


def floor_client(url: str, words: int) -> str:
    session = requests.Session()
    config = session.get(f"{url}/config").json()
    prefix = config.get("api_prefix") or ""
    dependency = next(d for d in config["dependencies"] if d.get("api_name") == "model_chat")
    session_hash = uuid.uuid4().hex[:12]
    event_id = session.post(
        f"{url}{prefix}/queue/join",
        json={
            "data": [f"LONG {words}", [], "sys"],
            "fn_index": dependency["id"],
            "trigger_id": dependency["targets"][0][0],
            "session_hash": session_hash,
            "event_data": None,
        },
    ).json()["event_id"]
    response = session.get(f"{url}{prefix}/queue/data", params={"session_hash": session_hash}, stream=True)
    parts: List[str] = []
    buffer = b""
    for chunk in response.iter_content(chunk_size=None):
        buffer += chunk
        *messages, buffer = buffer.split(b"\n\n")
        for raw in messages:
            message = json.loads(raw[6:])
            if message.get("event_id") != event_id:
                continue
            if message["msg"] == "process_generating":
                data = message["output"]["data"]
                if not parts:
                    parts.append(data[1][-1]["content"][0]["text"])
                else:
                    parts.extend(edit[2] for edit in data[1] if edit[0] == "append")
            elif message["msg"] == "process_completed":
                response.close()
                session.close()
                return "".join(parts)
    raise RuntimeError("stream ended early")


def sdk_client(url: str, words: int) -> str:
    with Qwen_Qwen_2_72B(url=url) as provider:
        return provider.complete(None, f"LONG {words}")


def gradio_client_client(url: str, words: int) -> str:
    from gradio_client import Client

    client = Client(url, verbose=False)
    job = client.submit(f"LONG {words}", [], "sys", api_name="/model_chat")
    for _ in job:
        pass
    history = job.result()[1]
    content = history[-1]["content"]
    client.close()
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def available_clients() -> Dict[str, Optional[Callable[[str, int], str]]]:
    clients: Dict[str, Optional[Callable[[str, int], str]]] = {"floor": floor_client, "sdk": sdk_client}
    try:
        import gradio_client  # noqa: F401
    except ImportError:
        clients["gradio_client"] = None
    else:
        clients["gradio_client"] = gradio_client_client
    return clients


def run(sizes=(3000, 6000), runs: int = 3) -> Tuple[Dict[int, Dict[str, Optional[float]]], Dict[str, Optional[float]]]:
    """Median client CPU seconds per answer size and client (None: not
    installed), and each client's median over rounds of its own
    larger/smaller ratio. Within a round every client runs both
    sizes; the order of the sizes alternates from round to round, so drift
    in the machine's speed does not pass for growth."""
    from .servers import gradio_apps

    clients = available_clients()
    small, large = sizes
    results: Dict[int, Dict[str, List[float]]] = {size: {name: [] for name in clients} for size in sizes}
    with gradio_apps() as urls:
        url = urls["qwen"]
        sdk_client(url, 10)  # warm the app up
        for round_ in range(runs):
            for size in sizes if round_ % 2 == 0 else tuple(reversed(sizes)):
                for name, client in clients.items():
                    if client is None:
                        continue
                    started = time.process_time()
                    text = client(url, size)
                    results[size][name].append(time.process_time() - started)
                    if text.strip() != expected_text(size):
                        raise AssertionError(f"{name} returned wrong text for {size} words")
    medians = {
        size: {name: (statistics.median(values) if values else None) for name, values in by_client.items()}
        for size, by_client in results.items()
    }
    growth = {
        name: (
            statistics.median(big / little for big, little in zip(results[large][name], results[small][name]))
            if results[small][name]
            else None
        )
        for name in clients
    }
    return medians, growth
