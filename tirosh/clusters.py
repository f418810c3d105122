"""Workload clusters a site registers in Argo CD, and the checks that need the kubeconfig.

The site model reads them (``tirosh.site.clusters_file``: the profile's one cluster, or
``argocd/clusters.toml``). Pure: the checks take the kubeconfig's parsed document.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from tirosh.errors import OperatorError

__all__ = [
    "CLUSTERS_FILE",
    "ContextProblem",
    "WorkloadCluster",
    "context_server",
    "is_loopback_url",
    "loopback_hint",
    "resolve_server",
    "server_problem",
]

CLUSTERS_FILE: Final = "argocd/clusters.toml"
# Argo CD cluster names end up in UI paths and ApplicationSet templates: '/' breaks both.
CLUSTER_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class WorkloadCluster:
    context: str
    name: str
    server: str | None = None  # None: the context's own server
    namespaces: tuple[str, ...] = ()


class ContextProblem(OperatorError):
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


def server_problem(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - evaluated for its ValueError on a bad port
    except ValueError:
        return f"has an invalid port: {url!r}"
    if parts.scheme != "https" or not parts.hostname:
        return f"must be an https:// URL, got {url!r}"
    return None


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
