"""The lock kubectl and client-go take before they write a kubeconfig: ``<file>.lock``.

client-go (``tools/clientcmd``, ``lockFile``) creates ``<file>.lock`` with O_CREAT|O_EXCL next
to the file as the operator names it (symlinks are not resolved), writes the file, and removes
the lock. A second kubectl finds the lock and fails with "file exists"; it never removes a lock
it did not create. Taking the same lock serialises our merges with each other and with kubectl.

Stale locks: client-go's own lock is empty, so nothing tells whether its writer is alive; like
kubectl we never remove one and report it after the timeout. Our locks carry
``tirosh <pid> <host> <boot id>``: one whose process is gone on this host and boot is removed,
under a second O_EXCL lock (``<file>.lock.break``) so two waiters cannot both remove it and
take away a live lock that a third process created in between.

Our lock never exists without its owner line: the line is written to a temporary file first and
linked to ``<file>.lock`` (as exclusive as O_EXCL). An empty lock, which nothing could ever
remove but a person, is left by neither a full disk nor a kill. Temporary files (of the lock and
of the atomic writes, ``.<name>.tmp-<pid>-<hex>``) of a process that is gone are removed by the
next run: the writes' under the lock, the lock's once they are older than a live creator keeps
one (a few microseconds).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

__all__ = ["LockTimeout", "lock_path", "locked", "remove_stale_temps", "temp_path"]

DEFAULT_TIMEOUT: Final = 30.0
_BREAK_STALE_AFTER: Final = 10.0  # seconds: a .lock.break older than this was left by a crash
_TAG: Final = "tirosh"


class LockTimeout(RuntimeError):
    """``<file>.lock`` stayed in place: another writer holds it, or a kubectl left it."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "-"


def _owner() -> str:
    return f"{_TAG} {os.getpid()} {socket.gethostname()} {_boot_id()}\n"


_EXCL: Final = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
# link() is not available on every filesystem (vfat, some FUSE and SMB mounts).
_NO_LINKS: Final = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV})


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.tmp-<pid>-<hex>``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _write_new(path: Path, content: str) -> None:
    # O_EXCL; a failed write (full disk) removes the file again.
    fd = os.open(path, _EXCL, 0o600)
    try:
        try:
            os.write(fd, content.encode())
        finally:
            os.close(fd)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _create(path: Path, content: str) -> bool:
    """Create ``path`` holding ``content`` unless it exists; False if it did."""
    temp = temp_path(path)
    _write_new(temp, content)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in _NO_LINKS:
            raise
        try:
            _write_new(path, content)
        except FileExistsError:
            return False
    finally:
        temp.unlink(missing_ok=True)
    return True


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def remove_stale_temps(path: Path, min_age: float = 0.0) -> list[Path]:
    """Remove the temporary files beside ``path`` (``temp_path``) whose process is gone on this
    machine and that are at least ``min_age`` seconds old; the removed paths.

    Call it holding the lock of ``path`` for the files written under that lock: nobody else
    writes them then, and the process check still keeps any live writer's file. Anything but
    a regular file, and a process that is alive (or a reused pid), leaves the file alone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.tmp-([0-9]+)-[0-9a-f]{{8}}")
    removed: list[Path] = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or int(match[1]) == os.getpid() or not _process_gone(int(match[1])):
            continue
        candidate = path.parent / name
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime >= min_age:
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _is_stale(content: str) -> bool:
    parts = content.split()
    if len(parts) != 4 or parts[0] != _TAG or not parts[1].isascii() or not parts[1].isdigit():
        return False  # kubectl's empty lock, or anything else we did not write
    pid, host, boot = int(parts[1]), parts[2], parts[3]
    if host != socket.gethostname() or boot != _boot_id():
        return False  # another machine (shared home) or an earlier boot we cannot judge
    return _process_gone(pid)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return None


def _break_if_stale(lock: Path) -> bool:
    """Remove lock when it is one of ours whose process is gone; True if removed."""
    content = _read(lock)
    if content is None or not _is_stale(content):
        return False
    breaker = lock.with_name(lock.name + ".break")
    if not _create(breaker, _owner()):
        try:
            if time.time() - breaker.stat().st_mtime > _BREAK_STALE_AFTER:
                breaker.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        return False
    try:
        # Under the breaker nobody else removes the lock, and nobody creates one while it
        # exists: if it still holds the stale content, it is still the stale lock.
        if _read(lock) == content:
            lock.unlink(missing_ok=True)
            return True
        return False
    finally:
        breaker.unlink(missing_ok=True)


def _default_timeout() -> float:
    value = os.environ.get("TIROSH_KUBECONFIG_LOCK_TIMEOUT", "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT


@contextmanager
def locked(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold ``<path>.lock`` (created O_EXCL, removed on exit), waiting up to ``timeout``
    seconds (default ``TIROSH_KUBECONFIG_LOCK_TIMEOUT``, else 30). ``path`` as the operator
    names it: kubectl does not resolve symlinks either."""
    lock = lock_path(path)
    deadline = time.monotonic() + (_default_timeout() if timeout is None else timeout)
    # A lock's temporary file lives between two system calls: one older than that is a kill's.
    remove_stale_temps(lock, min_age=_BREAK_STALE_AFTER)
    remove_stale_temps(lock.with_name(lock.name + ".break"), min_age=_BREAK_STALE_AFTER)
    delay = 0.002
    while not _create(lock, _owner()):
        if _break_if_stale(lock):
            continue
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{lock} exists: another kubectl or deploy is writing {path}; if none is "
                f"running, remove {lock} (kubectl leaves it behind when it is killed)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
