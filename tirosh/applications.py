"""Argo CD AppProjects and Applications a site declares, and what differs from what Argo CD stores.

(Over 300 lines: the declarations, their API bodies and their diffs act on one shape.)

The site model reads them from ``sites/<site>/argocd/applications.toml``
(``tirosh.site.applications_file``)::

    [gitops]
    reconciliation_timeout = "120s"            # argocd-cm timeout.reconciliation (Git polling)
    webhook_secret_env = "ARGOCD_WEBHOOK_GITHUB_SECRET"   # -> argocd-secret webhook.github.secret

    [[projects]]
    name = "platform"
    description = "what the site's root application deploys"
    source_repos = ["https://github.com/org/gitops.git"]  # registered repositories / templates
    source_patterns = ["https://github.com/org/*"]         # on purpose: taken as written
    destinations = [{ cluster = "in-cluster", namespace = "argocd" }]
    cluster_resources = ["Namespace", "rbac.authorization.k8s.io/ClusterRole"]

    [[projects.sync_windows]]                  # the stg/prd gate
    kind = "deny"
    schedule = "0 0 * * *"
    duration = "24h"
    applications = ["*"]
    manual_sync = true

    [[applications]]
    name = "root"
    project = "platform"
    repo_url = "https://github.com/org/gitops.git"
    path = "clusters/site"
    target_revision = "main"                   # a branch
    cluster = "in-cluster"                     # the Argo CD cluster name
    namespace = "argocd"
    sync = "automated"                         # or "manual"
    prune = true
    self_heal = true
    sync_options = ["CreateNamespace=true"]
    finalizer = "none"                         # or "foreground" / "background": cascade on delete

Pure: the API bodies are rendered here, and what differs from Argo CD's stored objects is
decided here, field by field, ignoring what Argo CD writes itself (status, operation, metadata
it fills, labels and annotations others add, defaults it leaves out).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "APPLICATIONS_FILE",
    "FINALIZERS",
    "IN_CLUSTER",
    "SITE_LABEL",
    "Application",
    "Destination",
    "GitOps",
    "Project",
    "SyncWindow",
    "application_body",
    "application_changes",
    "application_spec",
    "argocd_finalizers",
    "field_changes",
    "finalizers_after",
    "ownership",
    "project_allows_destination",
    "project_allows_source",
    "project_body",
    "project_changes",
    "project_spec",
]

APPLICATIONS_FILE: Final = "argocd/applications.toml"
# The name Argo CD gives the cluster it runs in (https://kubernetes.default.svc).
IN_CLUSTER: Final = "in-cluster"
IN_CLUSTER_SERVER: Final = "https://kubernetes.default.svc"
# Which site declared an object: a declared one removed from the site is told apart from one
# made by hand (both are reported, neither deleted).
SITE_LABEL: Final = "tirosh.ai/site"
FINALIZERS: Final = {
    "none": None,
    "foreground": "resources-finalizer.argocd.argoproj.io",
    "background": "resources-finalizer.argocd.argoproj.io/background",
}
# Argo CD's own finalizers on an Application: the ones the site's choice replaces.
_ARGOCD_FINALIZER: Final = "resources-finalizer.argocd.argoproj.io"
# How Argo CD marks what an application deployed (v3: annotation tracking by default).
TRACKING_ANNOTATION: Final = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"


@dataclass(frozen=True)
class GitOps:
    """The ``[gitops]`` table: how fast a commit reaches Argo CD."""

    reconciliation_timeout: str | None = None  # argocd-cm timeout.reconciliation ("180s")
    webhook_secret_env: str | None = None  # the variable holding webhook.github.secret


@dataclass(frozen=True)
class SyncWindow:
    kind: str  # allow | deny
    schedule: str  # cron
    duration: str  # Go duration: 1h, 30m
    applications: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    manual_sync: bool = False
    time_zone: str = ""


@dataclass(frozen=True)
class Destination:
    cluster: str  # an Argo CD cluster name (IN_CLUSTER or a registered one)
    namespace: str  # a name or a glob


@dataclass(frozen=True)
class Project:
    name: str
    description: str = ""
    source_repos: tuple[str, ...] = ()  # registered repositories / under templates
    source_patterns: tuple[str, ...] = ()  # globs, as written
    destinations: tuple[Destination, ...] = ()
    cluster_resources: tuple[tuple[str, str], ...] = ()  # (group, kind)
    sync_windows: tuple[SyncWindow, ...] = ()


@dataclass(frozen=True)
class Application:
    name: str
    project: str
    repo_url: str
    path: str
    target_revision: str
    cluster: str
    namespace: str
    automated: bool = False
    prune: bool = False
    self_heal: bool = False
    sync_options: tuple[str, ...] = ()
    finalizer: str = "none"


# --------------------------------------------------------------------------- the project's rules


def _same_repo(a: str, b: str) -> bool:
    def canonical(url: str) -> str:
        return url.lower().rstrip("/").removesuffix(".git").rstrip("/")

    return canonical(a) == canonical(b)


def project_allows_source(project: Project, repo_url: str) -> bool:
    """Whether Argo CD would let an application of ``project`` read ``repo_url``."""
    if any(_same_repo(repo_url, allowed) for allowed in project.source_repos):
        return True
    return any(fnmatch.fnmatchcase(repo_url, pattern) for pattern in project.source_patterns)


def project_allows_destination(project: Project, cluster: str, namespace: str) -> bool:
    """Whether ``project`` lists the destination (cluster by name, namespace or glob)."""
    return any(
        fnmatch.fnmatchcase(cluster, d.cluster) and fnmatch.fnmatchcase(namespace, d.namespace)
        for d in project.destinations
    )


# --------------------------------------------------------------------------- API bodies


def _metadata(name: str, namespace: str, site: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {SITE_LABEL: site}}


def _window(window: SyncWindow) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": window.kind,
        "schedule": window.schedule,
        "duration": window.duration,
    }
    for key, values in (
        ("applications", window.applications),
        ("namespaces", window.namespaces),
        ("clusters", window.clusters),
    ):
        if values:
            body[key] = list(values)
    if window.manual_sync:
        body["manualSync"] = True
    if window.time_zone:
        body["timeZone"] = window.time_zone
    return body


def project_spec(project: Project) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "sourceRepos": [*project.source_repos, *project.source_patterns],
        "destinations": [
            {"name": d.cluster, "namespace": d.namespace} for d in project.destinations
        ],
    }
    if project.description:
        spec["description"] = project.description
    if project.cluster_resources:
        spec["clusterResourceWhitelist"] = [
            {"group": group, "kind": kind} for group, kind in project.cluster_resources
        ]
    if project.sync_windows:
        spec["syncWindows"] = [_window(w) for w in project.sync_windows]
    return spec


def project_body(project: Project, site: str, namespace: str) -> dict[str, Any]:
    """The AppProject as the API takes it (``POST /api/v1/projects``'s ``project``)."""
    return {"metadata": _metadata(project.name, namespace, site), "spec": project_spec(project)}


def application_spec(app: Application) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    if app.automated:
        policy["automated"] = {"prune": app.prune, "selfHeal": app.self_heal}
    if app.sync_options:
        policy["syncOptions"] = list(app.sync_options)
    spec: dict[str, Any] = {
        "project": app.project,
        "source": {
            "repoURL": app.repo_url,
            "path": app.path,
            "targetRevision": app.target_revision,
        },
        "destination": {"name": app.cluster, "namespace": app.namespace},
    }
    if policy:
        spec["syncPolicy"] = policy
    return spec


def application_body(app: Application, site: str, namespace: str) -> dict[str, Any]:
    """The Application as ``POST /api/v1/applications`` takes it."""
    metadata = _metadata(app.name, namespace, site)
    if (finalizer := FINALIZERS[app.finalizer]) is not None:
        metadata["finalizers"] = [finalizer]
    return {"metadata": metadata, "spec": application_spec(app)}


# --------------------------------------------------------------------------- what differs


def _pruned(value: Any) -> Any:
    """``value`` without the empty values Argo CD leaves out of what it stores (omitempty)."""
    if isinstance(value, Mapping):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {}, False)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def field_changes(declared: Any, stored: Any, prefix: str) -> list[str]:
    """The dotted paths where ``stored`` differs from ``declared`` (both pruned of empties)."""
    declared, stored = _pruned(declared), _pruned(stored)
    if isinstance(declared, Mapping) and isinstance(stored, Mapping):
        changes = []
        for key in sorted(set(declared) | set(stored)):
            changes += field_changes(declared.get(key), stored.get(key), f"{prefix}.{key}")
        return changes
    return [] if declared == stored else [prefix]


