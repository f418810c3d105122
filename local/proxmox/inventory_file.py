"""Writing ``ansible_host`` into the site's inventory.toml: backup, diff, atomic replace.

The file is read again right before the write (not the copy the site loader parsed), edited
with its comments and layout kept (``tirosh.proxmox.inventory``), shown as a diff, copied to
``inventory.toml.bak`` and replaced by a rename; a file that is not a regular TOML inventory
is refused and left as it is, without a backup.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tirosh import regular_file
from tirosh.proxmox.inventory import InventoryEditError, set_hosts, unified_diff

__all__ = ["InventoryWrite", "write_hosts"]


@dataclass(frozen=True)
class InventoryWrite:
    diff: str  # empty: nothing changes
    backup: Path | None
    written: bool


def write_hosts(path: Path, hosts: Mapping[str, str], name: str, dry: bool) -> InventoryWrite:
    """Set ``ansible_host`` of each alias in the inventory at ``path``; ``dry``: diff only.

    Raises InventoryEditError (nothing written) for a file that is not a TOML inventory.
    """
    real = Path(os.path.realpath(path))  # a symlinked inventory is written through
    try:
        old = regular_file.read_text(real, "inventory file")
    except OSError as exc:
        raise InventoryEditError(f"cannot read: {exc.strerror}: not written") from None
    except ValueError as exc:  # a FIFO or directory, or not UTF-8
        raise InventoryEditError(f"{exc}: not written") from None
    new = set_hosts(old, hosts)
    diff = unified_diff(old, new, name)
    if not diff or dry:
        return InventoryWrite(diff, None, False)
    mode = real.stat().st_mode & 0o7777
    backup = real.with_name(real.name + ".bak")
    _write_atomic(backup, old.encode(), mode)
    _write_atomic(real, new.encode(), mode)
    return InventoryWrite(diff, backup, True)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
