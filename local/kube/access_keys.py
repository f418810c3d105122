"""The site's access keys of argocd-cm, argocd-rbac-cm and argocd-secret, on the management
cluster: read with what ``ACCESS_MANAGER`` owns, applied server-side under that manager.

Only the declared keys are in an apply; Argo CD's own keys (``server.secretkey``, the admin
password hash, the manifest's ``resource.*``) are not, so they stay as they are. The plan
(``tirosh.access_plan``) names keys, never a Secret value.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tirosh.access_plan import ACCESS_MANAGER, Live, Target, apply_body, live_data, owned_keys
from tirosh.plan import Change

__all__ = ["apply_target", "read_live", "read_secret_key"]


def _read(core: client.CoreV1Api, namespace: str, target: Target) -> Any:
    try:
        if target.secret:
            return core.read_namespaced_secret(target.name, namespace)
        return core.read_namespaced_config_map(target.name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read_live(core: client.CoreV1Api, namespace: str, target: Target) -> Live | None:
    """The object's keys (plain text) and the keys the access manager owns; None if absent."""
    found = _read(core, namespace, target)
    if found is None:
        return None
    managed = [
        {
            "manager": entry.manager,
            "operation": entry.operation,
            "fieldsV1": entry.fields_v1 or {},
        }
        for entry in found.metadata.managed_fields or ()
    ]
    return Live(live_data(target.kind, found.data), frozenset(owned_keys(managed)))


def read_secret_key(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str | None:
    """One key of a Secret as text (an account's password hash), None when absent."""
    live = read_live(core, namespace, Target("Secret", name, {}))
    return None if live is None else live.data.get(key)


def apply_target(core: client.CoreV1Api, namespace: str, target: Target, dry: bool = False) -> None:
    """Server-side apply of the wanted keys (a key the manager owned and dropped is removed)."""
    body = apply_body(namespace, target)
    extra = {"dry_run": "All"} if dry else {}
    patch = core.patch_namespaced_secret if target.secret else core.patch_namespaced_config_map
    patch(
        target.name,
        namespace,
        body,
        field_manager=ACCESS_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
        **extra,
    )


def pending(changes: list[Change]) -> bool:
    return any(change.changes for change in changes)
