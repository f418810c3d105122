"""Converge the site's AppProjects and Applications in Argo CD (the local phase's last part).

What Argo CD stores is read through the management context (the CRDs themselves: a dry run
needs no login); an object is created or updated through the Argo CD API only when it differs
from the declaration (``tirosh.applications``: field by field, ignoring what Argo CD writes).
Projects go first: an application's project must exist. Nothing is ever deleted here: an
application the site no longer declares, or one made by hand, is reported and left alone
(``make argocd/app/delete`` is the explicit way, ``local.argocd.app_commands``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from kubernetes import client

from local.argocd.api import Client
from local.kube import client as kubeclient
from tirosh.applications import (
    Application,
    Project,
    application_body,
    application_changes,
    finalizers_after,
    ownership,
    project_body,
    project_changes,
)
from tirosh.plan import Action, Change, Plan
from tirosh.site import Site

__all__ = ["GROUP", "VERSION", "converge", "stored_objects"]

GROUP: Final = "argoproj.io"
VERSION: Final = "v1alpha1"
# Argo CD's built-in project: always there, never reported as hand-made.
DEFAULT_PROJECT: Final = "default"


def stored_objects(site: Site, plural: str) -> dict[str, dict[str, Any]]:
    """The ``plural`` (applications, appprojects) of Argo CD's namespace by name."""
    api = kubeclient.api_client(site.kubeconfig, site.argocd_context)
    try:
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            GROUP, VERSION, site.argocd.namespace, plural
        )
    finally:
        api.close()
    return {item["metadata"]["name"]: item for item in listed.get("items") or []}


def _action(stored: Mapping[str, Any] | None, changes: list[str]) -> Action:
    if stored is None:
        return "create"
    return "update" if changes else "unchanged"


def _what(kind: str, name: str, changes: list[str]) -> str:
    return f"{kind} {name}" + (f" ({', '.join(changes)})" if changes else "")


def _updated(stored: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The stored object with the site's spec and label: everything else as Argo CD has it
    (its resourceVersion makes a concurrent change fail instead of being overwritten)."""
    updated = copy.deepcopy(dict(stored))
    updated.pop("status", None)
    updated.pop("operation", None)
    metadata = updated.setdefault("metadata", {})
    metadata.setdefault("labels", {}).update(body["metadata"]["labels"])
    updated["spec"] = body["spec"]
    return updated


def _converge_project(
    site: Site, argocd: Client | None, project: Project, stored: Mapping[str, Any] | None, dry: bool
) -> Change:
    changes = [] if stored is None else project_changes(project, site.name, stored)
    action = _action(stored, changes)
    if not dry and argocd is not None and action != "unchanged":
        body = project_body(project, site.name, site.argocd.namespace)
        if stored is None:
            argocd.request_object("POST", "/api/v1/projects", {"project": body})
        else:
            path = f"/api/v1/projects/{quote(project.name, safe='')}"
            argocd.request_object("PUT", path, {"project": _updated(stored, body)})
    return Change(f"project {project.name}", action, _what("AppProject", project.name, changes))


def _converge_application(
    site: Site, argocd: Client | None, app: Application, stored: Mapping[str, Any] | None, dry: bool
) -> Change:
    changes = [] if stored is None else application_changes(app, site.name, stored)
    action = _action(stored, changes)
    if not dry and argocd is not None and action != "unchanged":
        body = application_body(app, site.name, site.argocd.namespace)
        if stored is None:
            argocd.request_object("POST", "/api/v1/applications", body)
        else:
            updated = _updated(stored, body)
            updated["metadata"]["finalizers"] = finalizers_after(app, stored)
            path = f"/api/v1/applications/{quote(app.name, safe='')}"
            argocd.request_object("PUT", path, updated)
    return Change(f"application {app.name}", action, _what("Application", app.name, changes))


def _undeclared(kind: str, name: str, stored: Mapping[str, Any], site: str) -> Change | None:
    """The line for an object Argo CD has and the site does not declare (never changed)."""
    owner = ownership(stored, site)
    subject = f"{'project' if kind == 'AppProject' else 'application'} {name}"
    if owner == "removed":
        hint = f"make argocd/app/delete SITE={site} APP={name}" if kind == "Application" else ""
        note = "removed from the site: kept" + (f"; {hint}" if hint else "")
        return Change(subject, "unchanged", f"{kind} {name} ({note})")
    if owner == "hand-made":
        return Change(subject, "unchanged", f"{kind} {name} (not declared by the site: left alone)")
    return None  # an application's child: its parent manages it


def converge(site: Site, argocd: Client | None, dry: bool = False) -> Plan:
    """Create or update what differs; ``argocd`` None only when ``dry``."""
    plan = Plan()
    if not site.projects and not site.applications:
        return plan
    projects = stored_objects(site, "appprojects")
    applications = stored_objects(site, "applications")
    for project in site.projects:
        plan.changes.append(
            _converge_project(site, argocd, project, projects.get(project.name), dry)
        )
    for app in site.applications:
        plan.changes.append(
            _converge_application(site, argocd, app, applications.get(app.name), dry)
        )
    declared = {p.name for p in site.projects} | {DEFAULT_PROJECT}
    for name, stored in projects.items():
        if name not in declared and (line := _undeclared("AppProject", name, stored, site.name)):
            plan.changes.append(line)
    apps = {a.name for a in site.applications}
    for name, stored in applications.items():
        if name not in apps and (line := _undeclared("Application", name, stored, site.name)):
            plan.changes.append(line)
    return plan
