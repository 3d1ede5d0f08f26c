"""The README's examples run as written.

Every ``.. code-block:: python`` block of README.rst is a complete program:
each runs in a fresh interpreter of its own, as a user would run it, with
the environment ``replicate-qwen emulate`` prints (``REPLICATE_BASE_URL``,
``REPLICATE_API_TOKEN``, ``QWEN_SPACE_URL``) pointing at loopback emulators,
so no key and no internet is needed. One thing differs from a user's
machine: a Space id (``owner/name``) leads to the local Gradio emulator
instead of ``https://owner-name.hf.space``. Blocks that start a Dask cluster
find the test session's through ``DASK_SCHEDULER_ADDRESS``.

A block is skipped only when it imports one of :data:`OPTIONAL_MODULES` and
that module is not installed here.
"""

import importlib.util
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from replicate_qwen_sdk.cli import build_parser
from replicate_qwen_sdk.testing import GradioEmulator, ReplicateEmulator

README = (pathlib.Path(__file__).parent.parent / "README.rst").read_text()

#: Modules some examples use that the test extra may not bring (gradio, and
#: so gradio_client, needs Python 3.10+): the block is skipped without them.
OPTIONAL_MODULES = ("gradio_client", "distributed", "langchain_core", "openai")

#: Seconds a block may run: an example is a short program.
BLOCK_TIMEOUT = 120

#: Run in the child before the block: Space ids lead to the local app.
RUNNER = """
import os, sys
from replicate_qwen_sdk.providers.gradio import space

_space_url = space.space_url


def local_space_url(src):
    if isinstance(src, str) and space._SPACE_ID.match(src.strip()):
        return os.environ["QWEN_SPACE_URL"]
    return _space_url(src)


space.space_url = local_space_url
exec(compile(sys.argv[1], "README.rst, " + sys.argv[2], "exec"), {"__name__": "__main__"})
"""


def python_blocks():
    """``(name, code)`` of every Python block, named by its section and
    its number in the section."""
    blocks = []
    section, number = "top", 0
    lines = README.splitlines()
    for index, line in enumerate(lines):
        if index + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[index + 1]) and line.strip():
            section, number = re.sub(r"[^a-z0-9]+", "-", line.lower()).strip("-"), 0
        if line.strip() == ".. code-block:: python":
            body = []
            for following in lines[index + 2 :]:
                if following.strip() and not following.startswith("    "):
                    break
                body.append(following[4:])
            number += 1
            blocks.append((f"{section}-{number}", "\n".join(body).strip("\n") + "\n"))
    return blocks


def literal_blocks():
    """The text of every ``::`` literal block."""
    return re.findall(r"::\n\n((?:    .*\n|[ \t]*\n)+)", README)


BLOCKS = python_blocks()


@pytest.fixture(scope="module")
def offline_environment():
    with ReplicateEmulator() as replicate, GradioEmulator() as qwen:
        environment = {
            name: value
            for name, value in os.environ.items()
            if name.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "HF_TOKEN")
        }
        environment.update(
            REPLICATE_BASE_URL=replicate.base_url,
            REPLICATE_API_TOKEN=replicate.api_token,
            QWEN_SPACE_URL=qwen.url,
            HF_HUB_OFFLINE="1",
            GRADIO_ANALYTICS_ENABLED="False",
            PYTHONUNBUFFERED="1",
        )
        yield environment


def test_the_readme_has_python_examples_and_names_them_apart():
    names = [name for name, _ in BLOCKS]
    assert len(names) >= 8 and len(set(names)) == len(names)


def test_python_examples_are_code_blocks_that_get_run():
    """An example written as a ``::`` literal block would escape the test below."""
    for block in literal_blocks():
        assert not re.search(r"^\s*(import \w|from \w+ import|\w+ = \w+\()", block, re.M), block


@pytest.mark.parametrize("name, code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_every_python_example_runs_offline(name, code, offline_environment, tmp_path, request):
    imported = set(re.findall(r"^\s*(?:from|import) (\w+)", code, re.M))
    for module in OPTIONAL_MODULES:
        if module in imported and importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed here")
    environment = dict(offline_environment)
    if "distributed" in imported:
        environment["DASK_SCHEDULER_ADDRESS"] = request.getfixturevalue("dask_cluster").scheduler_address
    try:
        result = subprocess.run(
            [sys.executable, "-c", RUNNER, code, name],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"README example {name} was still running after {BLOCK_TIMEOUT} s:\n{code}")
    assert result.returncode == 0, f"README example {name} failed:\n{code}\n--- stderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


@pytest.mark.parametrize(
    "line", [line.strip() for line in README.splitlines() if line.startswith("    replicate-qwen ")]
)
def test_every_command_line_example_parses(line):
    words = shlex.split(line.split("  #")[0])[1:]
    args = build_parser().parse_args(words)
    assert args.handler is not None
