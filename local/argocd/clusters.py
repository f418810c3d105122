"""Register the site's workload clusters in Argo CD with a ServiceAccount token, never the
admin client certificate (argo-cd #13175).

For each declared cluster (``tirosh.clusters``): refuse a context missing from the kubeconfig,
the management cluster itself and a loopback server URL; through the workload context ensure
``argocd-manager`` and its role binding and token Secret (``local.kube.argocd_manager``); then
``POST /api/v1/clusters?upsert=true`` with the bearer token and CA only when what Argo CD holds
differs, read the cluster back and report its connection state. What Argo CD holds is compared
through the management context (its cluster Secret): the API never returns the token or CA.

``make argocd/cluster/add`` / ``argocd/cluster/rotate`` (``local.commands``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client

from local.argocd.api import Client
from local.kube import argocd_manager
from local.kube import client as kubeclient
from tirosh import regular_file
from tirosh.clusters import WorkloadCluster, cluster_differs, resolve_server
from tirosh.plan import Change, Connection, Plan, connection_state
from tirosh.site import Site

__all__ = ["CLUSTER_SECRET_LABEL", "cluster_body", "register_clusters"]

CLUSTER_SECRET_LABEL = "argocd.argoproj.io/secret-type=cluster"


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


def cluster_body(
    cluster: WorkloadCluster,
    server: str,
    token: str,
    ca: str | None,
    insecure: bool,
    server_name: str | None,
) -> dict[str, Any]:
    """The Cluster for ``POST /api/v1/clusters``: bearer token and CA, no client cert or key."""
    tls: dict[str, Any] = {"insecure": insecure}
    if ca:
        tls["caData"] = ca
    if server_name:
        tls["serverName"] = server_name
    return {
        "server": server,
        "name": cluster.name,
        "config": {"bearerToken": token, "tlsClientConfig": tls},
        "namespaces": list(cluster.namespaces),
    }


def _stored(core: client.CoreV1Api, namespace: str, server: str) -> dict[str, Any] | None:
    """Argo CD's cluster Secret for ``server``, decoded; None when there is none."""
    secrets = core.list_namespaced_secret(namespace, label_selector=CLUSTER_SECRET_LABEL)
    for secret in secrets.items:
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        if data.get("server", "").rstrip("/") == server:
            return data
    return None


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


def _register_one(
    site: Site,
    document: Mapping[str, Any],
    management: client.CoreV1Api,
    argocd: Client | None,
    cluster: WorkloadCluster,
    rotate: bool,
    dry: bool,
) -> Plan:
    subject = f"cluster {cluster.name}"
    server = resolve_server(document, site.kubeconfig, cluster, site.argocd_context)
    changes, token = _manager_token(site, cluster, subject, rotate, dry)
    plan = Plan(changes)
    stored = _stored(management, site.argocd.namespace, server)
    what = f"Argo CD cluster {cluster.name} ({server})"
    if token is None:
        plan.changes.append(Change(subject, "create" if stored is None else "update", what))
        return plan
    ca, insecure, server_name = _ca_data(document, cluster.context, site.kubeconfig)
    body = cluster_body(cluster, server, token, ca, insecure, server_name)
    if not cluster_differs(stored, body):
        plan.changes.append(Change(subject, "unchanged", what))
    else:
        plan.changes.append(Change(subject, "create" if stored is None else "update", what))
        if not dry:
            assert argocd is not None
            argocd.upsert_cluster(body)
    if not dry and argocd is not None:
        found = argocd.get_cluster(server)
        if found is None:
            status, message = "Failed", "Argo CD does not list the cluster after registering it"
        else:
            status, message = connection_state(found)
        plan.connections.append(Connection(subject, status, message))
    return plan


def register_clusters(
    site: Site, argocd: Client | None, rotate: bool = False, dry: bool = False
) -> Plan:
    """Register every declared cluster (``site.clusters``); ``argocd`` None only when ``dry``."""
    plan = Plan()
    if not site.clusters:
        return plan
    document = kubeclient.read_kubeconfig(site.kubeconfig) or {}  # absent: no context in it
    management_api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        management = client.CoreV1Api(management_api)
        # One at a time: two declared clusters may be one API (two addresses), and their
        # argocd-manager objects would race (409 Conflict).
        for cluster in site.clusters:
            plan.extend(_register_one(site, document, management, argocd, cluster, rotate, dry))
    finally:
        management_api.close()
    return plan
