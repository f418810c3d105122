"""The one base class of the failures an operator can fix by reading one line."""

from __future__ import annotations

__all__ = ["OperatorError"]


class OperatorError(Exception):
    """Expected, and fixable by the operator: ``str()`` is one line that says what to do.

    The operator commands (``local.cli``) print it and exit 1; anything else is a bug.
    """
