"""The reader of ``argocd/clusters.toml``: the workload clusters a site registers in Argo CD.

The profile's ``argocd.cluster_context`` / ``argocd.cluster_name`` declare one cluster
(``CLUSTER_KUBECTX`` overrides its context, as in the runbook). ``argocd/clusters.toml``
declares any number, and replaces the profile's one when it has a ``clusters`` key::

    [[clusters]]
    context = "tirosh-home/rke2/gpu"     # kube context on the operator's machine
    name = "tirosh-home-rke2-gpu"        # the Argo CD cluster name
    server = "https://10.0.0.2:6443"     # optional: the API as Argo CD reaches it
    namespaces = ["apps"]                # optional: Roles in these only, no ClusterRole

``clusters = []`` declares none (the local phase then registers no cluster).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from tirosh.clusters import (
    CLUSTER_NAME,
    WorkloadCluster,
    is_loopback_url,
    loopback_hint,
    server_problem,
)
from tirosh.site.reader import Report, Table, read_toml
from tirosh.site.values import k8s_name_problem

__all__ = ["read_clusters"]

_KEYS: Final = ("context", "name", "server", "namespaces")


def read_clusters(
    report: Report,
    path: Path,
    profile_context: str | None,
    profile_name: str | None,
    management_context: str | None = None,
) -> tuple[WorkloadCluster, ...]:
    """The site's workload clusters; problems (and CLUSTER_KUBECTX misuse) recorded.

    A cluster whose context is ``management_context`` is refused (the runbook's warning: the
    management cluster would be registered as a workload cluster of itself).
    """
    top = read_toml(report, path, optional=True)
    listed = _listed(top) if top is not None else None
    # CLUSTER_KUBECTX equal to the management context is refused with the profile's contexts
    # (checks.py); here the clusters the file lists.
    override = report.environ.get("CLUSTER_KUBECTX")
    if listed is None:
        if profile_context is None or profile_name is None:
            return ()
        return (WorkloadCluster(override or profile_context, profile_name),)
    if not override:
        for index, cluster in enumerate(listed):
            if management_context and cluster.context == management_context:
                report.add(
                    report.rel(path),
                    f"clusters[{index}].context",
                    _management_problem(cluster.context),
                )
        return tuple(listed)
    if len(listed) != 1:
        report.add(
            "environment",
            "CLUSTER_KUBECTX",
            f"overrides the context of one cluster, but {report.rel(path)} declares {len(listed)}",
        )
        return tuple(listed)
    first = listed[0]
    return (WorkloadCluster(override, first.name, first.server, first.namespaces),)


def _management_problem(context: str) -> str:
    return (
        f"{context!r} is the management cluster's context (kube.contexts.argocd), which Argo CD "
        "already manages as in-cluster: name the workload cluster's context"
    )


def _listed(top: Table) -> list[WorkloadCluster] | None:
    """The clusters of the file; None when it has no ``clusters`` key (the profile's one)."""
    top.allow_tables(("clusters",))
    if "clusters" not in top.data:
        return None
    clusters = [c for c in (_cluster(entry) for entry in top.entries("clusters")) if c]
    for attr in ("name", "context"):
        seen: set[str] = set()
        for index, cluster in enumerate(clusters):
            value = getattr(cluster, attr)
            if value in seen:
                top.problem(f"clusters[{index}].{attr}", f"{value!r} is declared twice")
            seen.add(value)
    return clusters


def _cluster(entry: Table) -> WorkloadCluster | None:
    entry.allow(_KEYS)
    context, name = entry.string("context", required=True), entry.string("name", required=True)
    if name is not None and not CLUSTER_NAME.fullmatch(name):
        entry.problem("name", f"letters, digits, '.', '_', '-' only (no '/'), got {name!r}")
        name = None
    server = entry.string("server")
    if server is not None and (reason := server_problem(server)):
        entry.problem("server", reason)
    elif server is not None and is_loopback_url(server):
        entry.problem("server", loopback_hint(name or "?", server))
    namespaces = entry.string_list("namespaces") or []
    for namespace in namespaces:
        if k8s_name_problem(namespace):
            entry.problem("namespaces", f"{namespace!r} is not a Kubernetes namespace name")
    if not (context and name):
        return None
    return WorkloadCluster(context, name, server, tuple(namespaces))
