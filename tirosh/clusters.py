"""Workload clusters a site registers in Argo CD: the profile's one, or a list.

Today's profile keys ``argocd.cluster_context`` / ``argocd.cluster_name`` declare one cluster
(``CLUSTER_KUBECTX`` overrides its context, as in the runbook). ``sites/<site>/argocd/clusters.toml``
declares any number, and replaces the profile's one when it has a ``clusters`` key::

    [[clusters]]
    context = "tirosh-home/rke2/gpu"     # kube context on the operator's machine
    name = "tirosh-home-rke2-gpu"        # the Argo CD cluster name
    server = "https://10.0.0.2:6443"     # optional: the API as Argo CD reaches it
    namespaces = ["apps"]                # optional: Roles in these only, no ClusterRole

``clusters = []`` declares none (the local phase then registers no cluster). Pure: the checks
that need the kubeconfig take its parsed document.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from tirosh.site import Problem, SiteError
from tirosh.sitefile import load_toml, read_entries

__all__ = [
    "CLUSTERS_FILE",
    "ContextProblem",
    "WorkloadCluster",
    "context_server",
    "is_loopback_url",
    "load_clusters",
    "loopback_hint",
    "parse_clusters",
    "resolve_server",
]

CLUSTERS_FILE: Final = "argocd/clusters.toml"
_KEYS: Final = ("context", "name", "server", "namespaces")
# Argo CD cluster names end up in UI paths and ApplicationSet templates: '/' breaks both.
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_NAMESPACE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class WorkloadCluster:
    context: str
    name: str
    server: str | None = None  # None: the context's own server
    namespaces: tuple[str, ...] = ()


class ContextProblem(Exception):
    """A declared cluster cannot be registered from this kubeconfig; the message says why."""


def is_loopback_url(url: str) -> bool:
    """True for the addresses a k3s/rke2 kubeconfig uses by default (127.0.0.1, ::1, localhost).

    Argo CD runs on the management VM, where those name the VM itself. Another loopback address
    written on purpose (an Argo CD on this very machine) is not refused.
    """
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))


def loopback_hint(name: str, url: str) -> str:
    return (
        f"cluster {name}: server {url} is this machine's loopback, which Argo CD (on the "
        "management VM) cannot reach: declare the API address Argo CD reaches, in the API "
        f"certificate's SANs, as server = ... in {CLUSTERS_FILE} (or [rke2] api_server)"
    )


def _server_problem(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError:
        return f"has an invalid port: {url!r}"
    if parts.scheme != "https" or not parts.hostname:
        return f"must be an https:// URL, got {url!r}"
    return None


def parse_clusters(
    data: Mapping[str, Any], file: str, problems: list[Problem]
) -> list[WorkloadCluster] | None:
    """The clusters of a parsed clusters.toml; None when it has no ``clusters`` key."""
    if "clusters" not in data:
        for key in data:
            problems.append(Problem(file, str(key), "unknown table (known: clusters)"))
        return None
    clusters: list[WorkloadCluster] = []
    for entry in read_entries(data, "clusters", file, ("clusters",), problems):
        entry.allow(_KEYS)
        context, name = entry.string("context", required=True), entry.string("name", required=True)
        if name is not None and not _NAME.fullmatch(name):
            entry.problem("name", f"letters, digits, '.', '_', '-' only (no '/'), got {name!r}")
            name = None
        server = entry.string("server")
        if server is not None and (reason := _server_problem(server)):
            entry.problem("server", reason)
        elif server is not None and is_loopback_url(server):
            entry.problem("server", loopback_hint(name or "?", server))
        namespaces = entry.string_list("namespaces") or []
        for namespace in namespaces:
            if not _NAMESPACE.fullmatch(namespace):
                entry.problem("namespaces", f"{namespace!r} is not a Kubernetes namespace name")
        if context and name:
            clusters.append(WorkloadCluster(context, name, server, tuple(namespaces)))
    for key, attr in (("name", "name"), ("context", "context")):
        seen: set[str] = set()
        for index, cluster in enumerate(clusters):
            value = getattr(cluster, attr)
            if value in seen:
                problems.append(
                    Problem(file, f"clusters[{index}].{key}", f"{value!r} is declared twice")
                )
            seen.add(value)
    return clusters


def load_clusters(
    site_dir: Path,
    profile_context: str,
    profile_name: str,
    environ: Mapping[str, str],
    file: str | None = None,
) -> list[WorkloadCluster]:
    """The site's workload clusters; raise SiteError listing every problem of clusters.toml."""
    file = file or f"sites/{site_dir.name}/{CLUSTERS_FILE}"
    problems: list[Problem] = []
    data = load_toml(site_dir / CLUSTERS_FILE, file, problems)
    listed = parse_clusters(data, file, problems) if data is not None else None
    if problems:
        raise SiteError(problems)
    override = environ.get("CLUSTER_KUBECTX")
    if listed is None:
        return [WorkloadCluster(override or profile_context, profile_name)]
    if override:
        if len(listed) != 1:
            raise SiteError(
                [
                    Problem(
                        "environment",
                        "CLUSTER_KUBECTX",
                        f"overrides the context of one cluster, but {file} declares {len(listed)}",
                    )
                ]
            )
        listed = [WorkloadCluster(override, listed[0].name, listed[0].server, listed[0].namespaces)]
    return listed


# --------------------------------------------------------------------------- kubeconfig checks


def _named(document: Mapping[str, Any], kind: str, name: str) -> Mapping[str, Any] | None:
    for entry in document.get(kind) or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            value = entry.get(kind[:-1])
            return value if isinstance(value, Mapping) else {}
    return None


def context_server(document: Mapping[str, Any], context: str) -> str | None:
    """The API server URL of ``context`` in a parsed kubeconfig, None when it is not there."""
    ctx = _named(document, "contexts", context)
    if ctx is None:
        return None
    cluster = _named(document, "clusters", str(ctx.get("cluster", "")))
    server = cluster.get("server") if cluster else None
    return str(server).rstrip("/") if server else None


def _same_server(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.hostname or "").lower() == (pb.hostname or "").lower() and (pa.port or 443) == (
        pb.port or 443
    )


def resolve_server(
    document: Mapping[str, Any],
    kubeconfig: Path,
    cluster: WorkloadCluster,
    management_context: str,
) -> str:
    """The server URL Argo CD gets for ``cluster``; raise ContextProblem for the mistakes the
    runbook warns about: a missing context, the management cluster itself, a loopback URL."""
    own = context_server(document, cluster.context)
    if own is None:
        known = [
            str(c.get("name")) for c in document.get("contexts") or [] if isinstance(c, Mapping)
        ]
        raise ContextProblem(
            f"cluster {cluster.name}: context {cluster.context!r} is not in {kubeconfig} "
            f"(contexts there: {', '.join(known) or 'none'}); merge it first, e.g. "
            "make rke2/kubeconfig/merge, or set KUBECONFIG / CLUSTER_KUBECTX"
        )
    management = context_server(document, management_context)
    if cluster.context == management_context or (
        management is not None and _same_server(own, management)
    ):
        raise ContextProblem(
            f"cluster {cluster.name}: context {cluster.context!r} is the management cluster "
            f"({management or own}), which Argo CD already manages as in-cluster: register the "
            "workload cluster's context (argocd.cluster_context)"
        )
    server = (cluster.server or own).rstrip("/")
    if is_loopback_url(server):
        raise ContextProblem(loopback_hint(cluster.name, server))
    return server
