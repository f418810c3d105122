"""Argo CD's repository, repo-creds and cluster Secrets on the management cluster: read them
in one request, server-side apply the declared ones, put one back.

Through the management context, with a field manager of their own (``REGISTRATION_MANAGER``,
never the install's): only the keys the site declares are this project's; the keys Argo CD's API or an operator wrote beside
them are left as they are. What to apply is decided in ``tirosh.argocd_secrets``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from kubernetes import client

from tirosh.argocd import REGISTRATION_MANAGER
from tirosh.argocd_secrets import (
    KINDS,
    SECRET_TYPE_LABEL,
    Kind,
    Planned,
    StoredSecret,
    manifest,
    restore_manifest,
)

__all__ = ["apply", "put_back", "read_stored"]

# Applies in flight at once: each is one PATCH the API server answers in milliseconds.
PARALLEL_APPLIES = 4

_SELECTOR = f"{SECRET_TYPE_LABEL} in ({','.join(KINDS)})"


def _decoded(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (data or {}).items()}


def read_stored(core: client.CoreV1Api, namespace: str) -> list[StoredSecret]:
    """Every repository, repo-creds and cluster Secret of Argo CD's namespace: one request."""
    found = []
    for secret in core.list_namespaced_secret(namespace, label_selector=_SELECTOR).items:
        kind = (secret.metadata.labels or {}).get(SECRET_TYPE_LABEL)
        if kind in KINDS:
            found.append(
                StoredSecret(
                    secret.metadata.name,
                    cast(Kind, kind),
                    _decoded(secret.data),
                    secret.metadata.resource_version or "",
                )
            )
    return found


def _apply(core: client.CoreV1Api, body: dict[str, Any]) -> None:
    metadata = body["metadata"]
    core.patch_namespaced_secret(
        metadata["name"],
        metadata["namespace"],
        body,
        field_manager=REGISTRATION_MANAGER,
        force=True,  # take over the keys Argo CD's API wrote before adoption
        _content_type="application/apply-patch+yaml",
    )


def apply(core: client.CoreV1Api, items: Sequence[Planned], namespace: str) -> int:
    """Apply each planned Secret that differs, a few at a time; how many were applied."""
    pending = [item for item in items if item.keys]
    with ThreadPoolExecutor(max_workers=PARALLEL_APPLIES) as pool:
        list(pool.map(lambda item: _apply(core, manifest(item, namespace)), pending))
    return len(pending)


def put_back(core: client.CoreV1Api, item: Planned, namespace: str) -> str:
    """Undo one apply whose connection failed: the owned keys as they were, or the Secret
    deleted when it was created. Returns what was done, for the operator's line."""
    body = restore_manifest(item, namespace)
    if body is None:
        try:
            core.delete_namespaced_secret(item.name, namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
        return "its Secret was removed again"
    _apply(core, body)
    return "its Secret was put back as it was"
