"""``ansible_host`` of inventory.toml set from the addresses PVE's guest agents report.

tomlkit keeps the file as the operator wrote it: comments, blank lines, key order, quoting.
Only the ``ansible_host`` values of the named aliases change; an alias missing from the file
or a file that is not a TOML inventory is refused and nothing is written.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import tomlkit
from tomlkit.exceptions import TOMLKitError

__all__ = ["InventoryEditError", "set_hosts", "unified_diff"]


class InventoryEditError(ValueError):
    """The inventory cannot be edited as asked; the file is left alone."""


def set_hosts(text: str, hosts: Mapping[str, str]) -> str:
    """The inventory text with ``[vms.<alias>] ansible_host`` set for each alias of ``hosts``.

    Raises InventoryEditError for text that is not TOML, has no ``[vms]`` tables, or lacks an
    alias.
    """
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise InventoryEditError(
            f"is not TOML ({' '.join(str(exc).split())}): not written"
        ) from None
    vms = document.get("vms")
    if not isinstance(vms, Mapping):
        raise InventoryEditError("has no [vms.<alias>] tables: not an inventory, not written")
    for alias, host in hosts.items():
        table = vms.get(alias)
        if not isinstance(table, Mapping):
            raise InventoryEditError(f"has no [vms.{alias}]: not written")
        if table.get("ansible_host") != host:
            table["ansible_host"] = host  # type: ignore[index]
    return tomlkit.dumps(document)


def unified_diff(old: str, new: str, name: str) -> str:
    """A unified diff of the two texts, labelled with ``name``; empty when they are equal."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"{name} (now)",
        tofile=f"{name} (written)",
    )
    return "".join(lines)
