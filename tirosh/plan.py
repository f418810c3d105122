"""The local phase as data: what would change, object by object, and how each connection stands.

Clusters, repositories, credential templates, SSH known hosts and Secrets all plan into the
same ``Change``; ``str(change)`` is the line an operator reads (``cluster gpu: create    ...``).
A ``Plan`` is what a dry run found; ``Plan.pending`` tells the deploy whether anything would
change. Pure: no host, no API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["CHANGING", "Action", "Change", "Connection", "Plan", "connection_state"]

Action = Literal["create", "update", "delete", "unchanged"]
CHANGING: Final = ("create", "update", "delete")


@dataclass(frozen=True)
class Change:
    """One object and what would happen to it.

    + subject: who the object belongs to on screen (``cluster gpu``, a repository's name,
      ``known hosts``, ``secret``); empty for none
    + action: create, update, delete or unchanged
    + what: the object (``ServiceAccount kube-system/argocd-manager``); never a secret value
    """

    subject: str
    action: Action
    what: str

    @property
    def text(self) -> str:
        """The line without its subject (actions padded so the objects line up)."""
        return f"{self.action:9} {self.what}"

    @property
    def changes(self) -> bool:
        return self.action in CHANGING

    def __str__(self) -> str:
        return f"{self.subject}: {self.text}" if self.subject else self.text


@dataclass(frozen=True)
class Connection:
    """Argo CD's connection state of a cluster or repository, as read back after a change."""

    subject: str
    status: str  # Successful | Failed | Unknown
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "Failed"

    def __str__(self) -> str:
        return f"{self.subject}: connection {self.status}" + (
            f": {self.message}" if self.message else ""
        )


@dataclass
class Plan:
    """What a run found or did: every change in order, then the connection states."""

    changes: list[Change] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # lines that are neither (a skipped part)

    @property
    def pending(self) -> bool:
        """True when any object would be created, updated or deleted."""
        return any(change.changes for change in self.changes)

    @property
    def failed(self) -> bool:
        return any(connection.failed for connection in self.connections)

    def extend(self, other: Plan) -> Plan:
        self.changes += other.changes
        self.connections += other.connections
        self.notes += other.notes
        return self

    def lines(self) -> list[str]:
        """What the operator reads: notes, then each subject's changes and connection state."""
        lines = list(self.notes)
        connections = {c.subject: c for c in self.connections}
        for index, change in enumerate(self.changes):
            lines.append(str(change))
            after = self.changes[index + 1].subject if index + 1 < len(self.changes) else None
            if after != change.subject and change.subject in connections:
                lines.append(str(connections.pop(change.subject)))
        lines += [str(c) for c in connections.values()]
        return lines


def connection_state(item: Mapping[str, Any] | None) -> tuple[str, str]:
    """(status, message) of a cluster or repository as Argo CD's API returns it.

    Clusters carry it in ``info.connectionState`` (the top-level ``connectionState`` is
    deprecated, still filled by older servers), repositories at the top level.
    """
    if not isinstance(item, Mapping):
        return "Unknown", ""
    info = item.get("info")
    state = (info.get("connectionState") if isinstance(info, Mapping) else None) or item.get(
        "connectionState"
    )
    if not isinstance(state, Mapping):
        return "Unknown", ""
    return str(state.get("status") or "Unknown"), str(state.get("message") or "")
