"""URLs from site files: what may reach a command line, a download or a kubeconfig.

Refused: credentials in the URL (``user:password@host``: they would show in ``ps``, in
pyinfra's output and in the operator's kubeconfig), characters outside RFC 3986 (spaces,
quotes, backslashes, non-ASCII: percent-encode them), and plain ``http://`` downloads without a
pinned digest (anyone on the path could swap the file).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

__all__ = ["url_problem"]

# RFC 3986: unreserved, reserved and "%" (percent-encoding); nothing else.
_URL_CHARS: Final = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+", re.ASCII)


def url_problem(url: str, *, https_only: bool = False, pinned: bool = True) -> str | None:
    """Why ``url`` cannot be used, or None. ``https_only`` for API servers; ``pinned`` tells
    whether the downloaded file's sha256 is pinned (a plain ``http://`` URL needs it)."""
    if not _URL_CHARS.fullmatch(url):
        return "must be an ASCII URL without spaces, quotes or backslashes (percent-encode them)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes:
        return f"must be an {' or '.join(s + '://' for s in schemes)} URL"
    if "@" in parts.netloc:
        return "must not hold credentials (user:password@): they would show in logs and ps"
    if not parts.hostname:
        return "has no valid host name"
    if parts.scheme == "http" and not pinned:
        return (
            "is plain http://: use https://, or pin the file's sha256 so a swapped file is refused"
        )
    return None
