"""Client CPU of one small request, layer by layer.

The same ``POST`` (create a prediction on the Replicate emulator, in its
own process, and read the JSON answer) sent through each layer of the
stack this SDK sits on, rounds interleaved:

* ``sdk``: this SDK's transport (``Transport.request``, retries and typed
  errors included);
* ``requests``: ``Session.request`` with the environment already read
  (``trust_env=False``), as the SDK's session has it;
* ``urllib3``: a ``PoolManager`` straight, no ``requests``;
* ``http.client``: one keep-alive connection, no pool.

The last two are references, not peers: they show what the HTTP stack
itself costs under the SDK, which bounds how cheap a burst of requests
(the start of a large batch) can be while ``requests`` drives the HTTP.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from typing import Callable, Dict, List
from urllib.parse import urlsplit

import requests
import urllib3

from replicate_qwen_sdk.testing.replicate import DEFAULT_TOKEN
from replicate_qwen_sdk.timeouts import Timeout
from replicate_qwen_sdk.transport import Transport

from .replicate_stream import MODEL

HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKEN}", "Content-Type": "application/json"}
BODY = {"input": {"prompt": "go"}}


def senders(base_url: str) -> Dict[str, Callable[[], bytes]]:
    url = f"{base_url}/models/{MODEL}/predictions"
    parts = urlsplit(url)
    body = json.dumps(BODY).encode()

    transport = Transport(timeout=Timeout(), max_retries=0)

    def sdk() -> bytes:
        return transport.request("POST", url, action="creating", json=BODY, headers=HEADERS).content

    session = requests.Session()
    session.trust_env = False

    def plain_requests() -> bytes:
        return session.request("POST", url, json=BODY, headers=HEADERS).content

    pool = urllib3.PoolManager()

    def plain_urllib3() -> bytes:
        return pool.urlopen("POST", url, body=body, headers=HEADERS).data

    connection = http.client.HTTPConnection(parts.hostname, parts.port)

    def plain_http_client() -> bytes:
        connection.request("POST", parts.path, body=body, headers=HEADERS)
        return connection.getresponse().read()

    return {"sdk": sdk, "requests": plain_requests, "urllib3": plain_urllib3, "http.client": plain_http_client}


def run(runs: int = 9, requests_per_run: int = 200) -> Dict[str, float]:
    """Median client CPU microseconds per request, per layer."""
    from .servers import replicate_emulator

    with replicate_emulator(1) as base_url:
        send = senders(base_url)
        for sender in send.values():
            json.loads(sender())  # warm up, and check each gets a prediction
        results: Dict[str, List[float]] = {name: [] for name in send}
        for _ in range(runs):
            for name, sender in send.items():
                started = time.process_time()
                for _ in range(requests_per_run):
                    sender()
                results[name].append((time.process_time() - started) / requests_per_run * 1e6)
    return {name: statistics.median(values) for name, values in results.items()}
