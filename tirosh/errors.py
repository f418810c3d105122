"""The one base class of the failures an operator can fix by reading one line."""

from __future__ import annotations

__all__ = ["OperatorError", "TfvarsError"]


class OperatorError(Exception):
    """Expected, and fixable by the operator: ``str()`` is one line that says what to do.

    The operator commands (``local.cli``) print it and exit 1; anything else is a bug.
    """


class TfvarsError(ValueError):
    """A tfvars file that cannot be read as literal values: ``key`` ("-" for the file), message."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")
