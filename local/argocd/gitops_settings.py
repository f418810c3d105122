"""The site's ``[gitops]`` settings in Argo CD: how fast a commit reaches it.

``reconciliation_timeout`` is argocd-cm's ``timeout.reconciliation`` (how often Argo CD polls
Git; 180 s by default); the application controller and repo-server read it at start, so a
change restarts their Pods once. ``webhook_secret_env`` names the variable holding the secret
the Git host signs its push events with: argocd-secret's ``webhook.github.secret``, which
argocd-server reloads by itself. Each key is written by server-side apply under a field
manager of its own, so the keys Argo CD keeps in the same objects (``server.secretkey``, the
admin password, other teams' settings) are neither read back nor touched; and only when the
stored value differs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, Final

from kubernetes import client

from local.kube import client as kubeclient
from tirosh.errors import OperatorError
from tirosh.plan import Change, Plan
from tirosh.site import Site

__all__ = ["FIELD_MANAGER", "MissingWebhookSecret", "converge", "webhook_secret"]

FIELD_MANAGER: Final = "tirosh-gitops-settings"
TIMEOUT_KEY: Final = "timeout.reconciliation"
WEBHOOK_KEY: Final = "webhook.github.secret"
# The Pods that read timeout.reconciliation from their environment at start.
READERS: Final = ("argocd-application-controller", "argocd-repo-server")
SUBJECT: Final = "gitops"


class MissingWebhookSecret(OperatorError):
    """The variable that holds the webhook secret is not set."""


def webhook_secret(site: Site, environ: Mapping[str, str]) -> str | None:
    """The webhook secret from its variable; None when the site declares none."""
    variable = site.gitops.webhook_secret_env
    if variable is None:
        return None
    value = environ.get(variable)
    if not value:
        raise MissingWebhookSecret(
            f"the webhook secret is not set: export {variable} (argocd/applications.toml "
            "gitops.webhook_secret_env); nothing was changed"
        )
    return value


def _apply(
    core: client.CoreV1Api, kind: str, name: str, namespace: str, data: dict[str, str]
) -> None:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }
    patch = core.patch_namespaced_secret if kind == "Secret" else core.patch_namespaced_config_map
    patch(
        name,
        namespace,
        body,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
    )


def _restart_readers(core: client.CoreV1Api, namespace: str) -> None:
    """Delete the Pods that read the timeout at start; their controllers recreate them."""
    for name in READERS:
        selector = f"app.kubernetes.io/name={name}"
        for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
            core.delete_namespaced_pod(pod.metadata.name, namespace)


def converge(site: Site, secret: str | None, dry: bool = False) -> Plan:
    """Write what differs; ``secret`` from ``webhook_secret`` (gathered before any change)."""
    plan = Plan()
    gitops, namespace = site.gitops, site.argocd.namespace
    if gitops.reconciliation_timeout is None and secret is None:
        return plan
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        if (timeout := gitops.reconciliation_timeout) is not None:
            stored = core.read_namespaced_config_map("argocd-cm", namespace).data or {}
            changed = stored.get(TIMEOUT_KEY) != timeout
            what = f"ConfigMap {namespace}/argocd-cm key {TIMEOUT_KEY} ({timeout})"
            plan.changes.append(Change(SUBJECT, "update" if changed else "unchanged", what))
            if changed and not dry:
                _apply(core, "ConfigMap", "argocd-cm", namespace, {TIMEOUT_KEY: timeout})
                _restart_readers(core, namespace)
        if secret is not None:
            data = core.read_namespaced_secret("argocd-secret", namespace).data or {}
            encoded = base64.b64encode(secret.encode()).decode()
            changed = data.get(WEBHOOK_KEY) != encoded
            what = f"Secret {namespace}/argocd-secret key {WEBHOOK_KEY}"
            plan.changes.append(Change(SUBJECT, "update" if changed else "unchanged", what))
            if changed and not dry:
                _apply(core, "Secret", "argocd-secret", namespace, {WEBHOOK_KEY: encoded})
    finally:
        api.close()
    return plan
