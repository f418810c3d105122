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

__all__ = [
    "MANAGER",
    "TOKEN_SECRET",
    "Change",
    "TokenTimeout",
    "ensure_rbac",
    "ensure_token_secret",
    "revoke",
    "wait_for_token",
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


@dataclass(frozen=True)
class Change:
    action: str  # create | update | unchanged
    what: str

    def __str__(self) -> str:
        return f"{self.action:9} {self.what}"


class TokenTimeout(RuntimeError):
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


def _subject() -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": MANAGER, "namespace": SYSTEM_NAMESPACE}]


def _ensure(
    api: client.ApiClient,
    what: str,
    read: Callable[[], Any],
    create: Callable[[dict[str, Any]], Any],
    replace: Callable[[dict[str, Any]], Any],
    body: dict[str, Any],
    compare: tuple[str, ...],
    dry: bool,
) -> Change:
    existing = _get(read)
    if existing is None:
        if not dry:
            create(body)
        return Change("create", what)
    current = _plain(api, existing)
    if all(current.get(key) == body.get(key) for key in compare):
        return Change("unchanged", what)
    if not dry:
        body = dict(
            body,
            metadata=dict(body["metadata"], resourceVersion=current["metadata"]["resourceVersion"]),
        )
        replace(body)
    return Change("update", what)


def ensure_rbac(api: client.ApiClient, namespaces: tuple[str, ...], dry: bool) -> list[Change]:
    """The ServiceAccount, and the ClusterRole + binding (or a Role + binding per namespace)."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": MANAGER, "namespace": SYSTEM_NAMESPACE},
    }
    changes = [
        _ensure(
            api,
            f"ServiceAccount {SYSTEM_NAMESPACE}/{MANAGER}",
            lambda: core.read_namespaced_service_account(MANAGER, SYSTEM_NAMESPACE),
            lambda b: core.create_namespaced_service_account(SYSTEM_NAMESPACE, b),
            lambda b: core.replace_namespaced_service_account(MANAGER, SYSTEM_NAMESPACE, b),
            sa,
            (),
            dry,
        )
    ]
    role_ref = {"apiGroup": _RBAC, "kind": "Role" if namespaces else "ClusterRole", "name": ROLE}
    if not namespaces:
        role = {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": ROLE},
            "rules": CLUSTER_RULES,
        }
        binding = {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": BINDING},
            "roleRef": role_ref,
            "subjects": _subject(),
        }
        changes.append(
            _ensure(
                api,
                f"ClusterRole {ROLE}",
                lambda: rbac.read_cluster_role(ROLE),
                rbac.create_cluster_role,
                lambda b: rbac.replace_cluster_role(ROLE, b),
                role,
                ("rules",),
                dry,
            )
        )
        changes.append(
            _ensure(
                api,
                f"ClusterRoleBinding {BINDING}",
                lambda: rbac.read_cluster_role_binding(BINDING),
                rbac.create_cluster_role_binding,
                lambda b: rbac.replace_cluster_role_binding(BINDING, b),
                binding,
                ("roleRef", "subjects"),
                dry,
            )
        )
        return changes
    for ns in namespaces:
        role = {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "Role",
            "metadata": {"name": ROLE, "namespace": ns},
            "rules": NAMESPACE_RULES,
        }
        binding = {
            "apiVersion": f"{_RBAC}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": BINDING, "namespace": ns},
            "roleRef": role_ref,
            "subjects": _subject(),
        }
        changes.append(
            _ensure(
                api,
                f"Role {ns}/{ROLE}",
                partial(rbac.read_namespaced_role, ROLE, ns),
                partial(rbac.create_namespaced_role, ns),
                partial(rbac.replace_namespaced_role, ROLE, ns),
                role,
                ("rules",),
                dry,
            )
        )
        changes.append(
            _ensure(
                api,
                f"RoleBinding {ns}/{BINDING}",
                partial(rbac.read_namespaced_role_binding, BINDING, ns),
                partial(rbac.create_namespaced_role_binding, ns),
                partial(rbac.replace_namespaced_role_binding, BINDING, ns),
                binding,
                ("roleRef", "subjects"),
                dry,
            )
        )
    return changes


def ensure_token_secret(api: client.ApiClient, dry: bool) -> Change:
    """The token Secret that kube-controller-manager fills with the ServiceAccount's token."""
    core = client.CoreV1Api(api)
    what = f"Secret {SYSTEM_NAMESPACE}/{TOKEN_SECRET}"
    if _get(lambda: core.read_namespaced_secret(TOKEN_SECRET, SYSTEM_NAMESPACE)) is not None:
        return Change("unchanged", what)
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
    return Change("create", what)


def revoke(api: client.ApiClient, dry: bool) -> list[Change]:
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
        changes.append(Change("delete", f"{kind} {SYSTEM_NAMESPACE}/{name} (revokes the token)"))
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
