"""Command-line helpers shared by the entry scripts (main/train.py, main/test.py, demo/demo.py)."""

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from common.engine.checkpoint import StateDictMismatchError
from common.engine.snapshot import SnapshotError
from common.utils.atomic_io import OutputWriteError
from common.utils.errors import InputDataError
from common.utils.image_io import ImageReadError

_ACCEPTED_FORMS = "one id '0', a list '0,1,2,3' or an inclusive range '0-3'"
# [0-9] rather than \d, which also matches non-ASCII digits such as '١'.
_ID_LIST = re.compile(r"[0-9]+(,[0-9]+)*")
_ID_RANGE = re.compile(r"([0-9]+)-([0-9]+)")


def parse_gpu_ids(text: str) -> list[int]:
    """Parses a --gpu value into distinct GPU ids, in the order given; usable as an argparse `type=`.

    Args:
        text: one id ("0"), a comma-separated list ("0,1,2,3") or an inclusive range ("0-3"), of
            non-negative integers; surrounding whitespace is ignored.

    Returns:
        The ids, e.g. [0, 1, 2, 3] for "0-3".

    Raises:
        argparse.ArgumentTypeError: for anything else (empty, "a", "3-1", "0,,1", "0,0", "-1"), with a
            one-line message quoting the input and showing the accepted forms.
    """
    stripped = text.strip()
    if match := _ID_RANGE.fullmatch(stripped):
        first, last = int(match[1]), int(match[2])
        if first <= last:
            return list(range(first, last + 1))
        problem = "the range ends before it starts"
    elif _ID_LIST.fullmatch(stripped):
        ids = [int(part) for part in stripped.split(",")]
        if len(set(ids)) == len(ids):
            return ids
        problem = "an id is repeated"
    else:
        problem = "not a GPU id list"
    raise argparse.ArgumentTypeError(f"invalid GPU ids {text!r}: {problem}; expected {_ACCEPTED_FORMS}")


class UsageError(Exception):
    """Bad input from the command line (a path, an id, a box): reported in one line, exit code 2."""


# Errors that mean "the user's input or the machine is wrong", not "the code is wrong": their message names the
# file, folder or key at fault (OutputWriteError: an unwritable output folder, a full disk, with the OS reason), so
# a traceback would only hide it. Anything else propagates with its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UsageError, FileNotFoundError, argparse.ArgumentTypeError, SnapshotError, StateDictMismatchError,
    OutputWriteError, ImageReadError, InputDataError,
)  # fmt: skip
_WORKER_TRACEBACK = "Original Traceback (most recent call last):"  # torch's DataLoader wraps a worker's error in it


def user_message(exc: BaseException) -> str:
    """The one line to show for a user error: its message, or, for an error a DataLoader worker raised (torch
    re-raises it with the worker's traceback in the message), the original error's own last line."""
    message = str(exc)
    if _WORKER_TRACEBACK not in message:
        return message
    last = [line for line in message.splitlines() if line.strip()][-1]
    name, sep, text = last.partition(": ")
    return text if sep and name.replace(".", "").replace("_", "").isalnum() else last


USAGE_EXIT_CODE = 2  # what argparse itself returns for a bad argument


def run_cli(
    main: Callable[[list[str] | None], int | None],
    argv: list[str] | None = None,
    prog: str = "",
    user_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Runs an entry script's ``main(argv)``; a user error becomes its message on stderr and exit code 2.

    Args:
        main: the script's main function; returns an exit code (None means 0).
        argv: the arguments (None: sys.argv[1:]).
        prog: the name printed before the message (default: the script's file name).
        user_errors: further exception types to report this way (e.g. main.config.ConfigError).

    Returns:
        The exit code, for ``raise SystemExit(run_cli(main))``.
    """
    try:
        return int(main(argv) or 0)
    except USER_ERRORS + user_errors as exc:
        print(f"{prog or Path(sys.argv[0]).name}: error: {user_message(exc)}", file=sys.stderr)
        return USAGE_EXIT_CODE
