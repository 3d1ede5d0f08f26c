"""Command line: ``replicate-qwen`` (also ``python -m replicate_qwen_sdk``).

Commands: ``chat`` streams one answer to stdout, ``batch`` runs a JSONL file
of jobs, ``models`` lists what can be routed, ``demo`` runs everything
offline against the bundled emulators. Credentials come from the
environment (``REPLICATE_API_TOKEN``, ``HF_TOKEN``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from typing import Any, Dict, List, Optional, TextIO, Tuple

from .__version__ import __version__
from .client import Client
from .concurrency import run_all
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    SDKError,
)

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1  # a request, a job or a line failed
EXIT_USAGE = 2  # bad arguments or input
EXIT_AUTH = 3  # missing or refused credentials
EXIT_NOT_FOUND = 4  # unknown model or endpoint
EXIT_NETWORK = 5  # connection failure or timeout
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES_HELP = """exit codes:
  0    success
  1    the model, the server or a batch job failed
  2    bad arguments or input
  3    missing or refused credentials
  4    unknown model or endpoint
  5    connection failure or timeout
  130  interrupted (Ctrl-C); the running prediction is canceled
"""


def exit_code_for(error: BaseException) -> int:
    if isinstance(error, (MissingAuthError, AuthenticationError)):
        return EXIT_AUTH
    if isinstance(error, ModelNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(error, (APIConnectionError, APITimeoutError)):
        return EXIT_NETWORK
    if isinstance(error, (InvalidArgumentError, ValueError)):
        return EXIT_USAGE
    return EXIT_FAILED


# -- chat ----------------------------------------------------------------------------


def _params(args: argparse.Namespace) -> Dict[str, Any]:
    params: Dict[str, Any] = {}
    if args.system is not None:
        params["system_prompt"] = args.system
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.top_p is not None:
        params["top_p"] = args.top_p
    if args.stop:
        params["stop"] = args.stop
    return params


def stream_to(out: TextIO, client: Client, model: Optional[str], prompt: str, params: Dict[str, Any]) -> str:
    """Stream one answer to ``out`` as it arrives; Ctrl-C cancels it on the server."""
    stream = client.stream(model, prompt, **params)
    try:
        for chunk in stream:
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        try:
            stream.cancel()
        finally:
            out.write("\n")
            out.flush()
        raise
    if not stream.text.endswith("\n"):
        out.write("\n")
        out.flush()
    return stream.text


def _chat(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise InvalidArgumentError("The prompt is empty; give one, or '-' to read it from stdin.")
    stream_to(out, client, args.model, prompt, _params(args))
    return EXIT_OK


# -- batch ---------------------------------------------------------------------------


def run_job(client: Client, job: Dict[str, Any]) -> Dict[str, Any]:
    """One batch job: the text and the stream's metrics (picklable for Dask)."""
    params = dict(job)
    model = params.pop("model", None)
    messages = params.pop("messages") if "messages" in params else params.pop("prompt")
    with client.stream(model, messages, **params) as stream:
        text = stream.read()
    metrics = stream.metrics
    return {
        "text": text,
        "metrics": {
            "time_to_first_chunk": metrics.time_to_first_chunk,
            "duration": metrics.duration,
            "chunks": metrics.chunks,
            "characters": metrics.characters,
        },
    }


def _read_jobs(path: str, default_model: Optional[str], err: TextIO) -> Tuple[List[Tuple[str, Dict[str, Any]]], int]:
    """The jobs of a JSONL file as (id, job); malformed lines are reported and counted."""
    jobs: List[Tuple[str, Dict[str, Any]]] = []
    seen = set()
    malformed = 0
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            problem = None
            try:
                record = json.loads(line)
            except ValueError as exc:
                record, problem = None, f"not JSON ({getattr(exc, 'msg', exc)})"
            if problem is None and not isinstance(record, dict):
                problem = "not a JSON object"
            elif problem is None and ("messages" in record) == ("prompt" in record):
                problem = "needs exactly one of 'messages' or 'prompt'"
            job_id = str(record.get("id", f"line-{number}")) if problem is None else ""
            if problem is None and job_id in seen:
                problem = f"id {job_id!r} appears twice"
            if problem is not None:
                err.write(f"{path}:{number}: skipped: {problem}\n")
                malformed += 1
                continue
            seen.add(job_id)
            job = {key: value for key, value in record.items() if key != "id"}
            if default_model is not None:
                job.setdefault("model", default_model)
            jobs.append((job_id, job))
    return jobs, malformed


