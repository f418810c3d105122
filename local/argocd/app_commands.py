"""``make argocd/app/list``, ``argocd/app/sync`` and ``argocd/app/delete``: the applications as
Argo CD reports them, the manual gate, and the only way this project deletes one.

``list``: per application its project, sync and health, the revision deployed against the
head of its branch (as Argo CD last resolved it), and whether the site declares it. ``sync``:
one application synced and waited for, bounded, printing Argo CD's operation result. ``delete``
says what it would remove, asks (or ``--yes``), and deletes without cascading unless
``--cascade``: the application's resources stay on their cluster.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO
from urllib.parse import quote

from local.argocd.api import ArgoCDError, Client
from tirosh.applications import ownership
from tirosh.errors import OperatorError
from tirosh.site import Site

__all__ = ["delete_application", "list_applications", "sync_application"]

FINISHED: Final = ("Succeeded", "Failed", "Error")
POLL: Final = 2.0


def _short(revision: object) -> str:
    text = str(revision or "")
    return text[:7] if len(text) == 40 else text or "-"


def _path(name: str) -> str:
    return f"/api/v1/applications/{quote(name, safe='')}"


def get_application(argocd: Client, name: str) -> dict[str, Any] | None:
    """The application ``name``; None when Argo CD has none (it answers 403 or 404)."""
    try:
        return argocd.request_object("GET", _path(name))
    except ArgoCDError as exc:
        if exc.status in (403, 404):
            return None
        raise


def deployed_revision(app: Mapping[str, Any]) -> str:
    """The revision of the last sync (its history), "" before any."""
    status = app.get("status") or {}
    history = status.get("history") or []
    if history:
        return str(history[-1].get("revision") or "")
    result = (status.get("operationState") or {}).get("syncResult") or {}
    return str(result.get("revision") or "")


def revision_line(app: Mapping[str, Any]) -> str:
    """``main@abc1234, deployed abc1234`` (or ``behind``): the branch head as Argo CD last
    resolved it (status.sync.revision), against what the last sync deployed."""
    spec, status = app.get("spec") or {}, app.get("status") or {}
    branch = (spec.get("source") or {}).get("targetRevision") or "HEAD"
    head = str((status.get("sync") or {}).get("revision") or "")
    deployed = deployed_revision(app)
    state = "" if not head or deployed == head else " (behind the branch)"
    return f"{branch}@{_short(head)}, deployed {_short(deployed)}{state}"


def conditions(app: Mapping[str, Any]) -> list[str]:
    """Argo CD's condition messages of an application (ComparisonError, SyncError, ...)."""
    found = (app.get("status") or {}).get("conditions") or []
    return [f"{c.get('type')}: {' '.join(str(c.get('message') or '').split())}" for c in found]


def _state(app: Mapping[str, Any]) -> tuple[str, str]:
    status = app.get("status") or {}
    sync = str((status.get("sync") or {}).get("status") or "Unknown")
    health = str((status.get("health") or {}).get("status") or "Unknown")
    return sync, health


def list_applications(site: Site, argocd: Client, out: TextIO = sys.stdout) -> int:
    """Print every application; 1 when one the site declares is missing."""
    declared = {a.name for a in site.applications}
    listed = argocd.request_object("GET", "/api/v1/applications").get("items") or []
    for app in listed:
        name = str((app.get("metadata") or {}).get("name"))
        sync, health = _state(app)
        project = (app.get("spec") or {}).get("project") or "-"
        mark = "" if name in declared else f" ({_owner(app, site.name)})"
        print(f"{name}  {project}  {sync}  {health}  {revision_line(app)}{mark}", file=out)
        for line in conditions(app):
            print(f"    {line}", file=out)
        declared.discard(name)
    for name in sorted(declared):
        print(f"{name}  missing: declared in the site, not in Argo CD (make local/phase)", file=out)
    return 1 if declared else 0


