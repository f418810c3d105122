"""Kubeconfig handling without kubectl: rename a fetched k3s/rke2 config, merge it into the
operator's kubeconfig, and write it atomically with owner-only permissions.

(Over 300 lines: rename, merge, conflicts and the atomic write act on one document shape.)

Everything works on parsed data (never on text), and no function mutates its arguments.
Files are treated as an operator's own: a target that is not a kubeconfig, not a regular file
or read-only is refused, never replaced; merges hold the lock kubectl takes (``<file>.lock``)
and re-read the file under it; same-named entries that point elsewhere are not replaced unless
the caller says so (``TIROSH_REPLACE_CONTEXTS=true``).
"""

from __future__ import annotations

import copy
import gc
import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from tirosh import kubeconfig_yaml, regular_file
from tirosh.kubeconfig_lock import LockTimeout, locked, remove_stale_temps, temp_path
from tirosh.kubeconfig_names import (
    MAX_NAME,
    REPLACE_VARIABLE,
    SECTIONS,
    conflicts,
    export_list,
    foreign_names,
    name_problem,
    path_warning,
    replace_requested,
)

__all__ = [
    "MAX_NAME",
    "REPLACE_VARIABLE",
    "SECTIONS",
    "ConflictError",
    "LockTimeout",
    "MergeResult",
    "check_writable",
    "conflicts",
    "dump",
    "export_list",
    "foreign_names",
    "from_text",
    "load",
    "locked",
    "merge",
    "merge_into_file",
    "name_problem",
    "path_warning",
    "read_regular",
    "rename",
    "replace_requested",
    "write_atomic",
    "write_if_changed",
]

SECRET_MODE: Final = 0o600
DIR_MODE: Final = 0o700
# Top-level keys of a kubeconfig (client-go's v1.Config): a mapping with none of them is some
# other YAML file (compose file, Helm values) and is never merged into or replaced.
TOP_KEYS: Final = frozenset(
    {"apiVersion", "kind", "clusters", "users", "contexts", "current-context", "preferences"}
)
# The C loader and dumper (libyaml): a multi-megabyte kubeconfig in well under a second.
_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BASE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BASE_DUMPER):  # type: ignore[misc,valid-type]
    """Quotes y/Y/n/N too: kubectl reads YAML 1.1, where they are booleans (a context named N)."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_DUMPER: Final = _Dumper


class ConflictError(ValueError):
    """A same-named cluster, user or context of the target points elsewhere."""


def from_text(text: str) -> dict[str, Any]:
    """Parse kubeconfig YAML. ``clusters``/``users``/``contexts`` that are absent or null (as
    kubectl writes for empty lists) become ``[]``; any other shape raises ValueError."""
    try:
        with _no_gc():
            # str(): the C loader takes only an exact str, not a subclass such as Redacted.
            # Depth and alias bombs first: the loader itself would crash or build a document
            # whose every comparison takes exponential time.
            kubeconfig_yaml.check(str(text), _LOADER)
            data = yaml.load(str(text), Loader=_LOADER)
    except yaml.YAMLError as exc:
        # Only the position: the parser's message quotes the offending line, which in a
        # kubeconfig may be a piece of a client key.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"kubeconfig is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ValueError(f"kubeconfig must be a mapping, got {type(data).__name__}")
    if data and not TOP_KEYS.intersection(data):
        raise ValueError("is YAML but not a kubeconfig (no apiVersion, kind, clusters, contexts)")
    if data.get("kind", "Config") != "Config":
        raise ValueError(f"is not a kubeconfig: kind is {data['kind']!r}, not Config")
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
    """The parsed kubeconfig at path; None when the file is missing or empty. A FIFO, device,
    socket or directory raises ValueError at once (never blocks), as does text that is not a
    kubeconfig."""
    data = read_regular(path)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("is not a kubeconfig (not UTF-8 text)") from None
    if not text.strip():
        return None
    return from_text(text)


def read_regular(path: Path) -> bytes | None:
    """The bytes of the regular file at path; None when it is missing. A FIFO, device, socket
    or directory raises ValueError at once, never blocks."""
    try:
        return regular_file.read_bytes(path, "kubeconfig file")
    except FileNotFoundError:
        return None


def check_writable(path: Path) -> None:
    """Raise ValueError when an existing file at path is read-only for its owner or for us.

    An atomic write replaces the file by rename, which the directory allows whatever the file's
    mode: an operator who made the file read-only would lose it silently. Root passes
    ``os.access`` for any file, hence the explicit owner-write bit."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not info.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise ValueError(
            f"is read-only (mode {stat.S_IMODE(info.st_mode):04o}); it is not replaced: make it "
            "writable (chmod u+w) or point the site at another file"
        )


