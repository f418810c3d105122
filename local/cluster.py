"""Register the site's workload clusters in Argo CD with a ServiceAccount token, never the
admin client certificate (argo-cd #13175).

For each declared cluster (``tirosh.clusters``): refuse a context missing from the kubeconfig,
the management cluster itself and a loopback server URL; through the workload context ensure
``argocd-manager`` and its role binding and token Secret (``local.cluster_rbac``); then
``POST /api/v1/clusters?upsert=true`` with the bearer token and CA only when what Argo CD holds
differs, read the cluster back and report its connection state. What Argo CD holds is compared
through the management context (its cluster Secret): the API never returns the token or CA.

``python -m local.cluster add|rotate SITE [--dry]`` (``make argocd/cluster/add``, ``/rotate``).
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from local import cli, cluster_rbac, kubeclient
from local.argocd_api import ArgoCDError, Client
from local.cluster_rbac import Change
from tirosh import regular_file
from tirosh.clusters import ContextProblem, WorkloadCluster, load_clusters, resolve_server
from tirosh.site import Site

__all__ = ["ClusterResult", "cluster_body", "connection_state", "main", "register_clusters"]

CLUSTER_SECRET_LABEL = "argocd.argoproj.io/secret-type=cluster"


@dataclass
class ClusterResult:
    name: str
    server: str = ""
    changes: list[Change] = field(default_factory=list)
    state: str = ""  # Successful | Failed | Unknown | "" (dry run)
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.state == "Failed"


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


def _differs(stored: Mapping[str, str] | None, body: Mapping[str, Any]) -> bool:
    if stored is None:
        return True
    try:
        config = json.loads(stored.get("config") or "{}")
    except ValueError:
        return True
    namespaces = [n for n in (stored.get("namespaces") or "").split(",") if n]
    return (
        stored.get("name") != body["name"]
        or sorted(namespaces) != sorted(body["namespaces"])
        or _auth(config) != _auth(body["config"])
    )


def _auth(config: Mapping[str, Any]) -> tuple[Any, ...]:
    # Only what this module sets; a client certificate or key left over from `argocd cluster
    # add` with a k3s kubeconfig makes it differ, so the upsert replaces it.
    tls = config.get("tlsClientConfig") or {}
    return (
        config.get("bearerToken"),
        bool(tls.get("insecure")),
        tls.get("caData"),
        tls.get("serverName"),
        tls.get("certData"),
        tls.get("keyData"),
        config.get("username"),
        config.get("execProviderConfig"),
    )


def connection_state(argocd: Client, server: str) -> tuple[str, str]:
    found = argocd.get_cluster(server)
    if found is None:
        return "Failed", "Argo CD does not list the cluster after registering it"
    state = (found.get("info") or {}).get("connectionState") or found.get("connectionState") or {}
    return str(state.get("status") or "Unknown"), str(state.get("message") or "")


def _register_one(
    site: Site,
    document: Mapping[str, Any],
    management: client.CoreV1Api,
    argocd: Client | None,
    cluster: WorkloadCluster,
    rotate: bool,
    dry: bool,
) -> ClusterResult:
    result = ClusterResult(cluster.name)
    result.server = resolve_server(document, site.kubeconfig, cluster, site.argocd_context)
    workload = kubeclient.api_client(site.kubeconfig, cluster.context)
    try:
        if rotate:
            result.changes += cluster_rbac.revoke(workload, dry)
        result.changes += cluster_rbac.ensure_rbac(workload, cluster.namespaces, dry)
        token_change = cluster_rbac.ensure_token_secret(workload, dry)
        result.changes.append(token_change)
        token = (
            None
            if dry and token_change.action == "create"
            else cluster_rbac.wait_for_token(workload)
        )
    finally:
        workload.close()
    stored = _stored(management, site.argocd.namespace, result.server)
    what = f"Argo CD cluster {cluster.name} ({result.server})"
    if token is None:
        result.changes.append(Change("create" if stored is None else "update", what))
        return result
    ca, insecure, server_name = _ca_data(document, cluster.context, site.kubeconfig)
    body = cluster_body(cluster, result.server, token, ca, insecure, server_name)
    if not _differs(stored, body):
        result.changes.append(Change("unchanged", what))
    else:
        result.changes.append(Change("create" if stored is None else "update", what))
        if not dry:
            assert argocd is not None
            argocd.upsert_cluster(body)
    if not dry and argocd is not None:
        result.state, result.message = connection_state(argocd, result.server)
    return result


def register_clusters(
    site: Site,
    argocd: Client | None,
    environ: Mapping[str, str],
    rotate: bool = False,
    dry: bool = False,
) -> list[ClusterResult]:
    """Register every declared cluster; ``argocd`` may be None only when ``dry``."""
    clusters = load_clusters(
        site.root, site.argocd.cluster_context, site.argocd.cluster_name, environ
    )
    if not clusters:
        return []
    document = kubeclient.read_kubeconfig(site.kubeconfig) or {}  # absent: no context in it
    management_api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        management = client.CoreV1Api(management_api)

        # One at a time: two declared clusters may be one API (two addresses), and their
        # argocd-manager objects would race (409 Conflict).
        return [_register_one(site, document, management, argocd, c, rotate, dry) for c in clusters]
    finally:
        management_api.close()


def report(results: list[ClusterResult]) -> int:
    code = 0
    for result in results:
        for change in result.changes:
            print(f"cluster {result.name}: {change}")
        if result.state:
            line = f"cluster {result.name}: connection {result.state}"
            print(line + (f": {result.message}" if result.message else ""))
        if result.failed:
            code = 1
    return code


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.cluster", description=__doc__)
    parser.add_argument("command", choices=("add", "rotate"))
    parser.add_argument("site")
    parser.add_argument("--dry", action="store_true", help="only say what would change")
    args = parser.parse_args(argv)
    env, site = cli.site_and_environ(args.site, environ)
    if site is None:
        return 2
    from local import initial_secret
    from local.session import open_session

    rotate = args.command == "rotate"

    def command() -> int:
        if args.dry:
            return report(register_clusters(site, None, env, rotate, dry=True))
        with open_session(site, env, lambda: initial_secret.read(site, env)) as (argocd, _):
            results = register_clusters(site, argocd, env, rotate=rotate)
        if not results:
            print(f"site {site.name}: no workload cluster declared")
        return report(results)

    errors = (ContextProblem, ArgoCDError, kubeclient.KubeconfigError, cluster_rbac.TokenTimeout)
    return cli.reported(command, errors)


if __name__ == "__main__":
    raise SystemExit(main())
