"""What an HTTP answer may be before the operator-side code uses it, and how it is shown.

Pure: ``decode_json`` refuses what Argo CD never sends (nesting that would exhaust the
interpreter's recursion, text that is not UTF-8, anything that is not JSON); ``sanitized`` turns
any text an answer carries into one short line a terminal can show, without what the request
carried (a proxy may echo a password back).
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = ["EXCERPT", "MAX_DEPTH", "decode_json", "sanitized"]

# Nesting deeper than any Argo CD object: json would recurse until RecursionError.
MAX_DEPTH: Final = 64
EXCERPT: Final = 160  # characters of an unexpected answer shown in its one line


def sanitized(text: str, secrets: tuple[str, ...] = (), limit: int = EXCERPT) -> str:
    """``text`` fit for one line on a terminal: what the request carried (a proxy may echo a
    password back) replaced by ``***``, control and format characters dropped, whitespace
    folded, at most ``limit`` characters."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    shown = "".join(c if c.isprintable() else " " for c in text)
    shown = " ".join(shown.split())
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _too_deep(raw: bytes) -> bool:
    """Whether the JSON text nests deeper than MAX_DEPTH (counted outside strings)."""
    depth, in_string, escaped = 0, False, False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def decode_json(raw: bytes) -> Any:
    """The JSON value of ``raw``; ValueError (with the reason) for what Argo CD never sends."""
    if _too_deep(raw):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({type(exc).__name__})") from None
