"""Command-line helpers shared by the entry scripts (main/train.py, main/test.py, demo/demo.py)."""

import argparse
import re

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
