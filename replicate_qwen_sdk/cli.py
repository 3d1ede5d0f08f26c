"""Command line: ``replicate-qwen`` (also ``python -m replicate_qwen_sdk``).

Commands: ``chat`` streams one answer to stdout, ``batch`` runs a JSONL file
of jobs, ``models`` lists what can be routed, ``demo`` runs everything
offline against the bundled emulators, ``emulate`` serves those emulators
until Ctrl-C, ``serve`` serves the models with OpenAI's API. Credentials and places come from the environment
(``REPLICATE_API_TOKEN``, ``REPLICATE_BASE_URL``, ``HF_TOKEN``,
``QWEN_SPACE_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from typing import Any, BinaryIO, Dict, List, Optional, Set, TextIO, Tuple

try:
    import fcntl
except ImportError:  # Windows: the batch output is locked with a lock file instead
    fcntl = None  # type: ignore[assignment]

from .__version__ import __version__
from .client import Client
from .concurrency import cancel_on_stop, run_each
from .errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    InvalidArgumentError,
    MissingAuthError,
    ModelNotFoundError,
    SDKError,
)
from .stream import StreamMetrics, TextStream

__all__ = ["main"]

logger = logging.getLogger("replicate_qwen_sdk")

EXIT_OK = 0
EXIT_FAILED = 1  # a request, a job or a line failed
EXIT_USAGE = 2  # bad arguments or input
EXIT_AUTH = 3  # missing or refused credentials
EXIT_NOT_FOUND = 4  # unknown model or endpoint
EXIT_NETWORK = 5  # connection failure or timeout
EXIT_INTERRUPTED = 130  # Ctrl-C

ENVIRONMENT_HELP = """environment:
  REPLICATE_API_TOKEN  Replicate API token (never shown)
  REPLICATE_BASE_URL   Replicate API root (default https://api.replicate.com/v1)
  HF_TOKEN             Hugging Face token, for private or gated Spaces (never shown)
  QWEN_SPACE_URL       where the Qwen2-72B-Instruct app is (a mirror, a local copy)
  'replicate-qwen emulate' serves both APIs locally and prints these lines for them

"""

EXIT_CODES_HELP = """exit codes:
  0    success
  1    the model, the server or a batch job failed
  2    bad arguments or input
  3    missing or refused credentials
  4    unknown model or endpoint
  5    connection failure or timeout
  130  interrupted (Ctrl-C); running predictions are canceled, and a batch
       keeps the results finished so far
"""


#: The flag of each SDK parameter the command line sets, for error messages.
_FLAGS = {
    "base_url": "--replicate-base-url",
    "src": "--qwen-url",
    "timeout": "--timeout",
    "max_retries": "--max-retries",
    "max_tokens": "--max-tokens",
    "temperature": "--temperature",
    "top_p": "--top-p",
    "top_k": "--top-k",
    "stop": "--stop",
    "extra_data": "--extra",
    "system_prompt": "--system",
    "max_workers": "--workers",
}


#: Where the SDK's messages say the text of a failed stream is: in the
#: stream object, which a terminal user does not hold.
_IN_STREAM_TEXT = "is in the stream's .text"
_IN_STREAM_SENTENCE = re.compile(r" ?The text [^.]*? is in the stream's \.text\.")
_IN_STREAM_CLAUSE = re.compile(r"[;,] the text [^.;,]*? is in the stream's \.text")


def error_message(error: SDKError, partial_text: Optional[str] = None) -> str:
    """The message of ``error`` in a terminal's terms.

    An :class:`InvalidArgumentError` names the command-line flag instead of
    the SDK parameter. The SDK's "the text so far is in the stream's .text"
    says instead where that text went (``partial_text``, such as "was
    printed above"), or goes when ``partial_text`` is None (nothing was
    shown, or a batch, which keeps no partial text).
    """
    message = str(error)
    argument = getattr(error, "argument", None)
    if isinstance(error, InvalidArgumentError) and argument in _FLAGS and message.startswith(argument):
        message = _FLAGS[argument] + message[len(argument) :]
    if partial_text is not None:
        return message.replace(_IN_STREAM_TEXT, partial_text)
    return _IN_STREAM_CLAUSE.sub("", _IN_STREAM_SENTENCE.sub("", message))


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


def _params(args: argparse.Namespace, accepts_extra_data: bool) -> Dict[str, Any]:
    """The call's parameters from ``chat``'s flags. ``--extra`` goes to a
    provider's ``extra_data`` where it has one (Replicate: any model input),
    else its keys are parameters themselves (a Gradio app's inputs by label)."""
    params: Dict[str, Any] = {}
    if args.system is not None:
        params["system_prompt"] = args.system
    if args.max_tokens is not None:
        params["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        params["temperature"] = args.temperature
    if args.top_p is not None:
        params["top_p"] = args.top_p
    if args.top_k is not None:
        params["top_k"] = args.top_k
    if args.stop:
        params["stop"] = args.stop
    if args.extra:
        if accepts_extra_data:
            params["extra_data"] = args.extra
        else:
            params.update(args.extra)
    return params


def stream_to(out: TextIO, client: Client, model: Optional[str], prompt: str, params: Dict[str, Any]) -> str:
    """Stream one answer to ``out`` as it arrives; Ctrl-C cancels it on the server."""
    stream = client.provider_for(model).stream(model, prompt, **params)
    _print_stream(out, stream)
    return stream.text


def _print_stream(out: TextIO, stream: TextStream) -> None:
    """Write the chunks as they arrive, and end the text with a newline,
    also when the stream fails or is interrupted part way."""
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
    except BaseException:
        if stream.text and not stream.text.endswith("\n"):
            out.write("\n")
            out.flush()
        raise
    if not stream.text.endswith("\n"):
        out.write("\n")
        out.flush()


def _chat(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if not prompt.strip():
        raise InvalidArgumentError("The prompt is empty; give one, or '-' to read it from stdin.")
    target = client.provider_for(args.model, args.provider)
    params = _params(args, "extra_data" in inspect.signature(target.stream).parameters)
    stream = target.stream(args.model, prompt, **params)
    if args.json:
        return _chat_json(out, stream)
    try:
        with stream:  # a run left behind by a broken connection is cancelled
            _print_stream(out, stream)
    except SDKError as exc:
        return _report(exc, "was printed above" if stream.text else None)
    return EXIT_OK


def _chat_json(out: TextIO, stream: TextStream) -> int:
    """``chat --json``: the whole answer as one JSON object, failure included."""
    failure: Optional[SDKError] = None
    with stream:
        try:
            stream.read()
        except SDKError as exc:
            failure = exc
    where = 'is in "text"' if stream.text else None
    record = {
        "id": stream.id,
        "text": stream.text,
        "error": None
        if failure is None
        else {"type": type(failure).__name__, "message": error_message(failure, where)},
        "metrics": _metrics_dict(stream.metrics),
        "usage": _usage_dict(stream),
    }
    out.write(json.dumps(record, ensure_ascii=False) + "\n")
    out.flush()
    if failure is None:
        return EXIT_OK
    return _report(failure, 'is in the "text" of the JSON printed' if stream.text else None)


def _metrics_dict(metrics: StreamMetrics) -> Dict[str, Any]:
    """A stream's metrics for JSON output: times in seconds, to the millisecond."""
    return {
        "time_to_first_chunk": None if metrics.time_to_first_chunk is None else round(metrics.time_to_first_chunk, 3),
        "duration": None if metrics.duration is None else round(metrics.duration, 3),
        "chunks": metrics.chunks,
        "characters": metrics.characters,
    }


def _usage_dict(stream: TextStream) -> Optional[Dict[str, Any]]:
    """What the server says the run used (Replicate's token counts), or None."""
    try:
        usage = stream.usage()
    except SDKError as exc:  # the answer is complete; a missing figure does not fail it
        logger.warning("could not read the usage of run %s: %s", stream.id, exc)
        return None
    return None if usage is None else usage._asdict()


def _report(error: SDKError, partial_text: Optional[str] = None) -> int:
    """Say on stderr, in one line, what failed; the exit code for it."""
    sys.stderr.write(f"error: {error_message(error, partial_text)}\n")
    return exit_code_for(error)


# -- batch ---------------------------------------------------------------------------


def run_job(client: Client, job: Dict[str, Any]) -> Dict[str, Any]:
    """One batch job: its output line but the job's id (picklable for Dask).

    A failure is a line too. ``run_id`` is the server's id of the run
    (prediction or event id) whenever one is known, failures included, so
    that any result can be looked up; a stopping batch cancels the run.
    """
    params = dict(job)
    model = params.pop("model", None)
    messages = params.pop("messages") if "messages" in params else params.pop("prompt")
    stream: Optional[TextStream] = None
    try:
        target = client.provider_for(model, params.pop("provider", None), deployment=params.get("deployment"))
        stream = target.stream(model, messages, **params)
        with stream, cancel_on_stop(stream.cancel):
            text = stream.read()
    except Exception as exc:  # the job's failure is its result
        return _failure(exc, stream.id if stream is not None else None)
    metrics = stream.metrics
    return {
        "run_id": stream.id,
        "text": text,
        "error": None,
        "metrics": {
            "time_to_first_chunk": metrics.time_to_first_chunk,
            "duration": metrics.duration,
            "chunks": metrics.chunks,
            "characters": metrics.characters,
        },
    }


def _failure(error: BaseException, run_id: Optional[str]) -> Dict[str, Any]:
    return {
        "run_id": getattr(error, "prediction_id", None) or run_id,
        "text": None,
        "error": {
            "type": type(error).__name__,
            "message": error_message(error) if isinstance(error, SDKError) else str(error),
        },
        "metrics": None,
    }


def _read_jobs(path: str, default_model: Optional[str], err: TextIO) -> Tuple[List[Tuple[str, Dict[str, Any]]], int]:
    """The jobs of a JSONL file as (id, job); malformed lines are reported and counted."""
    jobs: List[Tuple[str, Dict[str, Any]]] = []
    seen = set()
    malformed = 0
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            record, problem = _parse_job(raw)
            if record is not None:
                job_id = str(record.get("id", f"line-{number}"))
                if job_id in seen:
                    record, problem = None, f"id {job_id!r} appears twice"
            if problem is not None:
                err.write(f"{path}:{number}: skipped: {problem}\n")
                malformed += 1
            if record is None:
                continue
            seen.add(job_id)
            job = {key: value for key, value in record.items() if key != "id"}
            if default_model is not None:
                job.setdefault("model", default_model)
            jobs.append((job_id, job))
    return jobs, malformed


def _parse_job(raw: bytes) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """One input line: (the job, None), (None, what is wrong), or (None, None) if blank."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte {raw[exc.start]:#04x} at position {exc.start + 1})"
    if not line.strip():
        return None, None
    try:
        record = json.loads(line)
    except ValueError as exc:
        return None, f"not JSON ({getattr(exc, 'msg', exc)})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if ("messages" in record) == ("prompt" in record):
        return None, "needs exactly one of 'messages' or 'prompt'"
    return record, None


class _ResultsFile:
    """The output file of a batch run, locked against other runs until closed.

    Opening it keeps one line per id from earlier runs (the last success,
    else the last failure, dropped when failures are to be redone) and drops
    lines that are not results, such as one cut short by a kill; the rewrite
    replaces the file atomically. Results are then appended one line at a
    time, and nothing of them is kept in memory.

    The lock is ``flock`` on the file itself, so that it dies with the
    process. Where there is no ``fcntl`` (Windows), it is a lock file made
    with ``O_EXCL`` next to the output and deleted on closing.

    :ivar finished: for every id kept, whether its result is a failure.
    :raises InvalidArgumentError: if another run holds the file.
    """

    def __init__(self, path: str, *, retry_failed: bool) -> None:
        self.path = path
        self._lock_file: Optional[str] = None
        held: Optional[int] = None
        if fcntl is not None:
            held = _lock_output(path)
        else:
            self._lock_file = _create_lock_file(path)
        try:
            kept = _results_to_keep(path, retry_failed)
            self.finished: Dict[str, bool] = {job_id: failed for job_id, (_, failed) in kept.items()}
            self._file = self._rewrite({number for number, _ in kept.values()})
        except BaseException:
            self._remove_lock_file()
            raise
        finally:
            if held is not None:
                os.close(held)  # the rewritten file holds the lock from now on

    def write(self, record: Dict[str, Any]) -> None:
        """Append one result and flush it: a kill loses at most that line.
        One write call, so that a Ctrl-C cannot cut a line in two."""
        self._file.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file, and let other runs have it."""
        try:
            self._file.close()
        finally:
            self._remove_lock_file()

    def __enter__(self) -> "_ResultsFile":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _rewrite(self, keep: Set[int]) -> BinaryIO:
        """Replace the file with the lines numbered in ``keep``; the new
        file, open for appending (and locked before anyone can see it)."""
        directory, name = os.path.split(os.path.abspath(self.path))
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
        rewritten = os.fdopen(descriptor, "wb")
        try:
            if fcntl is not None:
                fcntl.flock(rewritten.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.exists(self.path):
                shutil.copymode(self.path, temporary)
                with open(self.path, "rb") as previous:
                    for number, line in enumerate(previous, 1):
                        if number in keep:
                            rewritten.write(line if line.endswith(b"\n") else line + b"\n")
            rewritten.flush()
            os.fsync(rewritten.fileno())
            if fcntl is None:
                rewritten.close()  # Windows renames no open file
            os.replace(temporary, self.path)
        except BaseException:
            rewritten.close()
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise
        return rewritten if fcntl is not None else open(self.path, "ab")

    def _remove_lock_file(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                os.remove(self._lock_file)
            self._lock_file = None


def _in_use(path: str) -> str:
    return (
        f"{path} is in use by another 'replicate-qwen batch' run. "
        "Wait for it to finish, or give this run another output file (-o)."
    )


def _lock_output(path: str) -> int:
    """A descriptor of ``path`` (created if missing) holding its flock."""
    assert fcntl is not None
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            opened = os.fstat(descriptor)
            current: Optional[os.stat_result] = os.stat(path)
        except BlockingIOError:
            os.close(descriptor)
            raise InvalidArgumentError(_in_use(path)) from None
        except FileNotFoundError:
            current = None
        except BaseException:
            os.close(descriptor)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
            return descriptor
        os.close(descriptor)  # the run that held it replaced the file meanwhile: lock the new one


def _create_lock_file(path: str) -> str:
    lock_file = f"{path}.lock"
    try:
        os.close(os.open(lock_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        raise InvalidArgumentError(
            f"{_in_use(path)} (If no run is going, a crashed one left {lock_file} behind: delete it.)"
        ) from None
    return lock_file


def _results_to_keep(path: str, retry_failed: bool) -> Dict[str, Tuple[int, bool]]:
    """For each id in an earlier output, the number of the line to keep and
    whether it is a failure."""
    kept: Dict[str, Tuple[int, bool]] = {}
    if not os.path.exists(path):
        return kept
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:  # not JSON, cut short, or not UTF-8
                continue
            if not isinstance(record, dict) or "id" not in record:
                continue
            job_id, failed = str(record["id"]), record.get("error") is not None
            earlier = kept.get(job_id)
            if earlier is None or earlier[1] or not failed:
                kept[job_id] = (number, failed)
    if retry_failed:
        kept = {job_id: line for job_id, line in kept.items() if not line[1]}
    return kept


def _dask_client_class() -> Any:
    try:
        from distributed import Client as DaskClient
    except ImportError:
        raise InvalidArgumentError("--dask needs the 'distributed' package: pip install 'dask[distributed]'.") from None
    return DaskClient


def _progress(total: int, err: TextIO):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, file=err, unit="job", dynamic_ncols=True)


def _batch(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    err = sys.stderr
    dask_client_class = _dask_client_class() if args.dask is not None else None
    jobs, malformed = _read_jobs(args.input, args.model, err)
    if os.path.exists(args.output) and os.path.samefile(args.input, args.output):
        raise InvalidArgumentError(f"{args.output} is the input file: give the results another file (-o).")
    with _ResultsFile(args.output, retry_failed=args.retry_failed) as output:
        todo = [(job_id, job) for job_id, job in jobs if job_id not in output.finished]
        skipped = len(jobs) - len(todo)
        failed_before = sum(1 for job_id, _ in jobs if output.finished.get(job_id))
        counts = {"ok": 0, "failed": 0}
        dask = dask_client_class(args.dask) if dask_client_class is not None else None
        executor = dask.get_executor() if dask is not None else None
        bar = _progress(len(todo), err)

        def write(index: int, outcome: Any) -> None:
            record = _failure(outcome, None) if isinstance(outcome, BaseException) else outcome
            output.write({"id": todo[index][0], **record})
            counts["ok" if record["error"] is None else "failed"] += 1
            if bar is not None:
                bar.update(1)

        try:
            run_each(
                run_job,
                [(client, job) for _, job in todo],
                write,
                max_workers=args.workers,
                executor=executor,
            )
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            left = len(todo) - counts["ok"] - counts["failed"]
            err.write(
                f"{counts['ok']} done, {counts['failed']} failed, written to {args.output}; "
                f"{left} not done: run the same command again to do them\n"
            )
            raise
        finally:
            if bar is not None:
                bar.close()
            if executor is not None:
                executor.shutdown(wait=False)  # drops at once what an interruption left queued
            if dask is not None:
                dask.close()
    err.write(
        f"{counts['ok']} done, {counts['failed']} failed, {skipped} already in {args.output}"
        f"{f' ({failed_before} of them failed; --retry-failed redoes them)' if failed_before else ''}, "
        f"{malformed} malformed line(s)\n"
    )
    return EXIT_FAILED if counts["failed"] or malformed or failed_before else EXIT_OK


# -- models and demo -------------------------------------------------------------------


def _models(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    for model in client.models(remote=args.remote):
        target = f" -> {model.alias_of}" if model.alias_of else ""
        about = f"\t{model.description}" if model.description else ""
        out.write(f"{model.name}{target}\t{model.provider}{about}\n")
    out.write("any Replicate 'owner/name', 'owner/name:version' or 'deployments/owner/name'\tReplicate\n")
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


def _emulate(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """Serve both emulators until Ctrl-C, saying how to use them."""
    from .testing.emulate import serve_until_interrupted

    serve_until_interrupted(out, replicate_port=args.replicate_port, qwen_port=args.qwen_port)
    return EXIT_OK


def _serve(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """The OpenAI-compatible server; the flags go to it as they are."""
    from .server.serve import serve

    serve(
        client,
        host=args.host,
        port=args.port,
        threads=args.threads,
        api_key=args.api_key,
        no_auth=args.no_auth,
        out=out,
    )
    return EXIT_OK


# -- entry point -----------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _json_object(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON ({getattr(exc, 'msg', exc)}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"seed\": 1}}', got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicate-qwen",
        description="Stream text from LLMs on Replicate and Gradio Spaces.",
        epilog=ENVIRONMENT_HELP + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv for debug)")
    parser.add_argument(
        "--replicate-base-url", help="Replicate API root (default: REPLICATE_BASE_URL or the public API)"
    )
    parser.add_argument(
        "--qwen-url", help="where the Qwen2-72B-Instruct app is, a mirror or a local copy (default: QWEN_SPACE_URL)"
    )
    parser.add_argument("--timeout", type=float, help="connect and idle-read timeout, in seconds")
    parser.add_argument("--max-retries", type=int, default=2, help="retries per request (default 2)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser(
        "chat",
        help="stream one answer to stdout",
        description="Stream one answer to stdout as it arrives. Ctrl-C cancels the run on the server.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chat.add_argument("prompt", metavar="PROMPT", help="the prompt, or '-' to read it from stdin")
    chat.add_argument(
        "-m",
        "--model",
        help="a model name or alias (see 'models'), or a Replicate deployment as 'deployments/owner/name'; "
        "default: the provider's",
    )
    chat.add_argument(
        "--provider",
        help="send the call to this provider instead of routing by model name: 'replicate' or 'qwen'",
    )
    chat.add_argument("--system", metavar="TEXT", help="system prompt")
    chat.add_argument("--max-tokens", type=int, metavar="N", help="longest answer, in tokens")
    chat.add_argument("--temperature", type=float, metavar="T", help="sampling temperature (0 is the most focused)")
    chat.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling: keep the likeliest tokens up to P")
    chat.add_argument("--top-k", type=int, metavar="K", help="sample from the K likeliest tokens only")
    chat.add_argument("--stop", action="append", metavar="TEXT", help="a stop sequence (repeatable)")
    chat.add_argument(
        "--extra",
        type=_json_object,
        metavar="JSON",
        help="any other model input, as a JSON object (e.g. '{\"seed\": 1}'); on Replicate merged last, "
        "on a Gradio app matched to its inputs by label",
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object when the answer is complete (text, id, error, metrics, usage) "
        "instead of streaming the text",
    )
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
        help="results (id, run_id, text, error, metrics); ids already there are skipped on a re-run",
    )
    batch.add_argument("--workers", type=_positive_int, default=8, help="concurrent jobs (default 8)")
    batch.add_argument("--model", help="model for lines that name none")
    batch.add_argument("--dask", metavar="ADDRESS", help="run the jobs on a Dask cluster (scheduler address)")
    batch.add_argument("--retry-failed", action="store_true", help="redo jobs that failed in an earlier run")
    batch.set_defaults(handler=_batch)

    models = commands.add_parser("models", help="list routable models and aliases")
    models.add_argument(
        "--remote",
        action="store_true",
        help="also list Replicate's 'language-models' collection, read from the API (needs REPLICATE_API_TOKEN); "
        "without it the list is the built-in one and nothing is sent",
    )
    models.set_defaults(handler=_models)

    demo = commands.add_parser("demo", help="stream from the bundled loopback emulators (offline)")
    demo.add_argument("--delay", type=float, default=0.04, help="seconds between tokens (default 0.04)")
    demo.set_defaults(handler=_demo)

    emulate = commands.add_parser(
        "emulate",
        help="serve the bundled emulators of Replicate and the Qwen Space until Ctrl-C",
        description="Serve loopback emulators of the Replicate API and of the Qwen2-72B-Instruct Space on "
        "127.0.0.1 until Ctrl-C, and print the environment lines that point the SDK, this command and "
        "gradio_client at them: try everything with no key and no internet.",
    )
    emulate.add_argument(
        "--replicate-port", type=_port, default=0, help="port of the Replicate emulator (default: any free port)"
    )
    emulate.add_argument("--qwen-port", type=_port, default=0, help="port of the Qwen Space emulator (default: any)")
    emulate.set_defaults(handler=_emulate)

    serve = commands.add_parser(
        "serve",
        help="serve the models with OpenAI's chat-completions API (needs the 'server' extra)",
        description="Serve every model this command can reach with OpenAI's API (/v1/models,\n"
        "/v1/chat/completions, streamed or not), for the openai package, LangChain and\n"
        "any OpenAI client. Prints its base URL (http://HOST:PORT/v1) once it accepts\n"
        "connections; Ctrl-C (or SIGTERM) stops it and cancels the runs in progress.\n"
        "Upstream credentials come from this environment only. Without a key it\n"
        "answers only this machine; REPLICATE_QWEN_SERVER_API_KEY sets one.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument(
        "--api-key",
        metavar="KEY",
        help="key clients must send as 'Authorization: Bearer KEY' (default: REPLICATE_QWEN_SERVER_API_KEY, "
        "which keeps it out of the process list)",
    )
    serve.add_argument(
        "--threads",
        type=_positive_int,
        default=32,
        help="requests answered at once; each stream holds one (default 32)",
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="allow a host beyond loopback without an API key: anyone can use it"
    )
    serve.set_defaults(handler=_serve)
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
        return _report(exc)
    except OSError as exc:  # files of the batch command
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