def _owner(app: Mapping[str, Any], site: str) -> str:
    owner = ownership(app, site)
    return {"removed": "removed from the site", "hand-made": "not declared by the site"}.get(
        owner, owner
    )


def _operation(app: Mapping[str, Any]) -> dict[str, Any]:
    return dict((app.get("status") or {}).get("operationState") or {})


def sync_application(
    argocd: Client, name: str, timeout: float, out: TextIO = sys.stdout, prune: bool = False
) -> int:
    """Sync ``name`` to its target revision, wait up to ``timeout`` s, print the result."""
    before = get_application(argocd, name)
    if before is None:
        raise OperatorError(f"Argo CD has no application {name} (make argocd/app/list)")
    previous = _operation(before).get("startedAt")
    argocd.request_object("POST", f"{_path(name)}/sync", {"name": name, "prune": prune})
    print(f"application {name}: sync requested, waiting up to {timeout:g} s", file=out, flush=True)
    deadline = time.monotonic() + timeout
    while True:
        app = get_application(argocd, name) or {}
        operation = _operation(app)
        started = operation.get("startedAt")
        if started and started != previous and operation.get("phase") in FINISHED:
            return _print_result(name, app, operation, out)
        if time.monotonic() > deadline:
            phase = operation.get("phase") or "not started"
            print(f"application {name}: not finished after {timeout:g} s ({phase})", file=out)
            return 1
        time.sleep(POLL)


def _print_result(
    name: str, app: Mapping[str, Any], operation: Mapping[str, Any], out: TextIO
) -> int:
    phase = str(operation.get("phase"))
    result = operation.get("syncResult") or {}
    message = " ".join(str(operation.get("message") or "").split())
    print(f"application {name}: {phase} at {_short(result.get('revision'))}: {message}", file=out)
    for resource in result.get("resources") or []:
        where = "/".join(p for p in (resource.get("namespace"), resource.get("name")) if p)
        detail = " ".join(str(resource.get("message") or "").split())
        print(
            f"    {resource.get('kind')} {where}: {resource.get('status')}"
            + (f" ({detail})" if detail else ""),
            file=out,
        )
    sync, health = _state(app)
    print(f"application {name}: {sync}, {health}", file=out)
    return 0 if phase == "Succeeded" else 1


def delete_application(
    argocd: Client,
    name: str,
    cascade: bool,
    confirmed: bool,
    ask: Callable[[str], str] | None,
    out: TextIO = sys.stdout,
) -> int:
    """Say what deleting ``name`` removes; delete only when confirmed (or ``ask`` answers the
    application's name)."""
    app = get_application(argocd, name)
    if app is None:
        raise OperatorError(f"Argo CD has no application {name} (make argocd/app/list)")
    resources = (app.get("status") or {}).get("resources") or []
    destination = (app.get("spec") or {}).get("destination") or {}
    where = destination.get("name") or destination.get("server") or "?"
    project = (app.get("spec") or {}).get("project") or "-"
    print(f"would delete Application {name} (project {project})", file=out)
    if cascade:
        print(f"  and, cascading, its {len(resources)} resource(s) on {where}:", file=out)
        for item in resources:
            target = "/".join(p for p in (item.get("namespace"), item.get("name")) if p)
            print(f"    {item.get('kind')} {target}", file=out)
    else:
        print(f"  not cascading: its {len(resources)} resource(s) stay on {where}", file=out)
    if not confirmed:
        typed = ask(f"type the application's name ({name}) to delete it: ") if ask else ""
        if typed.strip() != name:
            print("not confirmed: nothing deleted (YES=true or --yes confirms)", file=out)
            return 1
    query = {"cascade": "true" if cascade else "false"}
    argocd.request_object("DELETE", _path(name), query=query)
    deadline = time.monotonic() + 60
    while get_application(argocd, name) is not None:
        if time.monotonic() > deadline:
            print(f"application {name}: still present 60 s after the delete", file=out)
            return 1
        time.sleep(1)
    print(f"deleted Application {name}" + ("" if cascade else " (its resources kept)"), file=out)
    return 0
