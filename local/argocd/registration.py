"""Register the site's clusters, credential templates and repositories in Argo CD, as Argo CD's
own declarative Secrets, in one read and (when something differs) one apply per Secret.

1. Declare: every cluster's Secret (after ``argocd-manager`` on its workload cluster,
   ``local.argocd.clusters``), every template's and repository's (``local.argocd.repositories``).
2. Read what Argo CD stores: its repository, repo-creds and cluster Secrets in one request
   (``local.kube.argocd_secrets``), and the SSH known hosts when a repository needs them.
3. Plan: per Secret create / update (naming the keys that differ) / unchanged
   (``tirosh.argocd_secrets.planned``); a Secret made earlier through Argo CD's API is the same
   Secret, adopted. A dry run stops here.
4. Only when something differs: log in to Argo CD (first waiting, bounded, for its API when the
   deploy has just installed it), add missing host keys, server-side apply the Secrets that
   differ, then have Argo CD test each new or changed cluster and repository, a few at once. A
   failed test prints Argo CD's message, puts that Secret back as it was (a repository with a
   wrong token is not left registered, as the API's own upsert would refuse it), and makes the
   run exit non-zero.

When nothing differs, Argo CD is not asked anything: no login, no connection test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kubernetes import client

from local.argocd import clusters, repositories
from local.argocd.api import PARALLEL_REQUESTS, Client
from local.argocd.known_hosts import ensure_known_hosts, stored_known_hosts
from local.kube import argocd_secrets
from local.kube import client as kubeclient
from tirosh.argocd_secrets import DeclaredSecret, Planned, planned, touched
from tirosh.plan import Change, Connection, Plan
from tirosh.repositories import KnownHost
from tirosh.site import Site

__all__ = ["Registration", "converge", "declare"]

# How long the API server may take to see a Secret just applied (its informer's delay): a new
# one is asked for until it is known, up to INFORMER_SETTLE; an updated one cannot be told
# apart from its old self through the API (credentials are never returned), so the tests wait
# INFORMER_LAG first, lest they test the old credentials.
INFORMER_SETTLE = 15.0
INFORMER_LAG = 1.0


@dataclass
class Registration:
    """What the site declares, against what Argo CD stores."""

    workload: dict[str, list[Change]]  # cluster subject -> argocd-manager changes
    items: list[Planned]
    host_keys: list[Change] = field(default_factory=list)
    wanted_keys: list[KnownHost] = field(default_factory=list)
    stored_keys: list[KnownHost] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return any(item.keys for item in self.items) or any(c.changes for c in self.host_keys)

    def plan(self) -> Plan:
        """The operator's lines: each cluster's argocd-manager objects then its Secret, the
        known hosts, the templates, the repositories."""
        result = Plan()
        keys = list(self.host_keys)
        for item in self.items:
            if item.declared.kind != "cluster" and keys:
                result.changes += keys
                keys = []
            result.changes += self.workload.get(item.declared.subject, [])
            result.changes.append(Change(item.declared.subject, item.action, item.label))
        result.changes += keys
        return result


def declare(
    site: Site,
    environ: Mapping[str, str],
    secrets: Mapping[str, str | None],
    rotate: bool = False,
    dry: bool = False,
    only: str | None = None,
) -> Registration:
    """Declare (and, unless ``dry``, make the workload side of) every cluster, template and
    repository of the site, and plan each against what Argo CD stores.

    + secrets: the repositories' credential values (``repositories.gather_secrets``)
    + only: ``clusters`` or ``repositories`` for the commands that register one of the two
    """
    workload: dict[str, list[Change]] = {}
    declared: list[DeclaredSecret] = []
    if only in (None, "clusters"):
        for changes, secret in clusters.declare(site, rotate, dry):
            workload[secret.subject] = changes
            declared.append(secret)
    wanted: list[KnownHost] = []
    if only in (None, "repositories"):
        declared += repositories.declare(site, secrets)
        wanted = repositories.wanted_host_keys(site, environ)
    if not declared:
        return Registration(workload, [])
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        stored = argocd_secrets.read_stored(core, site.argocd.namespace)
        stored_keys = stored_known_hosts(core, site.argocd.namespace) if wanted else []
    finally:
        api.close()
    host_keys = ensure_known_hosts(None, wanted, stored_keys, dry=True)
    return Registration(workload, planned(declared, stored), host_keys, wanted, stored_keys)


def converge(site: Site, registration: Registration, session: Callable[[], Client]) -> Plan:
    """Apply what differs (see the module docstring); ``session`` gives the logged-in client
    (``local.argocd.session.OnDemand``), asked for only when something differs."""
    result = registration.plan()
    if not registration.pending:
        return result
    argocd = session()
    if _keys_added(registration):
        ensure_known_hosts(argocd, registration.wanted_keys, registration.stored_keys, dry=False)
    changed = [item for item in registration.items if item.keys]
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        core = client.CoreV1Api(api)
        argocd_secrets.apply(core, changed, site.argocd.namespace)
        if any(item.stored is not None for item in changed):
            time.sleep(INFORMER_LAG)
        key_settle = repositories.KNOWN_HOSTS_SETTLE if _keys_added(registration) else 0.0
        for item, connection in _tested(argocd, registration.items, key_settle):
            if connection.failed:
                undone = argocd_secrets.put_back(core, item, site.argocd.namespace)
                connection = Connection(
                    connection.subject, "Failed", f"{connection.message} ({undone})"
                )
            result.connections.append(connection)
    finally:
        api.close()
    return result


def _keys_added(registration: Registration) -> bool:
    return any(change.changes for change in registration.host_keys)


def _tested(
    argocd: Client, items: Sequence[Planned], key_settle: float
) -> Iterator[tuple[Planned, Connection]]:
    """Argo CD's connection test of each touched cluster (one request each, a few at a time)
    and of the touched repositories (one request for all), in the declared order."""
    todo = touched(items)
    clusters_todo = [i for i in todo if i.declared.kind == "cluster"]
    repositories_todo = [i for i in todo if i.declared.kind != "cluster"]
    with ThreadPoolExecutor(max_workers=PARALLEL_REQUESTS) as pool:
        repository_states = pool.submit(
            repositories.check_connections,
            argocd, [i.declared for i in repositories_todo], INFORMER_SETTLE, key_settle,
        )  # fmt: skip
        cluster_states = pool.map(
            lambda item: clusters.check_connection(argocd, item.declared, INFORMER_SETTLE),
            clusters_todo,
        )
        found = dict(zip(map(id, clusters_todo), cluster_states, strict=True))
        found.update(zip(map(id, repositories_todo), repository_states.result(), strict=True))
    for item in todo:
        yield item, found[id(item)]
