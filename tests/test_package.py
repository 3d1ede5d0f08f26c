"""The package surface: exports, version, logging."""

import logging
import subprocess
import sys

import replicate_qwen_sdk


def test_all_is_sorted_and_every_name_exists():
    names = replicate_qwen_sdk.__all__
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(replicate_qwen_sdk, name)


def test_version_is_a_plain_string():
    from replicate_qwen_sdk.__version__ import __version__

    assert replicate_qwen_sdk.__version__ == __version__
    assert all(part.isdigit() for part in __version__.split("."))


def test_the_library_logger_has_a_null_handler_and_prints_nothing():
    logger = logging.getLogger("replicate_qwen_sdk")
    assert any(isinstance(handler, logging.NullHandler) for handler in logger.handlers)


def test_importing_prints_nothing_and_pulls_in_no_test_tools():
    code = "import sys, replicate_qwen_sdk; print(sorted(m for m in ('responses', 'pytest') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert result.stderr == ""
