"""What ``argocd cluster add`` creates on a workload cluster, through the workload context.

Argo CD manages the cluster as ServiceAccount ``kube-system/argocd-manager`` bound to
``argocd-manager-role`` (a ClusterRole, or Roles in the declared namespaces), with a long-lived
token Secret ``argocd-manager-long-lived-token`` that kube-controller-manager fills in. Names
and rules are Argo CD's own (``util/clusterauth``), so a cluster added by the CLI before is
taken over as it is. Each object is created when missing and replaced when its rules or
subjects differ; ``dry`` only reports.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from kubernetes import client

from tirosh.errors import OperatorError
from tirosh.plan import Change

__all__ = [
    "MANAGER",
    "TOKEN_SECRET",
    "TokenTimeout",
    "ensure_rbac",
    "ensure_token_secret",
    "revoke",
    "wait_for_token",
    "wanted_objects",
]

SYSTEM_NAMESPACE: Final = "kube-system"
MANAGER: Final = "argocd-manager"
ROLE: Final = "argocd-manager-role"
BINDING: Final = "argocd-manager-role-binding"
TOKEN_SECRET: Final = "argocd-manager-long-lived-token"
TOKEN_TIMEOUT: Final = 30.0  # Argo CD's own bound (common.BearerTokenTimeout)
_ALL: Final = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
CLUSTER_RULES: Final = [_ALL, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
NAMESPACE_RULES: Final = [_ALL]
_RBAC: Final = "rbac.authorization.k8s.io"


class TokenTimeout(OperatorError, RuntimeError):
    """kube-controller-manager did not fill the token Secret in time."""


def _get(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _plain(api: client.ApiClient, obj: Any) -> dict[str, Any]:
    return dict(api.sanitize_for_serialization(obj))


@dataclass(frozen=True)
class _Kind:
    """How one kind of argocd-manager object is read, created and replaced."""

    kind: str
    compare: tuple[str, ...]  # the fields that must equal the wanted object's
    read: Callable[..., Any]
    create: Callable[..., Any]
    replace: Callable[..., Any]
    namespaced: bool


def _kinds(api: client.ApiClient) -> dict[str, _Kind]:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    return {
        "ServiceAccount": _Kind(
            "ServiceAccount",
            (),
            core.read_namespaced_service_account,
            core.create_namespaced_service_account,
            core.replace_namespaced_service_account,
            True,
        ),
        "ClusterRole": _Kind(
            "ClusterRole",
            ("rules",),
            rbac.read_cluster_role,
            rbac.create_cluster_role,
            rbac.replace_cluster_role,
            False,
        ),
        "ClusterRoleBinding": _Kind(
            "ClusterRoleBinding",
            ("roleRef", "subjects"),
            rbac.read_cluster_role_binding,
            rbac.create_cluster_role_binding,
            rbac.replace_cluster_role_binding,
            False,
        ),
        "Role": _Kind(
            "Role",
            ("rules",),
            rbac.read_namespaced_role,
            rbac.create_namespaced_role,
            rbac.replace_namespaced_role,
            True,
        ),
        "RoleBinding": _Kind(
            "RoleBinding",
            ("roleRef", "subjects"),
            rbac.read_namespaced_role_binding,
            rbac.create_namespaced_role_binding,
            rbac.replace_namespaced_role_binding,
            True,
        ),
    }


def wanted_objects(namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """The ServiceAccount, and a ClusterRole + binding (or a Role + binding per namespace)."""
    subjects = [{"kind": "ServiceAccount", "name": MANAGER, "namespace": SYSTEM_NAMESPACE}]
    role_ref = {"apiGroup": _RBAC, "kind": "Role" if namespaces else "ClusterRole", "name": ROLE}
    wanted: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": MANAGER, "namespace": SYSTEM_NAMESPACE},
        }
    ]
    scopes: list[tuple[str, str, dict[str, str], list[dict[str, Any]]]] = (
        [("Role", "RoleBinding", {"namespace": ns}, NAMESPACE_RULES) for ns in namespaces]
        if namespaces
        else [("ClusterRole", "ClusterRoleBinding", {}, CLUSTER_RULES)]
    )
    for role_kind, binding_kind, scope, rules in scopes:
        wanted.append(
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": role_kind,
                "metadata": {"name": ROLE, **scope},
                "rules": rules,
            }
        )
        wanted.append(
            {
                "apiVersion": f"{_RBAC}/v1",
                "kind": binding_kind,
                "metadata": {"name": BINDING, **scope},
                "roleRef": role_ref,
                "subjects": subjects,
            }
        )
    return wanted


def _ensure(
    api: client.ApiClient, kind: _Kind, body: dict[str, Any], subject: str, dry: bool
) -> Change:
    name, namespace = body["metadata"]["name"], body["metadata"].get("namespace")
    key = (name, namespace) if kind.namespaced else (name,)
    what = f"{kind.kind} {namespace}/{name}" if namespace else f"{kind.kind} {name}"
    existing = _get(partial(kind.read, *key))
    if existing is None:
        if not dry:
            kind.create(*key[1:], body)
        return Change(subject, "create", what)
    current = _plain(api, existing)
    if all(current.get(field) == body.get(field) for field in kind.compare):
        return Change(subject, "unchanged", what)
    if not dry:
        version = current["metadata"]["resourceVersion"]
        kind.replace(*key, dict(body, metadata=dict(body["metadata"], resourceVersion=version)))
    return Change(subject, "update", what)


def ensure_rbac(
    api: client.ApiClient, namespaces: tuple[str, ...], subject: str, dry: bool
) -> list[Change]:
    """Create or replace each argocd-manager object that is missing or differs."""
    kinds = _kinds(api)
    return [_ensure(api, kinds[o["kind"]], o, subject, dry) for o in wanted_objects(namespaces)]


def ensure_token_secret(api: client.ApiClient, subject: str, dry: bool) -> Change:
    """The token Secret that kube-controller-manager fills with the ServiceAccount's token."""
    core = client.CoreV1Api(api)
    what = f"Secret {SYSTEM_NAMESPACE}/{TOKEN_SECRET}"
    if _get(lambda: core.read_namespaced_secret(TOKEN_SECRET, SYSTEM_NAMESPACE)) is not None:
        return Change(subject, "unchanged", what)
    if not dry:
        core.create_namespaced_secret(
            SYSTEM_NAMESPACE,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/service-account-token",
                "metadata": {
                    "name": TOKEN_SECRET,
                    "namespace": SYSTEM_NAMESPACE,
                    "annotations": {"kubernetes.io/service-account.name": MANAGER},
                },
            },
        )
    return Change(subject, "create", what)


