"""The doctor's application checks (runbook sections 9-5 and 10): each application's sync and
health with Argo CD's condition messages, and the repositories and clusters applications
reference that Argo CD does not have. Reads only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local.argocd.api import Client
from local.argocd.app_commands import conditions, revision_line
from tirosh.site import Site
from tirosh.site.repositories_file import canonical_url

__all__ = ["Finding", "application_checks"]

# (ok, what, detail, fix): the doctor makes each its Check.
Finding = tuple[bool, str, str, str]


def _state(app: Mapping[str, Any]) -> tuple[str, str]:
    status = app.get("status") or {}
    return (
        str((status.get("sync") or {}).get("status") or "Unknown"),
        str((status.get("health") or {}).get("status") or "Unknown"),
    )


def application_checks(site: Site, argocd: Client) -> list[Finding]:
    """One check per application Argo CD has or the site declares, then one per missing
    repository or cluster an application references."""
    listed = argocd.request_object("GET", "/api/v1/applications").get("items") or []
    by_name = {str(a["metadata"]["name"]): a for a in listed}
    checks: list[Finding] = []
    manual = {a.name for a in site.applications if not a.automated}
    for declared in site.applications:
        if declared.name not in by_name:
            checks.append(
                (
                    False,
                    f"application {declared.name}",
                    "declared in the site, not in Argo CD",
                    f"make local/phase SITE={site.name}",
                )
            )
    for name, app in by_name.items():
        sync, health = _state(app)
        messages = conditions(app)
        detail = f"{sync}, {health}, {revision_line(app)}" + "".join(f"; {m}" for m in messages)
        ok = sync == "Synced" and health == "Healthy" and not messages
        fix = (
            f"make argocd/app/sync SITE={site.name} APP={name} (manual policy)"
            if name in manual
            else f"read the conditions above; make argocd/app/list SITE={site.name}"
        )
        checks.append((ok, f"application {name}", detail, fix))
    return checks + _references(site, argocd, list(by_name.values()))


def _references(site: Site, argocd: Client, apps: list[Mapping[str, Any]]) -> list[Finding]:
    repositories = {canonical_url(str(r.get("repo"))) for r in argocd.list_repositories()}
    templates = [str(t.get("url")) for t in argocd.list_repocreds()]
    clusters = argocd.list_clusters()
    names = {str(c.get("name")) for c in clusters}
    servers = {str(c.get("server")).rstrip("/") for c in clusters}
    checks: list[Finding] = []
    for app in apps:
        name = app["metadata"]["name"]
        spec = app.get("spec") or {}
        url = str((spec.get("source") or {}).get("repoURL") or "")
        covered = any(url.startswith(t.rstrip("/")) for t in templates)
        if url and canonical_url(url) not in repositories and not covered:
            checks.append(
                (
                    False,
                    f"application {name}: repository {url}",
                    "referenced, not registered in Argo CD",
                    f"declare it in argocd/repositories.toml, then make argocd/repo/add SITE={site.name}",
                )
            )
        destination = spec.get("destination") or {}
        cluster = destination.get("name") or destination.get("server")
        known = names if destination.get("name") else servers
        if cluster and str(cluster).rstrip("/") not in known:
            checks.append(
                (
                    False,
                    f"application {name}: cluster {cluster}",
                    "referenced, not registered in Argo CD",
                    f"declare it in argocd/clusters.toml, then make argocd/cluster/add SITE={site.name}",
                )
            )
    return checks
