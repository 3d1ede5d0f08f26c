"""Run the Gradio tests live against every Gradio major, one virtual
environment per major.

    python tests/gradio_apps/matrix.py [--record] [--only MAJOR ...] [PYTEST ARGS ...]

Run it with the Python of an environment that has the test extra
(``pip install '.[test]'``). For Gradio 3, 4 and 5 (and 6 when that
environment's gradio is not a 6), it makes ``.gradio-matrix/gradio<major>``
in the checkout with the Gradio of that era and the dependencies its release
worked with (made once, in parallel, and reused while the pins are the same),
then runs the Gradio tests with ``GRADIO<major>_PYTHON`` pointing at them: the
test session starts every major's Space replicas in parallel, once, and
stops them at the end. ``--record`` first records the replicas' scenarios
again (tests/data/gradio_transcripts, replayed by the default test run).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOME = os.path.join(ROOT, ".gradio-matrix")

#: What each major's server needs. Gradio 3 runs only with the libraries
#: of its time (pydantic 1, the FastAPI and Starlette of mid-2023).
PINS: Dict[int, List[str]] = {
    3: [
        "gradio==3.37.0",
        "gradio_client==0.2.10",
        "fastapi==0.99.1",
        "starlette==0.27.0",
        "pydantic==1.10.11",
        "uvicorn==0.23.1",
        "httpx==0.24.1",
        "httpcore==0.17.3",
        "h11==0.14.0",
        "anyio==3.7.1",
        "websockets==11.0.3",
        "huggingface_hub==0.16.4",
        "jinja2==3.1.2",
        "markupsafe==2.1.3",
        "numpy==1.25.1",
        "pandas==2.0.3",
        "matplotlib==3.7.2",
        "altair==5.0.1",
        "markdown-it-py==2.2.0",
        "mdit-py-plugins==0.3.3",
        "aiohttp==3.8.5",
        "orjson==3.9.2",
        "pillow==10.0.0",
        "python-multipart==0.0.6",
        "typing_extensions==4.7.1",
        "aiofiles==23.1.0",
        "pydub==0.25.1",
        "ffmpy==0.3.1",
        "requests==2.31.0",
        "urllib3==2.0.3",
        "fsspec==2023.6.0",
        "semantic_version==2.10.0",
        "pyyaml==6.0.1",
        "packaging==23.1",
    ],
    # The Qwen2.5 Spaces' custom chatbot needs modelscope_studio of the 4.x era.
    4: ["gradio==4.44.1", "huggingface_hub<0.26", "pydantic==2.10.6", "fastapi==0.112.2", "modelscope_studio<0.6"],
    5: ["gradio[oauth]==5.49.1"],
    6: ["gradio[oauth]==6.31.0"],
}

TESTS = ["tests/test_gradio_spaces.py", "tests/test_gradio_websocket.py", "tests/test_gradio_transcripts.py"]


def installed_major() -> int:
    from importlib import metadata

    try:
        return int(metadata.version("gradio").split(".")[0])
    except metadata.PackageNotFoundError:
        return 0


def python_of(major: int) -> str:
    return os.path.join(HOME, f"gradio{major}", "bin", "python")


def make_environment(major: int) -> str:
    """The virtual environment of ``major``, made if missing or stale."""
    folder = os.path.join(HOME, f"gradio{major}")
    stamp = os.path.join(folder, "pins.txt")
    wanted = "\n".join(PINS[major])
    if os.path.exists(stamp) and open(stamp).read() == wanted:
        return python_of(major)
    print(f"making {folder} (Gradio {major}); this takes a few minutes", flush=True)
    venv.create(folder, with_pip=True, clear=True)
    log = os.path.join(HOME, f"gradio{major}.log")
    with open(log, "w") as out:
        done = subprocess.run(
            [python_of(major), "-m", "pip", "install", "--disable-pip-version-check", *PINS[major]],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        raise SystemExit(f"installing Gradio {major} failed; see {log}")
    with open(stamp, "w") as out:
        out.write(wanted)
    return python_of(major)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="record the replicas' scenarios again first")
    parser.add_argument("--only", type=int, nargs="+", choices=sorted(PINS), help="these majors only")
    options, pytest_args = parser.parse_known_args()
    majors = options.only or sorted(PINS)
    needed = [major for major in majors if major != installed_major()]
    os.makedirs(HOME, exist_ok=True)
    with ThreadPoolExecutor(max_workers=len(needed) or 1) as pool:
        pythons = dict(zip(needed, pool.map(make_environment, needed)))
    env = dict(os.environ)
    for major, python in pythons.items():
        env[f"GRADIO{major}_PYTHON"] = python
    if options.record:
        record = [sys.executable, "tests/gradio_apps/record.py", *map(str, majors)]
        subprocess.run(record, cwd=ROOT, env=env, check=True)
    return subprocess.call([sys.executable, "-m", "pytest", *TESTS, *pytest_args], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
