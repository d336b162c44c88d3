"""The value checks every config section's `__post_init__` uses, and `ConfigError` (main/config.py re-exports it).

Its own module so that the sections defined outside main/config.py (main/config_multiview.py, main/config_v2v.py,
...) use the same checks and error without importing main/config.py, which imports them.
"""

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid config key, value, file or override; the one-line message names it and its source.

    Attributes:
        key: the dotted key at fault, or None when no single key is (a missing file, a malformed override).
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # bool is an int subclass


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _require(ok: bool, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: expected {expected}, got {value!r}", key)


def _check_int(key: str, value: Any, minimum: int) -> None:
    _require(_is_int(value) and value >= minimum, key, f"an integer >= {minimum}", value)


def _is_sequence(value: Any, length: int) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) == length


def _int_tuple(key: str, value: Any, length: int) -> tuple[int, ...]:
    ok = _is_sequence(value, length) and all(_is_int(v) and v > 0 for v in value)
    _require(ok, key, f"{length} positive integers", value)
    return tuple(value)


def _float_tuple(key: str, value: Any, length: int, positive: bool) -> tuple[float, ...]:
    ok = _is_sequence(value, length) and all(_is_number(v) and (v > 0 or not positive) for v in value)
    _require(ok, key, f"{length} {'positive ' if positive else ''}numbers", value)
    return tuple(float(v) for v in value)
