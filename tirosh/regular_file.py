"""Reading a file an operator names, never blocking on what is not a regular file.

A FIFO, device or socket given where a file is expected (a site file, a manifest, a key, a
kubeconfig) would hang a plain ``open().read()`` until a writer appears, or read forever from
a device. Here the file is opened non-blocking and the open descriptor's type decides, so
nothing can be swapped in between the check and the read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["read_bytes", "read_text"]

_KINDS = (
    (stat.S_ISDIR, "directory"),
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def kind(mode: int) -> str:
    """What a non-regular file is, in words: "FIFO", "directory", ..."""
    return next((name for test, name in _KINDS if test(mode)), "special file")


def read_bytes(path: Path, what: str = "file") -> bytes:
    """The bytes of the regular file at ``path``.

    + path: the file to read
    + what: how the error names the expected file ("kubeconfig file")

    Raises OSError as ``open`` does (FileNotFoundError, PermissionError) and ValueError
    ``is a FIFO, not a regular file`` at once for anything but a regular file.
    """
    # O_NONBLOCK: opening a FIFO without a writer returns at once instead of hanging.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise ValueError(f"is a directory, not a regular {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"is a {kind(mode)}, not a regular {what}")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path, what: str = "file") -> str:
    """``read_bytes`` decoded as UTF-8 (UnicodeDecodeError is a ValueError)."""
    return read_bytes(path, what).decode("utf-8")