def _previous_results(path: str, retry_failed: bool) -> Dict[str, str]:
    """Rewrite ``path`` keeping one good line per finished id (dropping a
    line cut short by a kill, and failures when they are to be redone);
    return the kept lines by id."""
    kept: Dict[str, str] = {}
    if not os.path.exists(path):
        return kept
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or "id" not in record:
                continue
            if record.get("error") is not None and retry_failed:
                continue
            kept[str(record["id"])] = json.dumps(record, ensure_ascii=False)
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, delete=False) as rewritten:
        rewritten.writelines(line + "\n" for line in kept.values())
    os.replace(rewritten.name, path)
    return kept


def _executor(address: Optional[str]):
    if address is None:
        return None, None
    try:
        from distributed import Client as DaskClient
    except ImportError:
        raise InvalidArgumentError("--dask needs the 'distributed' package: pip install 'dask[distributed]'.") from None
    dask = DaskClient(address)
    return dask, dask.get_executor()


def _progress(total: int, err: TextIO):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=err, unit="job", dynamic_ncols=True)


def _batch(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    err = sys.stderr
    jobs, malformed = _read_jobs(args.input, args.model, err)
    done = _previous_results(args.output, args.retry_failed)
    todo = [(job_id, job) for job_id, job in jobs if job_id not in done]
    skipped = len(jobs) - len(todo)
    failed = sum(1 for job_id, _ in jobs if job_id in done and json.loads(done[job_id]).get("error") is not None)
    dask, executor = _executor(args.dask)
    bar = _progress(len(todo), err)
    counts = {"ok": 0, "failed": 0}
    try:
        with open(args.output, "a", encoding="utf-8") as results:

            def write(index: int, outcome: Any) -> None:
                job_id = todo[index][0]
                if isinstance(outcome, BaseException):
                    line = {
                        "id": job_id,
                        "text": None,
                        "metrics": None,
                        "error": {"type": type(outcome).__name__, "message": str(outcome)},
                    }
                    counts["failed"] += 1
                else:
                    line = {"id": job_id, "text": outcome["text"], "error": None, "metrics": outcome["metrics"]}
                    counts["ok"] += 1
                results.write(json.dumps(line, ensure_ascii=False) + "\n")
                results.flush()
                if bar is not None:
                    bar.update(1)

            run_all(
                run_job,
                [(client, job) for _, job in todo],
                max_workers=args.workers,
                executor=executor,
                on_result=write,
            )
    finally:
        if bar is not None:
            bar.close()
        if dask is not None:
            dask.close()
    err.write(
        f"{counts['ok']} done, {counts['failed']} failed, {skipped} already in {args.output}"
        f"{f' ({failed} of them failed; --retry-failed redoes them)' if failed else ''}, "
        f"{malformed} malformed line(s)\n"
    )
    return EXIT_FAILED if counts["failed"] or malformed or failed else EXIT_OK


# -- models and demo -------------------------------------------------------------------


def _models(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    for model in client.models():
        target = f" -> {model.alias_of}" if model.alias_of else ""
        out.write(f"{model.name}{target}\t{model.provider}\n")
    out.write("any Replicate 'owner/name' or 'owner/name:version'\tReplicate\n")
    return EXIT_OK


def _demo(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """Stream through the whole SDK and this command line, offline."""
    from .testing import GradioEmulator, ReplicateEmulator, Script

    story = (
        "Once upon a time, a small SDK streamed its first tokens.\n"
        "Each one arrived the moment it was sent,\n"
        "and not a single character was lost."
    )
    tokens = [piece for piece in story.replace("\n", "\n\x00").replace(" ", " \x00").split("\x00") if piece]
    with ReplicateEmulator() as replicate, GradioEmulator() as qwen:
        replicate.add_model("demo/storyteller", Script(tokens, delay=args.delay))
        replicate.add_model("demo/flaky", Script(tokens, delay=args.delay / 2, drop_after=[7], cut_mid_event=True))
        offline = Client(
            replicate_api_key=replicate.api_token, replicate_base_url=replicate.base_url, qwen_url=qwen.url
        )
        with offline:
            out.write(f"Replicate emulator on {replicate.base_url}, Qwen Space emulator on {qwen.url} (offline)\n\n")
            out.write("$ replicate-qwen chat -m demo/storyteller 'Tell me a story'\n")
            text = stream_to(out, offline, "demo/storyteller", "Tell me a story", {"max_tokens": 64})
            out.write("\n$ replicate-qwen chat -m qwen-2-72b --system 'Answer briefly.' 'What is 2+2?'\n")
            stream_to(out, offline, "qwen-2-72b", "What is 2+2?", {"system_prompt": "Answer briefly."})
            resumed = offline.complete("demo/flaky", "Tell me the story again")
            same = resumed == story and text == story
            out.write(
                "\nA third stream, cut mid-event by the server, resumed with Last-Event-ID: "
                f"{'identical text' if same else 'TEXT DIFFERS'} "
                f"({replicate.count('stream')} Replicate stream connections in all)\n"
            )
    return EXIT_OK if same else EXIT_FAILED


# -- entry point -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicate-qwen",
        description="Stream text from LLMs on Replicate and Gradio Spaces.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv for debug)")
    parser.add_argument(
        "--replicate-base-url", help="Replicate API root (default: REPLICATE_BASE_URL or the public API)"
    )
    parser.add_argument("--qwen-url", help="where the Qwen2-72B-Instruct app is (a mirror or a local copy)")
    parser.add_argument("--timeout", type=float, help="connect and idle-read timeout, in seconds")
    parser.add_argument("--max-retries", type=int, default=2, help="retries per request (default 2)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser("chat", help="stream one answer to stdout")
    chat.add_argument("prompt", metavar="PROMPT", help="the prompt, or '-' to read it from stdin")
    chat.add_argument("-m", "--model", help="a model name or alias (see 'models')")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--top-p", type=float)
    chat.add_argument("--stop", action="append", help="a stop sequence (repeatable)")
    chat.set_defaults(handler=_chat)

    batch = commands.add_parser("batch", help="run a JSONL file of jobs, writing results as they finish")
    batch.add_argument(
        "input", metavar="IN.jsonl", help='one job per line: {"id"?, "model"?, "messages" | "prompt", ...parameters}'
    )
    batch.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT.jsonl",
        help="results (id, text, error, metrics); ids already there are skipped on a re-run",
    )
    batch.add_argument("--workers", type=int, default=8, help="concurrent jobs (default 8)")
    batch.add_argument("--model", help="model for lines that name none")
    batch.add_argument("--dask", metavar="ADDRESS", help="run the jobs on a Dask cluster (scheduler address)")
    batch.add_argument("--retry-failed", action="store_true", help="redo jobs that failed in an earlier run")
    batch.set_defaults(handler=_batch)

    models = commands.add_parser("models", help="list routable models and aliases")
    models.set_defaults(handler=_models)

    demo = commands.add_parser("demo", help="stream from the bundled loopback emulators (offline)")
    demo.add_argument("--delay", type=float, default=0.04, help="seconds between tokens (default 0.04)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Optional[List[str]] = None, out: Optional[TextIO] = None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        client = Client(
            replicate_base_url=args.replicate_base_url,
            qwen_url=args.qwen_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
        )
        with client:
            return args.handler(args, client, out)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    except SDKError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exit_code_for(exc)
    except OSError as exc:  # files of the batch command
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
