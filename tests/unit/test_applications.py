"""AppProject and Application bodies, and what differs from what Argo CD stores (host-free)."""

from __future__ import annotations

import copy
from typing import Any

from tirosh.applications import (
    SITE_LABEL,
    Application,
    Destination,
    Project,
    SyncWindow,
    application_body,
    application_changes,
    finalizers_after,
    ownership,
    project_allows_destination,
    project_allows_source,
    project_body,
    project_changes,
)

PROJECT = Project(
    "platform",
    "the platform",
    ("https://git.example/org/gitops.git",),
    ("https://git.example/other/*",),
    (Destination("in-cluster", "argocd"), Destination("gpu", "apps-*")),
    (("", "Namespace"),),
    (SyncWindow("deny", "0 22 * * *", "8h", ("*",), manual_sync=True),),
)
APP = Application(
    "root",
    "platform",
    "https://git.example/org/gitops.git",
    "clusters/site",
    "main",
    "in-cluster",
    "argocd",
    automated=True,
    prune=True,
    sync_options=("CreateNamespace=true",),
)


def _as_stored(body: dict[str, Any]) -> dict[str, Any]:
    """The object as Argo CD stores it: its own metadata, status, omitted empties, others'
    labels and annotations."""
    stored = copy.deepcopy(body)
    stored["metadata"].update(
        resourceVersion="812", uid="u-1", generation=3, creationTimestamp="2026-01-01T00:00:00Z"
    )
    stored["metadata"]["labels"]["team"] = "ops"
    stored["metadata"]["annotations"] = {"notified.notifications.argoproj.io": "{}"}
    stored["status"] = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
    stored["operation"] = {"sync": {"revision": "abc"}}
    automated = stored["spec"].get("syncPolicy", {}).get("automated")
    if automated is not None:
        automated.pop("selfHeal", None)  # false: omitted by Argo CD (omitempty)
    return stored


def test_project_body() -> None:
    body = project_body(PROJECT, "site", "argocd")
    assert body == {
        "metadata": {"name": "platform", "namespace": "argocd", "labels": {SITE_LABEL: "site"}},
        "spec": {
            "description": "the platform",
            "sourceRepos": ["https://git.example/org/gitops.git", "https://git.example/other/*"],
            "destinations": [
                {"name": "in-cluster", "namespace": "argocd"},
                {"name": "gpu", "namespace": "apps-*"},
            ],
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "syncWindows": [
                {
                    "kind": "deny",
                    "schedule": "0 22 * * *",
                    "duration": "8h",
                    "applications": ["*"],
                    "manualSync": True,
                }
            ],
        },
    }


def test_application_body_automated_and_manual() -> None:
    body = application_body(APP, "site", "argocd")
    assert body["spec"] == {
        "project": "platform",
        "source": {
            "repoURL": "https://git.example/org/gitops.git",
            "path": "clusters/site",
            "targetRevision": "main",
        },
        "destination": {"name": "in-cluster", "namespace": "argocd"},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": False},
            "syncOptions": ["CreateNamespace=true"],
        },
    }
    assert "finalizers" not in body["metadata"]
    manual = Application(**{**vars(APP), "automated": False, "prune": False, "sync_options": ()})
    assert "syncPolicy" not in application_body(manual, "site", "argocd")["spec"]
    cascading = Application(**{**vars(APP), "finalizer": "foreground"})
    assert application_body(cascading, "s", "argocd")["metadata"]["finalizers"] == [
        "resources-finalizer.argocd.argoproj.io"
    ]


def test_what_argocd_writes_itself_is_no_change() -> None:
    stored = _as_stored(application_body(APP, "site", "argocd"))
    assert application_changes(APP, "site", stored) == []
    project = _as_stored(project_body(PROJECT, "site", "argocd"))
    assert project_changes(PROJECT, "site", project) == []


def test_changed_fields_are_named() -> None:
    stored = _as_stored(application_body(APP, "site", "argocd"))
    stored["spec"]["source"]["targetRevision"] = "old"
    stored["spec"]["syncPolicy"]["automated"]["selfHeal"] = True
    stored["spec"]["ignoreDifferences"] = [{"kind": "ConfigMap"}]  # a hand edit
    stored["metadata"]["labels"].pop(SITE_LABEL)
    assert application_changes(APP, "site", stored) == [
        f"metadata.labels.{SITE_LABEL}",
        "spec.ignoreDifferences",
        "spec.source.targetRevision",
        "spec.syncPolicy.automated.selfHeal",
    ]
    project = _as_stored(project_body(PROJECT, "site", "argocd"))
    project["spec"]["sourceRepos"] = ["*"]
    project["spec"].pop("syncWindows")
    assert project_changes(PROJECT, "site", project) == ["spec.sourceRepos", "spec.syncWindows"]


def test_finalizers_the_site_chooses_replace_only_argocds() -> None:
    stored = _as_stored(application_body(APP, "site", "argocd"))
    stored["metadata"]["finalizers"] = [
        "other.example/keep",
        "resources-finalizer.argocd.argoproj.io",
    ]
    assert application_changes(APP, "site", stored) == ["metadata.finalizers"]
    assert finalizers_after(APP, stored) == ["other.example/keep"]
    background = Application(**{**vars(APP), "finalizer": "background"})
    assert finalizers_after(background, stored) == [
        "other.example/keep",
        "resources-finalizer.argocd.argoproj.io/background",
    ]
    stored["metadata"]["finalizers"] = ["other.example/keep"]
    assert application_changes(APP, "site", stored) == []


def test_ownership_of_undeclared_objects() -> None:
    def stored(labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"labels": labels, "annotations": annotations}}

    assert ownership(stored({SITE_LABEL: "site"}, {}), "site") == "removed"
    assert ownership(stored({SITE_LABEL: "other"}, {}), "site") == "hand-made"
    tracked = {"argocd.argoproj.io/tracking-id": "root:argoproj.io/Application:argocd/child"}
    assert ownership(stored({}, tracked), "site") == "child of root"
    assert ownership(stored({"app.kubernetes.io/instance": "root"}, {}), "site") == "child of root"
    assert ownership({"metadata": {}}, "site") == "hand-made"


def test_the_projects_rules() -> None:
    assert project_allows_source(PROJECT, "https://GIT.example/org/gitops")
    assert project_allows_source(PROJECT, "https://git.example/other/x.git")
    assert not project_allows_source(PROJECT, "https://git.example/org/else.git")
    assert project_allows_destination(PROJECT, "gpu", "apps-web")
    assert not project_allows_destination(PROJECT, "gpu", "argocd")
    assert not project_allows_destination(PROJECT, "in-cluster", "default")
