"""Plan and apply the site's registered Secrets (``Site.secrets``) on the management cluster,
by server-side apply through the management context.

``make kubernetes/secret/plan`` / ``apply`` (``KUBERNETES_SECRET=NAME`` for one). The plan
names Secrets and keys with create / update / unchanged, never a value or a hash of one. Every
variable is checked before anything is applied: a missing one is named and nothing changes.
"""

from __future__ import annotations

import base64
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kubernetes import client

from local.kube import client as kubeclient
from tirosh import regular_file
from tirosh.argocd import SECRETS_MANAGER
from tirosh.errors import OperatorError
from tirosh.plan import Change, Plan
from tirosh.secrets_registry import RegistrySecret, desired_data, parse_dotenv, plan, values
from tirosh.site import Site

__all__ = ["FIELD_MANAGER", "PlannedSecret", "apply_secrets", "plan_secrets", "read_dotenv"]

FIELD_MANAGER: Final = SECRETS_MANAGER


@dataclass(frozen=True)
class PlannedSecret:
    secret: RegistrySecret
    wanted: dict[str, str]
    changes: list[Change]
    replaced: bool  # its type changes, which Kubernetes does not allow in place

    @property
    def pending(self) -> bool:
        return any(change.changes for change in self.changes)


def read_dotenv(repo_root: Path) -> dict[str, str]:
    """The repository's git-ignored ``.env``, if any; a warning when others may read it."""
    path = repo_root / ".env"
    try:
        text = regular_file.read_text(path, ".env file")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise OperatorError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:  # a FIFO or device (refused without blocking), or not UTF-8
        raise OperatorError(f"{path}: {exc}") from None
    if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
        print(f"warning: {path} is readable by other users: chmod 600 {path}", file=sys.stderr)
    return parse_dotenv(text)


def selected(site: Site, name: str | None) -> tuple[RegistrySecret, ...]:
    """The site's Secrets, or the one named ``name``."""
    if name is None:
        return site.secrets
    chosen = tuple(s for s in site.secrets if s.name == name)
    if not chosen:
        known = ", ".join(s.name for s in site.secrets) or "none"
        raise OperatorError(
            f"no Secret {name!r} in sites/{site.name}/argocd/secrets.toml (declared: {known})"
        )
    return chosen


def secret_values(
    site: Site, secrets: tuple[RegistrySecret, ...], environ: Mapping[str, str]
) -> dict[str, str]:
    """Every variable the Secrets need, from the environment or .env (MissingVariables)."""
    return values(list(secrets), environ, read_dotenv(site.repo_root)) if secrets else {}


def _existing(core: client.CoreV1Api, secret: RegistrySecret) -> dict[str, Any] | None:
    try:
        found = core.read_namespaced_secret(secret.name, secret.namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return {"type": found.type, "data": dict(found.data or {})}


def plan_secrets(
    core: client.CoreV1Api, secrets: tuple[RegistrySecret, ...], found: Mapping[str, str]
) -> list[PlannedSecret]:
    result = []
    for secret in secrets:
        wanted = desired_data(secret, found)
        existing = _existing(core, secret)
        replaced = existing is not None and (existing.get("type") or "Opaque") != secret.type
        result.append(PlannedSecret(secret, wanted, plan(secret, wanted, existing), replaced))
    return result


def _body(secret: RegistrySecret, wanted: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret.name, "namespace": secret.namespace},
        "type": secret.type,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in wanted.items()},
    }


def _apply(core: client.CoreV1Api, body: dict[str, Any], dry_run: str | None = None) -> None:
    metadata = body["metadata"]
    extra = {"dry_run": dry_run} if dry_run else {}
    core.patch_namespaced_secret(
        metadata["name"],
        metadata["namespace"],
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
        **extra,
    )


def _apply_one(core: client.CoreV1Api, planned: PlannedSecret) -> None:
    secret = planned.secret
    body = _body(secret, planned.wanted)
    if not planned.replaced:
        _apply(core, body)
        return
    # A Secret's type is immutable: it is replaced. The API server checks the new Secret
    # first (a dry run under another name), and the old one comes back if the apply fails, so
    # a failure never leaves the site without its Secret.
    check_name = f"{secret.name[:239]}-tirosh-check"  # a Secret name is at most 253
    trial = dict(body, metadata=dict(body["metadata"], name=check_name))
    _apply(core, trial, dry_run="All")
    old = core.read_namespaced_secret(secret.name, secret.namespace)
    core.delete_namespaced_secret(secret.name, secret.namespace)
    try:
        _apply(core, body)
    except Exception:
        core.create_namespaced_secret(secret.namespace, _restorable(old))
        raise


def _restorable(old: Any) -> dict[str, Any]:
    """The deleted Secret as it can be created again: its data, type, labels, annotations."""
    meta = old.metadata
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": meta.labels or {},
            "annotations": meta.annotations or {},
        },
        "type": old.type,
        "data": dict(old.data or {}),
    }


def apply_secrets(core: client.CoreV1Api, planned: list[PlannedSecret]) -> int:
    """Apply every Secret whose plan changes something; how many were applied."""
    pending = [p for p in planned if p.pending]
    for item in pending:
        _apply_one(core, item)
    return len(pending)


def converge(
    site: Site, secrets: tuple[RegistrySecret, ...], found: Mapping[str, str], dry: bool
) -> Plan:
    """Plan the Secrets through the management context and, unless ``dry``, apply them."""
    if not secrets:
        return Plan()
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        planned = plan_secrets(core, secrets, found)
        if not dry:
            apply_secrets(core, planned)
    finally:
        api.close()
    return Plan([change for item in planned for change in item.changes])


def changed_count(plan: Plan) -> int:
    """How many Secrets a plan changes (its changes name ``Secret ns/name[ key k]``)."""
    return len({change.what.split(" key ")[0] for change in plan.changes if change.changes})
