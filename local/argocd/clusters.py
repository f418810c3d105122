"""The site's workload clusters, as Argo CD's cluster Secrets to apply: with a ServiceAccount
token, never the admin client certificate (argo-cd #13175).

For each declared cluster (``tirosh.clusters``): refuse a context missing from the kubeconfig,
the management cluster itself and a loopback server URL; through the workload context ensure
``argocd-manager`` and its role binding and token Secret (``local.kube.argocd_manager``); then
declare the cluster Secret (``tirosh.argocd_secrets.cluster_secret``: bearer token and CA).
``local.argocd.registration`` applies it when it differs and has Argo CD test the connection.

``make argocd/cluster/add`` / ``argocd/cluster/rotate`` (``local.commands``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.argocd.api import ArgoCDError, Client
from local.kube import argocd_manager
from local.kube import client as kubeclient
from tirosh import regular_file
from tirosh.argocd_secrets import DeclaredSecret, cluster_secret
from tirosh.clusters import WorkloadCluster, resolve_server
from tirosh.plan import Change, Connection, connection_state
from tirosh.site import Site

__all__ = ["check_connection", "declare"]


def _ca_data(
    document: Mapping[str, Any], context: str, kubeconfig: Path
) -> tuple[str | None, bool, str | None]:
    """(base64 CA, insecure, tls-server-name) of the context's cluster entry."""
    ctx = next(c["context"] for c in document["contexts"] if c.get("name") == context)
    cluster = next(
        c["cluster"] for c in document["clusters"] if c.get("name") == ctx.get("cluster")
    )
    ca = cluster.get("certificate-authority-data")
    if not ca and cluster.get("certificate-authority"):
        ca = base64.b64encode(
            regular_file.read_bytes(kubeconfig.parent / cluster["certificate-authority"])
        ).decode()
    return ca, bool(cluster.get("insecure-skip-tls-verify", False)), cluster.get("tls-server-name")


def _manager_token(
    site: Site, cluster: WorkloadCluster, subject: str, rotate: bool, dry: bool
) -> tuple[list[Change], str | None]:
    """argocd-manager on the workload cluster, and its token (None in a dry run before it
    exists)."""
    workload = kubeclient.api_client(site.kubeconfig, cluster.context)
    try:
        changes = argocd_manager.revoke(workload, subject, dry) if rotate else []
        changes += argocd_manager.ensure_rbac(workload, cluster.namespaces, subject, dry)
        token_change = argocd_manager.ensure_token_secret(workload, subject, dry)
        changes.append(token_change)
        if dry and token_change.action == "create":
            return changes, None
        return changes, argocd_manager.wait_for_token(workload)
    finally:
        workload.close()


def declare(
    site: Site, rotate: bool = False, dry: bool = False
) -> list[tuple[list[Change], DeclaredSecret]]:
    """Per declared cluster: the changes to ``argocd-manager`` on the workload cluster (made
    unless ``dry``) and the cluster Secret Argo CD must hold. In a dry run before the token
    exists, the Secret's ``config`` is left empty: it is bound to differ."""
    if not site.clusters:
        return []
    document = kubeclient.read_kubeconfig(site.kubeconfig) or {}  # absent: no context in it
    declared = []
    # One at a time: two declared clusters may be one API (two addresses), and their
    # argocd-manager objects would race (409 Conflict).
    for cluster in site.clusters:
        server = resolve_server(document, site.kubeconfig, cluster, site.argocd_context)
        changes, token = _manager_token(site, cluster, f"cluster {cluster.name}", rotate, dry)
        ca, insecure, server_name = _ca_data(document, cluster.context, site.kubeconfig)
        secret = cluster_secret(cluster, server, token or "", ca, insecure, server_name)
        if token is None:
            secret = DeclaredSecret(
                secret.kind, secret.key, secret.subject, secret.what,
                {**secret.data, "config": ""}, secret.json_keys, secret.clearable,
            )  # fmt: skip
        declared.append((changes, secret))
    return declared


def check_connection(argocd: Client, secret: DeclaredSecret, settle: float) -> Connection:
    """Argo CD's own connection test of a cluster whose Secret was just applied.

    Argo CD tests a cluster only when its API registers or updates one; a Secret applied
    declaratively is tested later by the application controller. An update of the ``name``
    field alone (to the same name) makes the API server test the stored credentials now, and
    fail with its message when they do not work. It waits, up to ``settle`` seconds, for the
    API server to see the new Secret.
    """
    try:
        found = argocd.test_cluster(secret.key, secret.data["name"], settle)
    except ArgoCDError as exc:
        return Connection(secret.subject, "Failed", exc.api_message or str(exc))
    if found is None:
        return Connection(secret.subject, "Failed", "Argo CD does not list the cluster")
    status, message = connection_state(found)
    return Connection(secret.subject, status, message)
