"""The reader of ``argocd/applications.toml``: AppProjects, Applications and the ``[gitops]``
settings of a site.

The file's shape is in ``tirosh.applications``. Checked against the rest of the site before any
connection: a project's source repositories must be ones the site registers (a repository, or
under a credential template) unless written as ``source_patterns`` on purpose; destinations name
registered clusters (or ``in-cluster``); an application's repository, cluster and namespace must
be registered and allowed by its project; a target revision is a branch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from tirosh.applications import (
    FINALIZERS,
    IN_CLUSTER,
    Application,
    Destination,
    GitOps,
    Project,
    SyncWindow,
    project_allows_destination,
    project_allows_source,
)
from tirosh.clusters import WorkloadCluster
from tirosh.repositories import Repository, Template, covering_template
from tirosh.site.reader import Report, Table, read_toml
from tirosh.site.repositories_file import canonical_url, url_problem

__all__ = ["Declared", "read_applications"]

_TABLES: Final = ("gitops", "projects", "applications")
_GITOPS_KEYS: Final = ("reconciliation_timeout", "webhook_secret_env")
_PROJECT_KEYS: Final = (
    "name",
    "description",
    "source_repos",
    "source_patterns",
    "destinations",
    "cluster_resources",
    "sync_windows",
)
_WINDOW_KEYS: Final = (
    "kind",
    "schedule",
    "duration",
    "applications",
    "namespaces",
    "clusters",
    "manual_sync",
    "time_zone",
)
_APP_KEYS: Final = (
    "name",
    "project",
    "repo_url",
    "path",
    "target_revision",
    "cluster",
    "namespace",
    "sync",
    "prune",
    "self_heal",
    "sync_options",
    "finalizer",
)
# The sync options Argo CD knows (argo-cd docs: user-guide/sync-options), as Name=value.
SYNC_OPTIONS: Final = (
    "Validate",
    "CreateNamespace",
    "PruneLast",
    "ApplyOutOfSyncOnly",
    "PrunePropagationPolicy",
    "Replace",
    "ServerSideApply",
    "FailOnSharedResource",
    "RespectIgnoreDifferences",
    "Prune",
    "Delete",
    "ClientSideApplyMigration",
)
_DURATION: Final = re.compile(r"(?:[0-9]+(?:h|m|s))+", re.ASCII)
_CRON_FIELD: Final = re.compile(r"[0-9*/,A-Za-z?-]+", re.ASCII)
_KIND: Final = re.compile(r"\*|[A-Z][A-Za-z0-9]*", re.ASCII)
_GROUP: Final = re.compile(r"\*|[a-z0-9]([a-z0-9.-]*[a-z0-9])?", re.ASCII)
_NAMESPACE_PATTERN: Final = re.compile(r"[a-z0-9*?-][a-z0-9*?.-]*", re.ASCII)
_CLUSTER_PATTERN: Final = re.compile(r"[A-Za-z0-9*?][A-Za-z0-9._*?-]*", re.ASCII)
_APP_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?", re.ASCII)
_SHA: Final = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}", re.ASCII)
_REF_FORBIDDEN: Final = re.compile(r"[\s~^:?*\[\\]|\.\.|@\{|//")


@dataclass(frozen=True)
class Declared:
    """What the file declares: the ``[gitops]`` settings, projects, applications."""

    gitops: GitOps = field(default_factory=GitOps)
    projects: tuple[Project, ...] = ()
    applications: tuple[Application, ...] = ()


def read_applications(
    report: Report,
    path: Path,
    repositories: Sequence[Repository] = (),
    templates: Sequence[Template] = (),
    clusters: Sequence[WorkloadCluster] = (),
) -> Declared:
    """The file's declarations (none when it is absent), checked against the registered
    repositories, templates and clusters; problems recorded."""
    top = read_toml(report, path, optional=True)
    if top is None:
        return Declared()
    top.allow_tables(_TABLES)
    registered = _Registered(repositories, templates, clusters)
    gitops = _gitops(top)
    projects = [p for p in (_project(e, registered) for e in top.entries("projects")) if p]
    _unique(top, "projects", [p.name for p in projects])
    by_name = {p.name: p for p in projects}
    entries = top.entries("applications")
    applications = [a for a in (_application(e, registered, by_name) for e in entries) if a]
    _unique(top, "applications", [a.name for a in applications])
    return Declared(gitops, tuple(projects), tuple(applications))


class _Registered:
    """The repositories, templates and cluster names the site registers."""

    def __init__(
        self,
        repositories: Sequence[Repository],
        templates: Sequence[Template],
        clusters: Sequence[WorkloadCluster],
    ) -> None:
        self.repositories = {canonical_url(r.url) for r in repositories}
        self.templates = tuple(templates)
        self.clusters = (IN_CLUSTER, *(c.name for c in clusters))

    def repository_problem(self, url: str) -> str | None:
        if canonical_url(url) in self.repositories or covering_template(url, self.templates):
            return None
        known = ", ".join(sorted(self.repositories)) or "none"
        return (
            f"{url!r} is not a repository the site registers (argocd/repositories.toml: "
            f"{known}), nor under one of its credential templates; a pattern on purpose goes "
            "in source_patterns"
        )

    def cluster_problem(self, name: str) -> str | None:
        if name in self.clusters:
            return None
        return (
            f"{name!r} is not a cluster the site registers (known: {', '.join(self.clusters)}; "
            "argocd/clusters.toml or profile.toml's argocd.cluster_name)"
        )


def _gitops(top: Table) -> GitOps:
    table = top.table("gitops")
    if table is None:
        return GitOps()
    table.allow(_GITOPS_KEYS)
    timeout = table.string("reconciliation_timeout")
    if timeout is not None and not _DURATION.fullmatch(timeout):
        table.problem(
            "reconciliation_timeout", f"must be a duration such as 180s or 3m, got {timeout!r}"
        )
        timeout = None
    return GitOps(timeout, table.env_name("webhook_secret_env"))


def _unique(top: Table, table: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            top.problem(f"{table}[{index}].name", f"{name!r} is declared twice")
        seen.add(name)


def _name(entry: Table) -> str | None:
    name = entry.string("name", required=True)
    if name is not None and not _APP_NAME.fullmatch(name):
        entry.problem("name", f"must be a lowercase DNS subdomain name, got {name!r}")
        return None
    return name


# --------------------------------------------------------------------------- projects


def _project(entry: Table, registered: _Registered) -> Project | None:
    start = len(entry.report.problems)
    entry.allow(_PROJECT_KEYS)
    name = _name(entry)
    repos = entry.string_list("source_repos") or []
    for index, url in enumerate(repos):
        reason = url_problem(url) or registered.repository_problem(url)
        if reason:
            entry.problem(f"source_repos[{index}]", reason)
    patterns = entry.string_list("source_patterns") or []
    if not repos and not patterns:
        entry.problem("source_repos", "a project needs source_repos or source_patterns")
    destinations = _destinations(entry, registered)
    resources = _cluster_resources(entry)
    windows = [w for w in (_window(e) for e in entry.entries("sync_windows")) if w]
    if name is None or len(entry.report.problems) > start:
        return None
    return Project(
        name,
        entry.string("description") or "",
        tuple(repos),
        tuple(patterns),
        tuple(destinations),
        tuple(resources),
        tuple(windows),
    )


def _destinations(entry: Table, registered: _Registered) -> list[Destination]:
    destinations = []
    listed = entry.entries("destinations")
    if not listed:
        entry.problem("destinations", "a project needs at least one destination")
    for item in listed:
        item.allow(("cluster", "namespace"))
        cluster = item.string("cluster", required=True)
        namespace = item.string("namespace", required=True)
        if cluster is not None and (reason := registered.cluster_problem(cluster)):
            item.problem("cluster", reason)
            cluster = None
        if namespace is not None and not _NAMESPACE_PATTERN.fullmatch(namespace):
            item.problem("namespace", f"must be a namespace name or glob (*), got {namespace!r}")
            namespace = None
        if cluster and namespace:
            destinations.append(Destination(cluster, namespace))
    return destinations


def _cluster_resources(entry: Table) -> list[tuple[str, str]]:
    """``Kind`` (core group), ``group/Kind`` or ``*`` entries as (group, kind)."""
    resources = []
    for index, text in enumerate(entry.string_list("cluster_resources") or []):
        group, _, kind = text.rpartition("/")
        if text == "*":
            group, kind = "*", "*"
        if not _KIND.fullmatch(kind) or (group and not _GROUP.fullmatch(group)):
            entry.problem(
                f"cluster_resources[{index}]",
                f"must be Kind, group/Kind or * (Namespace, rbac.authorization.k8s.io/ClusterRole), "
                f"got {text!r}",
            )
            continue
        resources.append((group, kind))
    return resources


def _window(entry: Table) -> SyncWindow | None:
    start = len(entry.report.problems)
    entry.allow(_WINDOW_KEYS)
    kind = entry.string("kind", required=True)
    if kind is not None and kind not in ("allow", "deny"):
        entry.problem("kind", f"must be allow or deny, got {kind!r}")
    schedule = entry.string("schedule", required=True)
    if schedule is not None:
        fields = schedule.split()
        if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(f) for f in fields):
            entry.problem("schedule", f"must be a cron schedule of 5 fields, got {schedule!r}")
    duration = entry.string("duration", required=True)
    if duration is not None and not _DURATION.fullmatch(duration):
        entry.problem("duration", f"must be a duration such as 1h or 30m, got {duration!r}")
    lists = {key: tuple(entry.string_list(key) or ()) for key in _WINDOW_KEYS[3:6]}
    if not any(lists.values()):
        entry.problem(
            "applications", "a window matches nothing without applications, namespaces or clusters"
        )
    manual = entry.boolean("manual_sync") or False
    zone = entry.string("time_zone") or ""
    if len(entry.report.problems) > start:
        return None
    assert kind and schedule and duration
    return SyncWindow(
        kind,
        schedule,
        duration,
        lists["applications"],
        lists["namespaces"],
        lists["clusters"],
        manual_sync=manual,
        time_zone=zone,
    )


# --------------------------------------------------------------------------- applications


def _application(
    entry: Table, registered: _Registered, projects: dict[str, Project]
) -> Application | None:
    start = len(entry.report.problems)
    entry.allow(_APP_KEYS)
    name = _name(entry)
    project_name = entry.string("project", required=True)
    repo_url = entry.string("repo_url", required=True)
    if repo_url is not None and (
        reason := url_problem(repo_url) or registered.repository_problem(repo_url)
    ):
        entry.problem("repo_url", reason)
        repo_url = None
    path = _path(entry)
    revision = _revision(entry)
    cluster = entry.string("cluster", required=True)
    if cluster is not None and (reason := registered.cluster_problem(cluster)):
        entry.problem("cluster", reason)
        cluster = None
    namespace = entry.k8s_name("namespace", required=True)
    automated, prune, self_heal = _sync(entry)
    options = _sync_options(entry)
    finalizer = entry.string("finalizer") or "none"
    if finalizer not in FINALIZERS:
        entry.problem("finalizer", f"must be one of {', '.join(FINALIZERS)}, got {finalizer!r}")
    project = projects.get(project_name or "")
    if project_name is not None and project is None:
        known = ", ".join(projects) or "none"
        entry.problem(
            "project", f"{project_name!r} is not a project of this file (declared: {known})"
        )
    if (
        project is not None
        and repo_url is not None
        and not project_allows_source(project, repo_url)
    ):
        entry.problem(
            "repo_url",
            f"project {project.name} does not allow {repo_url!r} (its source_repos / source_patterns)",
        )
    if (
        project is not None
        and cluster
        and namespace
        and not project_allows_destination(project, cluster, namespace)
    ):
        entry.problem(
            "namespace",
            f"project {project.name} does not allow the destination {cluster}/{namespace} "
            "(its destinations)",
        )
    if len(entry.report.problems) > start:
        return None
    assert name and project_name and repo_url and path and revision and cluster and namespace
    return Application(
        name,
        project_name,
        repo_url,
        path,
        revision,
        cluster,
        namespace,
        automated,
        prune,
        self_heal,
        tuple(options),
        finalizer,
    )


def _path(entry: Table) -> str | None:
    path = entry.string("path", required=True)
    if path is None:
        return None
    parts = path.split("/")
    if path.startswith("/") or ".." in parts or "\\" in path:
        entry.problem(
            "path", f"must be a path inside the repository (no leading / or ..), got {path!r}"
        )
        return None
    return path


def _revision(entry: Table) -> str | None:
    """A branch: Image Updater's write-back and the branch head of app/list need one."""
    revision = entry.string("target_revision", required=True)
    if revision is None:
        return None
    if revision == "HEAD" or _SHA.fullmatch(revision) or revision.startswith("refs/tags/"):
        entry.problem(
            "target_revision", f"must be a branch (main), not a commit or tag, got {revision!r}"
        )
        return None
    if (
        _REF_FORBIDDEN.search(revision)
        or revision.startswith(("-", "/", "."))
        or revision.endswith(("/", ".lock", "."))
    ):
        entry.problem("target_revision", f"is not a Git branch name, got {revision!r}")
        return None
    return revision


def _sync(entry: Table) -> tuple[bool, bool, bool]:
    sync = entry.string("sync") or "manual"
    if sync not in ("automated", "manual"):
        entry.problem("sync", f"must be automated or manual, got {sync!r}")
    prune, self_heal = entry.boolean("prune"), entry.boolean("self_heal")
    if sync != "automated":
        for key, value in (("prune", prune), ("self_heal", self_heal)):
            if value:
                entry.problem(key, 'only with sync = "automated" (a manual sync chooses its own)')
    return sync == "automated", bool(prune), bool(self_heal)


def _sync_options(entry: Table) -> list[str]:
    options = entry.string_list("sync_options") or []
    for index, option in enumerate(options):
        key, equals, value = option.partition("=")
        if not equals or not value or key not in SYNC_OPTIONS:
            entry.problem(
                f"sync_options[{index}]",
                f"must be Name=value with a name Argo CD knows ({', '.join(SYNC_OPTIONS)}), "
                f"got {option!r}",
            )
    return options
