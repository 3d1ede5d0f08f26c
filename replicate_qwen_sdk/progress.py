"""The progress bar of a batch, drawn by tqdm (an optional dependency)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

from .errors import InvalidArgumentError

__all__ = ["ProgressOption", "progress_bar", "counting"]

#: ``progress=``: ``True`` for the default bar, or tqdm keyword arguments.
ProgressOption = Union[bool, Mapping[str, Any]]


def progress_bar(total: int, progress: ProgressOption) -> Optional[Any]:
    """A ``tqdm.auto`` bar for ``total`` jobs (a widget in Jupyter, text on
    a terminal's stderr), or None when ``progress`` is false.

    :param progress: ``True``, or a dict of tqdm keyword arguments that
        replace the defaults (``{"file": sys.stdout, "desc": "questions"}``).
    :raises InvalidArgumentError: if tqdm is not installed, or ``progress``
        is neither a bool nor a dict; checked before any job starts.
    """
    if progress is False or progress is None:
        return None
    if progress is not True and not isinstance(progress, Mapping):
        raise InvalidArgumentError(
            f"progress must be True, False or a dict of tqdm options, got {progress!r}.", argument="progress"
        )
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise InvalidArgumentError(
            "progress=True draws its bar with tqdm, which is not installed: pip install tqdm "
            "(or the package's 'cli' extra), or leave progress out.",
            argument="progress",
        ) from None
    options = {"total": total, "unit": "job", "desc": "batch"}
    if isinstance(progress, Mapping):
        options.update(progress)
    return tqdm(**options)


def counting(bar: Any, on_result: Optional[Callable[[int, Any], None]]) -> Callable[[int, Any], None]:
    """An ``on_result`` that moves ``bar`` one job on (counting failures,
    shown as "N failed") before calling ``on_result``."""
    failed = 0

    def deliver(index: int, outcome: Any) -> None:
        nonlocal failed
        if isinstance(outcome, BaseException):
            failed += 1
            bar.set_postfix_str(f"{failed} failed", refresh=False)
        bar.update(1)
        if on_result is not None:
            on_result(index, outcome)

    return deliver