def _label_changes(declared: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    # Only the labels the site sets: others (added by hand, by tools) are left as they are.
    labels = (stored.get("metadata") or {}).get("labels") or {}
    wanted = (declared.get("metadata") or {}).get("labels") or {}
    return [f"metadata.labels.{k}" for k, v in sorted(wanted.items()) if labels.get(k) != v]


def argocd_finalizers(stored: Mapping[str, Any]) -> list[str]:
    finalizers = (stored.get("metadata") or {}).get("finalizers") or []
    return [f for f in finalizers if str(f).startswith(_ARGOCD_FINALIZER)]


def project_changes(project: Project, site: str, stored: Mapping[str, Any]) -> list[str]:
    """What an update would change in the stored AppProject; [] when it matches."""
    declared = project_body(project, site, "")
    return _label_changes(declared, stored) + field_changes(
        declared["spec"], stored.get("spec") or {}, "spec"
    )


def application_changes(app: Application, site: str, stored: Mapping[str, Any]) -> list[str]:
    """What an update would change in the stored Application; [] when it matches.

    The spec is the site's (any difference is one, a hand edit included); of the metadata only
    the site's label and Argo CD's finalizers; status, operation and the rest are Argo CD's.
    """
    declared = application_body(app, site, "")
    changes = _label_changes(declared, stored)
    wanted = declared["metadata"].get("finalizers") or []
    if argocd_finalizers(stored) != wanted:
        changes.append("metadata.finalizers")
    return changes + field_changes(declared["spec"], stored.get("spec") or {}, "spec")


def finalizers_after(app: Application, stored: Mapping[str, Any]) -> list[str]:
    """The stored finalizers with Argo CD's replaced by the site's choice (others kept)."""
    finalizers = (stored.get("metadata") or {}).get("finalizers") or []
    kept = [f for f in finalizers if not str(f).startswith(_ARGOCD_FINALIZER)]
    wanted = FINALIZERS[app.finalizer]
    return kept + ([wanted] if wanted else [])


def ownership(stored: Mapping[str, Any], site: str) -> str:
    """Who an Application or AppProject not declared by the site belongs to, as a phrase.

    ``removed``: the site declared it once (its label); ``child of X``: an application
    deployed it (Argo CD's tracking); ``hand-made``: neither.
    """
    metadata = stored.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    if labels.get(SITE_LABEL) == site:
        return "removed"
    tracking = annotations.get(TRACKING_ANNOTATION)
    if tracking:
        return f"child of {str(tracking).split(':', 1)[0]}"
    if labels.get(INSTANCE_LABEL):
        return f"child of {labels[INSTANCE_LABEL]}"
    return "hand-made"
