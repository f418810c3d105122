"""The plan of the access keys: per key of argocd-cm, argocd-rbac-cm and argocd-secret. Pure.

The keys are applied by server-side apply under ``ACCESS_MANAGER``, a field manager of their
own: the manifest's manager (``tirosh.argocd.FIELD_MANAGER``) applies these objects without
the site's keys, and sharing it would make each apply drop what the other set. What the
manager owns is read from the live object's ``managedFields``; a key it owns that the site no
longer declares is removed by the next apply (server-side apply semantics), so the plan says
``delete`` for it. Argo CD's own keys (``server.secretkey``, ``admin.password``, the manifest's
``resource.*``) are never in the apply and stay as they are.

The plan names objects and keys only; a Secret key's value is compared, never shown, and never
hashed (a hash of a short secret can be guessed).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from tirosh.access import ARGOCD_CM, ARGOCD_SECRET, RBAC_CM, Rendered
from tirosh.plan import Action, Change

__all__ = ["ACCESS_MANAGER", "Live", "Target", "apply_body", "key_changes", "owned_keys", "targets"]

ACCESS_MANAGER: Final = "tirosh-infra-access"
SUBJECT: Final = "access"


@dataclass(frozen=True)
class Target:
    """One object the site owns keys of, and the keys it wants there."""

    kind: str  # ConfigMap | Secret
    name: str
    wanted: dict[str, str]

    @property
    def secret(self) -> bool:
        return self.kind == "Secret"


@dataclass(frozen=True)
class Live:
    """What the cluster holds: the plain values of the object's keys, and the keys
    ``ACCESS_MANAGER`` owns (None: the object does not exist)."""

    data: dict[str, str]
    owned: frozenset[str]


def targets(rendered: Rendered) -> list[Target]:
    """The three objects, always: one whose wanted keys are all gone may still own some."""
    return [
        Target("ConfigMap", ARGOCD_CM, rendered.argocd_cm),
        Target("ConfigMap", RBAC_CM, rendered.rbac_cm),
        Target("Secret", ARGOCD_SECRET, rendered.secret),
    ]


def owned_keys(
    managed_fields: Iterable[Mapping[str, Any]], manager: str = ACCESS_MANAGER
) -> set[str]:
    """The ``data`` keys ``manager`` owns by apply (``f:data`` → ``f:<key>`` of fieldsV1)."""
    keys: set[str] = set()
    for entry in managed_fields:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        data = (entry.get("fieldsV1") or {}).get("f:data") or {}
        keys.update(key.removeprefix("f:") for key in data if key.startswith("f:"))
    return keys


def live_data(kind: str, data: Mapping[str, str] | None) -> dict[str, str]:
    """A live object's data as plain text (a Secret's is base64)."""
    if kind != "Secret":
        return dict(data or {})
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (data or {}).items()}


def key_changes(namespace: str, target: Target, live: Live | None) -> list[Change]:
    """Per key: create / update / unchanged for the wanted keys, delete for the keys the
    manager owns that the site no longer declares."""
    where = f"{target.kind} {namespace}/{target.name}"
    changes = []
    for key, value in target.wanted.items():
        action: Action
        if live is None or key not in live.data:
            action = "create"
        elif live.data[key] != value:
            action = "update"
        elif key not in live.owned:
            action = "update"  # the same value, set by someone else: the site takes it over
        else:
            action = "unchanged"
        changes.append(Change(SUBJECT, action, f"{where} key {key}"))
    for key in sorted((live.owned if live else frozenset()) - target.wanted.keys()):
        changes.append(Change(SUBJECT, "delete", f"{where} key {key}"))
    return changes


def apply_body(namespace: str, target: Target) -> dict[str, Any]:
    """The server-side apply body: the object's name and the wanted keys, nothing else."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": target.kind,
        "metadata": {"name": target.name, "namespace": namespace},
    }
    if target.secret:
        body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in target.wanted.items()}
    else:
        body["data"] = dict(target.wanted)
    return body