def rename(config: dict[str, Any], name: str, server: str) -> dict[str, Any]:
    """A copy of a single-cluster kubeconfig (as k3s and rke2 write it, everything named
    ``default``) whose cluster, user and context are all called ``name``, whose context points
    at them, whose cluster talks to ``server`` and whose current-context is ``name``."""
    if problem := name_problem(name):
        raise ValueError(f"context name {name!r} {problem}")
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
    with _no_gc():
        return str(yaml.dump(config, Dumper=_DUMPER, sort_keys=False, default_flow_style=False))


@contextmanager
def _no_gc() -> Iterator[None]:
    # Building a multi-megabyte document allocates millions of small objects and none of them
    # is garbage: the cycle collector's passes over them doubled the time of a 14 MB load.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _write_bytes_atomic(path: Path, data: bytes, mode: int, follow: bool = True) -> None:
    # follow=False replaces a symlink at path by the file instead of writing through it.
    if follow:
        path = _real_path(path)
    _make_private_dirs(path.parent)
    temp = temp_path(path)
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
    path: Path, incoming: dict[str, Any], backup_suffix: str = ".bak", replace: bool = False
) -> MergeResult:
    """Merge incoming into the kubeconfig at path, holding ``<path>.lock`` as kubectl does and
    reading the file again under it. Nothing is written when the merge changes nothing;
    otherwise the previous file is first copied to ``path + backup_suffix`` (0600).

    Raises ValueError (the file is left alone) when the file is not a regular file, not a
    kubeconfig, or read-only; ConflictError when a same-named entry points elsewhere and
    ``replace`` is false; LockTimeout when the lock stays taken."""
    _make_private_dirs(path.parent)
    with locked(path):
        real = _real_path(path)
        # Under the lock no other merge writes this file: a temporary file of a dead process
        # here is what a killed merge left (with the client key in it).
        remove_stale_temps(real)
        existing = load(real)
        if existing is not None and not replace and (found := conflicts(existing, incoming)):
            raise ConflictError("; ".join(found) + f" (set {REPLACE_VARIABLE}=true to replace)")
        merged = merge(existing, incoming)
        if existing is not None and merged == existing:
            return MergeResult(changed=False, backup=None)
        check_writable(real)
        backup: Path | None = None
        if real.exists():
            # Beside the path as the operator names it (~/.kube/config.bak, also when config
            # links into a dotfiles folder), and never through a link found there: the previous
            # file, client keys included, must not land in whatever file a link names.
            backup = path.with_name(path.name + backup_suffix)
            remove_stale_temps(backup)
            # Several merges in one run (k3s, then rke2) keep the backup of the file as it was
            # before the run, not of the first merge's result.
            if real not in _backed_up:
                _write_bytes_atomic(backup, real.read_bytes(), SECRET_MODE, follow=False)
                _backed_up.add(real)
        write_atomic(real, dump(merged))
    return MergeResult(changed=True, backup=backup)


# Files this process has backed up already (one pyinfra run is one process).
_backed_up: set[Path] = set()


def new_run() -> None:
    """Forget which files were backed up: the next merge backs up again (a new run)."""
    _backed_up.clear()


def write_if_changed(path: Path, config: dict[str, Any]) -> bool:
    """Write config to path (0600) unless it already holds the same data with mode 0600;
    a file with the right content but a wider mode only gets a chmod. True if anything changed.

    An existing file that is not a kubeconfig (an ``authorized_keys``, a shell rc file), holds
    another cluster's entries, is not a regular file, or is read-only raises ValueError and is
    left alone."""
    _make_private_dirs(path.parent)
    with locked(path):
        real = _real_path(path)
        remove_stale_temps(real)
        current = load(real)
        if current is not None and (foreign := foreign_names(current, config)):
            # A per-site file holds one cluster; another's entries mean it is someone's file.
            raise ValueError(
                f"holds entries this site does not write ({', '.join(foreign)}); it is not this "
                "site's kubeconfig: move it, or set another kubeconfig_path"
            )
        # Compare as the file would read back, so e.g. `users: null` equals `users: []`.
        if current is not None and current == from_text(dump(config)):
            if stat.S_IMODE(real.stat().st_mode) == SECRET_MODE:
                return False
            os.chmod(real, SECRET_MODE)
            return True
        check_writable(real)
        write_atomic(real, dump(config))
    return True
