"""Checks of single site values that reach shells, paths, YAML and kubeconfigs.

Each returns the problem in words, or None, and never repeats the value: a site value can be a
mistyped secret. The site loader adds the file and key.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["EXCERPT", "ascii_match", "excerpt", "text_problem"]

# Control and format characters (NUL, newline, escape, bidi overrides, zero-width ones) and the
# Unicode line and paragraph separators: they split lines in logs, YAML and shells, or make two
# different values look the same.
_REFUSED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Characters of a value a refusal repeats: enough to find it, never a 10 MB value on stderr.
EXCERPT: Final = 60


def excerpt(value: object) -> str:
    """``repr(value)`` for a refusal: cut to ``EXCERPT`` characters of the value, followed by
    its length, when longer."""
    if not isinstance(value, str) or len(value) <= EXCERPT:
        text = repr(value)
        return text if len(text) <= 4 * EXCERPT else text[: 4 * EXCERPT] + "..."
    return f"{value[:EXCERPT]!r}... ({len(value)} characters)"


def text_problem(value: str) -> str | None:
    """Why a site string cannot be used as it is, or None."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            name = "a NUL byte" if char == "\0" else f"the control character U+{ord(char):04X}"
            return f"contains {name}"
    return None


def ascii_match(pattern: re.Pattern[str], value: str) -> bool:
    """``pattern.fullmatch(value)`` for ASCII text only: ``\\d`` and ``str.isdigit`` also take
    digits of other scripts ("v١.٣٤.٣"), which no tool downstream reads as a version."""
    return value.isascii() and pattern.fullmatch(value) is not None