def revoke(api: client.ApiClient, subject: str, dry: bool) -> list[Change]:
    """Delete the ServiceAccount and its token Secret, so that new ones replace them.

    A legacy token's claims are the Secret's and the ServiceAccount's names and the
    ServiceAccount's uid, with no issue time: a Secret recreated under the same name would get
    the very same token back. A new ServiceAccount (new uid) gives a new token, and deleting the
    old one invalidates every token issued for it.
    """
    core = client.CoreV1Api(api)
    changes = []
    for kind, read, delete, name in (
        ("Secret", core.read_namespaced_secret, core.delete_namespaced_secret, TOKEN_SECRET),
        (
            "ServiceAccount",
            core.read_namespaced_service_account,
            core.delete_namespaced_service_account,
            MANAGER,
        ),
    ):
        if _get(partial(read, name, SYSTEM_NAMESPACE)) is None:
            continue
        what = f"{kind} {SYSTEM_NAMESPACE}/{name} (revokes the token)"
        changes.append(Change(subject, "delete", what))
        if not dry:
            delete(name, SYSTEM_NAMESPACE)
            _wait_gone(partial(read, name, SYSTEM_NAMESPACE), f"{kind} {SYSTEM_NAMESPACE}/{name}")
    return changes


def _wait_gone(read: Callable[[], Any], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _get(read) is not None:
        if time.monotonic() > deadline:
            raise TokenTimeout(f"{what} still exists {timeout:g} s after its deletion")
        time.sleep(0.2)


def wait_for_token(api: client.ApiClient, timeout: float = TOKEN_TIMEOUT) -> str:
    """The ServiceAccount token once kube-controller-manager has written it (bounded)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout
    pause = 0.05  # usually filled within a tenth of a second: poll fast first, then back off
    while True:
        secret = _get(lambda: core.read_namespaced_secret(TOKEN_SECRET, SYSTEM_NAMESPACE))
        token = (secret.data or {}).get("token") if secret is not None else None
        if token:
            return base64.b64decode(token).decode()
        if time.monotonic() > deadline:
            raise TokenTimeout(
                f"Secret {SYSTEM_NAMESPACE}/{TOKEN_SECRET} has no token after {timeout:g} s: "
                "kube-controller-manager's token controller fills it; is it running?"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
