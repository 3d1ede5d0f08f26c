"""Command line: ``replicate-qwen`` (also ``python -m replicate_qwen_sdk``)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional, TextIO

from .__version__ import __version__
from .errors import SDKError

__all__ = ["main"]

#: Exit codes.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    """Stream through the whole SDK against the bundled emulator, offline."""
    from .providers.replicate import Replicate
    from .testing import ReplicateEmulator, Script

    story = (
        "Once upon a time, a small SDK streamed its first tokens.\n"
        "Each one arrived the moment it was sent,\n"
        "and not a single character was lost."
    )
    tokens = [piece for piece in story.replace("\n", "\n\x00").replace(" ", " \x00").split("\x00") if piece]
    with ReplicateEmulator() as emulator:
        emulator.add_model("demo/storyteller", Script(tokens, delay=args.delay))
        emulator.add_model("demo/flaky", Script(tokens, delay=args.delay / 2, drop_after=[7], cut_mid_event=True))
        with Replicate(api_key=emulator.api_token, base_url=emulator.base_url) as provider:
            out.write(f"Replicate emulator on {emulator.base_url} (offline)\n\n")
            with provider.stream("demo/storyteller", "Tell me a story", max_tokens=64) as stream:
                for chunk in stream:
                    out.write(chunk)
                    out.flush()
            metrics = stream.metrics
            out.write(
                f"\n\nprediction {stream.id}: {metrics.chunks} chunks, {metrics.characters} characters, "
                f"first chunk after {metrics.time_to_first_chunk * 1000:.0f} ms, "
                f"done in {metrics.duration:.2f} s\n"
            )
            resumed = provider.complete("demo/flaky", "Tell me the story again")
            same = resumed == story and stream.text == story
            out.write(
                "A second stream, cut mid-event by the server, resumed with Last-Event-ID: "
                f"{'identical text' if same else 'TEXT DIFFERS'} "
                f"({emulator.count('stream')} stream connections in all)\n"
            )
    return EXIT_OK if same else EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="replicate-qwen", description="Stream text from LLMs on Replicate and Gradio Spaces."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv for debug)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser("demo", help="stream from the bundled loopback emulator (offline)")
    demo.add_argument("--delay", type=float, default=0.04, help="seconds between tokens (default 0.04)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Optional[List[str]] = None, out: TextIO = sys.stdout) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG if args.verbose > 1 else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
        )
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args, out)
    except SDKError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
