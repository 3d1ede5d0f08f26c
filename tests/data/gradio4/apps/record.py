"""Record raw HTTP traffic from the running Gradio 4 test apps.

Usage: python record.py QWEN_BASE_URL CHAT_BASE_URL OUT_DIR
Uses plain `requests` (no gradio_client).
"""

import json
import os
import secrets
import sys
import time

import requests

QWEN, CHAT, OUT = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3]


def path(name):
    return os.path.join(OUT, name)


def save_json(name, obj):
    with open(path(name), "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def get_json(url, **kw):
    r = requests.get(url, timeout=30, **kw)
    r.raise_for_status()
    return r.json()


def new_session():
    return secrets.token_hex(6)  # 12 hex chars


def record_sse(base, session_hash, name, stop_after_heartbeats=None):
    """GET /queue/data and store every byte exactly as received.

    If stop_after_heartbeats is set, the client closes the connection itself
    once that many heartbeat messages have been received.
    """
    url = f"{base}/queue/data"
    t0 = time.monotonic()
    r = requests.get(
        url,
        params={"session_hash": session_hash},
        stream=True,
        timeout=120,
        headers={"Accept": "text/event-stream"},
    )
    chunks = []
    raw = bytearray()
    # decode_content=False: bytes exactly as on the wire (after HTTP chunked
    # framing is removed by urllib3).
    stream_error = None
    try:
        for chunk in r.raw.stream(amt=None, decode_content=False):
            if not chunk:
                continue
            chunks.append(
                {
                    "t": round(time.monotonic() - t0, 4),
                    "offset": len(raw),
                    "len": len(chunk),
                }
            )
            raw += chunk
            if stop_after_heartbeats is not None and raw.count(b'"msg":"heartbeat"') >= stop_after_heartbeats:
                break
    except Exception as e:  # server may abort the chunked body
        stream_error = f"{type(e).__module__}.{type(e).__name__}: {e}"
    r.close()
    with open(path(name), "wb") as f:
        f.write(bytes(raw))
    meta = {
        "request": {"method": "GET", "url": r.request.url},
        "status_code": r.status_code,
        "headers": dict(r.headers),
        "total_bytes": len(raw),
        "stream_error": stream_error,
        "client_closed_after_heartbeats": stop_after_heartbeats,
        "chunks": chunks,
    }
    save_json(name + ".meta.json", meta)
    return raw


def find_dep(config, api_name):
    for i, dep in enumerate(config["dependencies"]):
        if dep.get("api_name") == api_name:
            return i, dep
    raise KeyError(api_name)


def join(base, body):
    r = requests.post(f"{base}/queue/join", json=body, timeout=30)
    try:
        resp_body = r.json()
    except ValueError:
        resp_body = r.text
    return {
        "request": {"method": "POST", "url": r.request.url, "json": body},
        "response": {
            "status_code": r.status_code,
            "headers": dict(r.headers),
            "body": resp_body,
            "raw_text": r.text,
        },
    }


def main():
    os.makedirs(OUT, exist_ok=True)

    # ---------------- qwen_space ----------------
    cfg = get_json(f"{QWEN}/config")
    save_json("qwen_space.config.json", cfg)
    save_json("qwen_space.info.json", get_json(f"{QWEN}/info"))
    save_json(
        "qwen_space.info.serialize_false.json",
        get_json(f"{QWEN}/info", params={"serialize": "False"}),
    )

    fn_index, dep = find_dep(cfg, "model_chat")
    trigger_id = dep["targets"][0][0]
    sh = new_session()
    body = {
        "data": ["What is 2+2?", [["Hi", "Hello! How can I help?"]], "Answer briefly."],
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": trigger_id,
        "session_hash": sh,
    }
    save_json("qwen_space.model_chat.join.json", join(QWEN, body))
    record_sse(QWEN, sh, "qwen_space.model_chat.sse")
    first_session = sh

    # same endpoint again, new session, empty history (now the server has a
    # duration estimate for this fn, so rank_eta/eta are non-null)
    sh = new_session()
    body = {
        "data": ["Hello", [], "You are a helpful assistant."],
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": trigger_id,
        "session_hash": sh,
    }
    save_json("qwen_space.model_chat_empty_history.join.json", join(QWEN, body))
    record_sse(QWEN, sh, "qwen_space.model_chat_empty_history.sse")

    # re-open /queue/data for the first (already completed) session: the
    # session is still known, nothing is pending -> only heartbeats (~15 s).
    record_sse(
        QWEN,
        first_session,
        "qwen_space.idle_session_heartbeat.sse",
        stop_after_heartbeats=2,
    )

    fn_index, dep = find_dep(cfg, "boom")
    sh = new_session()
    body = {
        "data": ["kaboom"],
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": dep["targets"][0][0],
        "session_hash": sh,
    }
    save_json("qwen_space.boom.join.json", join(QWEN, body))
    record_sse(QWEN, sh, "qwen_space.boom.sse")

    # GET /queue/data for a session that never joined
    record_sse(QWEN, new_session(), "unknown_session.sse")

    # errors
    errors = {}
    errors["unknown_fn_index"] = join(
        QWEN,
        {
            "data": ["x"],
            "event_data": None,
            "fn_index": 999,
            "trigger_id": None,
            "session_hash": new_session(),
        },
    )
    fn_index, dep = find_dep(cfg, "model_chat")
    errors["missing_session_hash"] = join(
        QWEN,
        {
            "data": ["What is 2+2?", [], "Answer briefly."],
            "event_data": None,
            "fn_index": fn_index,
            "trigger_id": dep["targets"][0][0],
        },
    )
    save_json("errors.json", errors)

    # ---------------- chat_interface ----------------
    cfg = get_json(f"{CHAT}/config")
    save_json("chat_interface.config.json", cfg)
    save_json("chat_interface.info.json", get_json(f"{CHAT}/info"))
    save_json(
        "chat_interface.info.serialize_false.json",
        get_json(f"{CHAT}/info", params={"serialize": "False"}),
    )
    fn_index, dep = find_dep(cfg, "chat")
    comps = {c["id"]: c for c in cfg["components"]}
    data = ["Hello bot", [["hi", "hello"]]]
    # additional inputs (none for this app) -> their default values
    for cid in dep["inputs"][2:]:
        data.append(comps[cid]["props"].get("value"))
    sh = new_session()
    body = {
        "data": data,
        "event_data": None,
        "fn_index": fn_index,
        "trigger_id": dep["targets"][0][0],
        "session_hash": sh,
    }
    save_json("chat_interface.chat.join.json", join(CHAT, body))
    record_sse(CHAT, sh, "chat_interface.chat.sse")


if __name__ == "__main__":
    main()
