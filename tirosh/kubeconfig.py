"""Kubeconfig handling without kubectl: rename a fetched k3s/rke2 config, merge it into the
operator's kubeconfig, and write it atomically with owner-only permissions.

Everything works on parsed data (never on text), and no function mutates its arguments.
"""

from __future__ import annotations

import copy
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = [
    "MergeResult",
    "dump",
    "from_text",
    "load",
    "merge",
    "merge_into_file",
    "rename",
    "write_atomic",
    "write_if_changed",
]

# The named lists of a kubeconfig and the key holding each entry's body.
SECTIONS: Final = {"clusters": "cluster", "users": "user", "contexts": "context"}
SECRET_MODE: Final = 0o600
DIR_MODE: Final = 0o700


def from_text(text: str) -> dict[str, Any]:
    """Parse kubeconfig YAML. ``clusters``/``users``/``contexts`` that are absent or null (as
    kubectl writes for empty lists) become ``[]``; any other shape raises ValueError."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # Only the position: the parser's message quotes the offending line, which in a
        # kubeconfig may be a piece of a client key.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"kubeconfig is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ValueError(f"kubeconfig must be a mapping, got {type(data).__name__}")
    for section in SECTIONS:
        entries = data.get(section)
        if entries is None:
            data[section] = []
        elif not isinstance(entries, list):
            raise ValueError(f"kubeconfig {section} must be a list, got {type(entries).__name__}")
        elif not all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
            raise ValueError(f"kubeconfig {section} entries must be mappings with a name")
    return data


def load(path: Path) -> dict[str, Any] | None:
    """The parsed kubeconfig at path; None when the file is missing or empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if not text.strip():
        return None
    return from_text(text)


def rename(config: dict[str, Any], name: str, server: str) -> dict[str, Any]:
    """A copy of a single-cluster kubeconfig (as k3s and rke2 write it, everything named
    ``default``) whose cluster, user and context are all called ``name``, whose context points
    at them, whose cluster talks to ``server`` and whose current-context is ``name``."""
    result = copy.deepcopy(config)
    for section, body in SECTIONS.items():
        entries = result.get(section)
        if not isinstance(entries, list) or len(entries) != 1:
            count = len(entries) if isinstance(entries, list) else 0
            raise ValueError(f"expected exactly one entry in {section}, found {count}")
        entry = entries[0]
        if not isinstance(entry, dict) or not isinstance(entry.get(body), dict):
            raise ValueError(f"{section}[0] has no {body} mapping")
        entry["name"] = name
    result["clusters"][0]["cluster"]["server"] = server
    # Only the references change: namespace and any other context fields are kept.
    result["contexts"][0]["context"]["cluster"] = name
    result["contexts"][0]["context"]["user"] = name
    result["current-context"] = name
    return result


def _merge_section(existing: list[Any], incoming: list[Any]) -> list[Any]:
    by_name = {entry["name"]: entry for entry in incoming}
    merged: list[Any] = []
    placed: set[str] = set()
    for entry in existing:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in by_name:
            # Replace in place so the operator's ordering survives; drop later duplicates.
            if name not in placed:
                merged.append(copy.deepcopy(by_name[name]))
                placed.add(name)
        else:
            merged.append(copy.deepcopy(entry))
    merged += [copy.deepcopy(e) for e in incoming if e["name"] not in placed]
    return merged


def _empty_config() -> dict[str, Any]:
    # Key order as kubectl and k3s write it.
    return {
        "apiVersion": "v1",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "kind": "Config",
        "preferences": {},
        "users": [],
    }


def merge(existing: dict[str, Any] | None, incoming: dict[str, Any]) -> dict[str, Any]:
    """A new kubeconfig: ``existing`` with every cluster/user/context of ``incoming`` replacing
    the same-named entry in place or appended. Foreign entries, preferences and a non-empty
    current-context of ``existing`` are kept."""
    result = copy.deepcopy(existing) if existing is not None else _empty_config()
    result.setdefault("apiVersion", "v1")
    result.setdefault("kind", "Config")
    for section in SECTIONS:
        result[section] = _merge_section(
            result.get(section) or [], _named_entries(incoming, section)
        )
    if not result.get("current-context"):
        result["current-context"] = incoming.get("current-context") or ""
    return result


def _named_entries(config: dict[str, Any], section: str) -> list[dict[str, Any]]:
    entries = config.get(section) or []
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries
    ):
        raise ValueError(f"incoming kubeconfig {section} must be a list of named mappings")
    return entries


def dump(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _real_path(path: Path) -> Path:
    # Write through a symlinked kubeconfig (dotfile managers) instead of replacing the link.
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _make_private_dirs(directory: Path) -> None:
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for created in reversed(missing):
        os.mkdir(created, DIR_MODE)
        os.chmod(created, DIR_MODE)  # umask may have narrowed it; make it exact


def _write_bytes_atomic(path: Path, data: bytes, mode: int) -> None:
    path = _real_path(path)
    _make_private_dirs(path.parent)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    # O_EXCL + the final mode at creation: the content is never readable by others, not even
    # for the instant between create and chmod.
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # exact mode whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # Persist the rename itself; not every platform lets a directory be opened for this.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str, mode: int = SECRET_MODE) -> None:
    """Replace path with text atomically (temp file in the same directory, fsync, rename).
    Missing parent directories are created with mode 0700."""
    _write_bytes_atomic(path, text.encode("utf-8"), mode)


@dataclass
class MergeResult:
    changed: bool
    backup: Path | None


def merge_into_file(
    path: Path, incoming: dict[str, Any], backup_suffix: str = ".bak"
) -> MergeResult:
    """Merge incoming into the kubeconfig at path. Nothing is written when the merge changes
    nothing; otherwise the previous file is first copied to ``path + backup_suffix`` (0600).
    An existing file that is not a valid kubeconfig raises ValueError and is left alone."""
    path = _real_path(path)
    existing = load(path)
    merged = merge(existing, incoming)
    if existing is not None and merged == existing:
        return MergeResult(changed=False, backup=None)
    backup: Path | None = None
    if path.exists():
        backup = path.with_name(path.name + backup_suffix)
        # Several merges in one run (k3s, then rke2) keep the backup of the file as it was
        # before the run, not of the first merge's result.
        if path not in _backed_up:
            _write_bytes_atomic(backup, path.read_bytes(), SECRET_MODE)
            _backed_up.add(path)
    write_atomic(path, dump(merged))
    return MergeResult(changed=True, backup=backup)


# Files this process has backed up already (one pyinfra run is one process).
_backed_up: set[Path] = set()


def new_run() -> None:
    """Forget which files were backed up: the next merge backs up again (a new run)."""
    _backed_up.clear()


def write_if_changed(path: Path, config: dict[str, Any]) -> bool:
    """Write config to path (0600) unless it already holds the same data with mode 0600;
    a file with the right content but a wider mode only gets a chmod. True if anything changed."""
    path = _real_path(path)
    try:
        current = load(path)
    except ValueError:
        current = None  # A corrupt copy of our own file is simply rewritten.
    # Compare as the file would read back, so e.g. `users: null` equals `users: []`.
    if current is not None and current == from_text(dump(config)):
        if stat.S_IMODE(path.stat().st_mode) == SECRET_MODE:
            return False
        os.chmod(path, SECRET_MODE)
        return True
    write_atomic(path, dump(config))
    return True
