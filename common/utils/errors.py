"""The base of errors in the data a user gives (annotation files, images): reported by every command in one line
naming the file and the entry at fault, with exit code 2 (common/engine/cli.py's USER_ERRORS), never a traceback."""

__all__ = ["InputDataError"]


class InputDataError(Exception):
    """Input data that is there but cannot be used; the message is one line naming the file and what is wrong."""
