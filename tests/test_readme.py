"""The README's examples run as written."""

import pathlib
import re
import shlex

import pytest

from replicate_qwen_sdk.cli import build_parser

README = (pathlib.Path(__file__).parent.parent / "README.rst").read_text()


def python_blocks():
    return re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", README)


def test_the_offline_examples_run():
    offline = [block for block in python_blocks() if "replicate_qwen_sdk.testing import" in block]
    assert len(offline) >= 2
    for block in offline:
        exec(compile("\n".join(line[4:] for line in block.splitlines()), "README.rst", "exec"), {})


@pytest.mark.parametrize(
    "line", [line.strip() for line in README.splitlines() if line.startswith("    replicate-qwen ")]
)
def test_every_command_line_example_parses(line):
    words = shlex.split(line.split("  #")[0])[1:]
    args = build_parser().parse_args(words)
    assert args.handler is not None
