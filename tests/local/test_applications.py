"""AppProjects and Applications converged by the local phase against the real Argo CD
(lab/argocd_harness.py, its own instance: the applications sync into its workload cluster),
and the app commands: list, sync (the manual gate), delete (asks; not cascading).

Tests run in file order, each building on the last.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.argocd_harness import (
    CLUSTER_NAME,
    MANAGEMENT,
    NAMESPACE,
    SITE,
    WORKLOAD,
    Harness,
    argocd_harness,
    git_http_server,
)
from local.argocd.api import Client
from tests.local.operator import Run, leaks, run

pytestmark = pytest.mark.lab

WEBHOOK_SECRET = "canary-webhook-2f7d1c9e"
REPO = "public/loop.git"
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def _applications_toml(url: str, *, manual: bool = True, sync_options: str = "") -> str:
    text = f"""
[gitops]
reconciliation_timeout = "30s"
webhook_secret_env = "LOOP_WEBHOOK_SECRET"

[[projects]]
name = "loop"
description = "the loop site's applications"
source_repos = ["{url}"]
destinations = [{{ cluster = "{CLUSTER_NAME}", namespace = "loop-*" }}]
cluster_resources = ["Namespace"]

[[projects.sync_windows]]
kind = "allow"
schedule = "0 0 * * *"
duration = "24h"
applications = ["loop-*"]
manual_sync = true
time_zone = "UTC"

[[applications]]
name = "loop-auto"
project = "loop"
repo_url = "{url}"
path = "config"
target_revision = "main"
cluster = "{CLUSTER_NAME}"
namespace = "loop-auto"
sync = "automated"
prune = true
self_heal = true
sync_options = ["CreateNamespace=true"{sync_options}]
finalizer = "foreground"
"""
    if manual:
        text += f"""
[[applications]]
name = "loop-manual"
project = "loop"
repo_url = "{url}"
path = "config"
target_revision = "main"
cluster = "{CLUSTER_NAME}"
namespace = "loop-manual"
sync = "manual"
sync_options = ["CreateNamespace=true"]
"""
    return text


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, str, Path]]:
    """A harness of its own, a Git server with ``public/loop.git`` (a ConfigMap under
    config/), and the loop site declaring the repository, the project and two applications."""
    tmp = tmp_path_factory.mktemp("apps")
    with argocd_harness(tmp / "argocd") as harness, git_http_server(tmp / "git", (REPO,)) as git:
        bare = tmp / "git" / "repos" / REPO
        work = tmp / "loop-work"
        subprocess.run([*GIT, "clone", "-q", str(bare), str(work)], check=True)
        (work / "config").mkdir()
        _write_configmap(work, "1")
        url = f"{git}/{REPO}"
        site = harness.sites / SITE / "argocd"
        (site / "repositories.toml").write_text(f'[[repositories]]\nname = "loop"\nurl = "{url}"\n')
        (site / "applications.toml").write_text(_applications_toml(url))
        yield harness, url, work


def _write_configmap(work: Path, value: str) -> None:
    (work / "config" / "configmap.yaml").write_text(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loop-config\ndata:\n  value: '{value}'\n"
    )
    subprocess.run([*GIT, "-C", str(work), "add", "config"], check=True)
    subprocess.run([*GIT, "-C", str(work), "commit", "-qm", f"value {value}"], check=True)
    subprocess.run([*GIT, "-C", str(work), "push", "-q", "origin", "HEAD:main"], check=True)


def _env(harness: Harness, **extra: str) -> dict[str, str]:
    password = harness.initial_password() or ""
    return harness.env(ARGOCD_PASSWORD=password, LOOP_WEBHOOK_SECRET=WEBHOOK_SECRET, **extra)


def _clean(harness: Harness, result: Run) -> None:
    assert any(" ".join(result.argv[1:]) in line for line in result.command_lines)
    canaries = [WEBHOOK_SECRET, harness.initial_password() or ""]
    found = leaks(result, [c for c in canaries if c], [harness.home, harness.sites])
    assert not found, found


def _objects(harness: Harness, plural: str) -> dict[str, dict[str, Any]]:
    listed = harness.kubectl(
        MANAGEMENT, "-n", NAMESPACE, "get", plural, "--show-managed-fields", "-o", "json"
    )
    return {i["metadata"]["name"]: i for i in json.loads(listed.stdout)["items"]}


def _client(harness: Harness) -> Client:
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or "", "test")
    return client


def _wait_for(
    harness: Harness, name: str, sync: str, health: str, timeout: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    app: dict[str, Any] = {}
    while time.monotonic() < deadline:
        app = _objects(harness, "applications").get(name) or {}
        status = app.get("status") or {}
        if (status.get("sync") or {}).get("status") == sync and (status.get("health") or {}).get(
            "status"
        ) == health:
            return app
        time.sleep(2)
    raise AssertionError(f"{name} not {sync}/{health}: {json.dumps(app.get('status'))[:1500]}")


def _configmap(harness: Harness, namespace: str) -> dict[str, str] | None:
    found = harness.kubectl(
        WORKLOAD,
        "-n",
        namespace,
        "get",
        "configmap",
        "loop-config",
        "--ignore-not-found",
        "-o",
        "json",
    )
    return json.loads(found.stdout)["data"] if found.stdout.strip() else None


def _lines(result: Run, word: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if f" {word} " in f" {line} "]


# --------------------------------------------------------------------------- converge


def test_dry_lists_each_object_to_create_and_changes_nothing(
    loop: tuple[Harness, str, Path],
) -> None:
    harness, _, _ = loop
    dry = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    assert dry.code == 0, dry.output
    assert "project loop: create    AppProject loop" in dry.stdout
    assert "application loop-auto: create    Application loop-auto" in dry.stdout
    assert "application loop-manual: create    Application loop-manual" in dry.stdout
    assert (
        "gitops: update    ConfigMap argocd/argocd-cm key timeout.reconciliation (30s)"
        in dry.stdout
    )
    assert "gitops: update    Secret argocd/argocd-secret key webhook.github.secret" in dry.stdout
    assert "loop" not in _objects(harness, "appprojects")
    assert not _objects(harness, "applications")
    _clean(harness, dry)


def test_apply_creates_them_and_the_automated_one_syncs(loop: tuple[Harness, str, Path]) -> None:
    harness, url, _ = loop
    secret_before = json.loads(
        harness.kubectl(
            MANAGEMENT, "-n", NAMESPACE, "get", "secret", "argocd-secret", "-o", "json"
        ).stdout
    )["data"]
    applied = run("local", "local/phase", SITE, env=_env(harness))
    assert applied.code == 0, applied.output
    project = _objects(harness, "appprojects")["loop"]
    assert project["spec"]["sourceRepos"] == [url]
    assert project["spec"]["destinations"] == [{"name": CLUSTER_NAME, "namespace": "loop-*"}]
    assert project["metadata"]["labels"]["tirosh.ai/site"] == SITE
    assert project["spec"]["syncWindows"] == [
        {
            "kind": "allow",
            "schedule": "0 0 * * *",
            "duration": "24h",
            "applications": ["loop-*"],
            "manualSync": True,
            "timeZone": "UTC",
        }
    ]
    auto = _objects(harness, "applications")["loop-auto"]
    assert auto["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    _wait_for(harness, "loop-auto", "Synced", "Healthy")
    assert _configmap(harness, "loop-auto") == {"value": "1"}
    # The manual one is not synced until the gate (argocd/app/sync).
    manual = _objects(harness, "applications")["loop-manual"]
    assert "automated" not in (manual["spec"].get("syncPolicy") or {})
    assert _configmap(harness, "loop-manual") is None
    # The webhook secret is set beside Argo CD's own keys, which stay as they were.
    secret = json.loads(
        harness.kubectl(
            MANAGEMENT, "-n", NAMESPACE, "get", "secret", "argocd-secret", "-o", "json"
        ).stdout
    )["data"]
    assert base64.b64decode(secret["webhook.github.secret"]).decode() == WEBHOOK_SECRET
    assert {k: v for k, v in secret.items() if k != "webhook.github.secret"} == secret_before
    cm = json.loads(
        harness.kubectl(MANAGEMENT, "-n", NAMESPACE, "get", "cm", "argocd-cm", "-o", "json").stdout
    )
    assert cm["data"]["timeout.reconciliation"] == "30s"
    _clean(harness, applied)


def _argocd_server_writes(harness: Harness) -> dict[str, str]:
    """When argocd-server last wrote each declared object (managedFields): the status the
    controller writes does not count."""
    times = {}
    for plural in ("appprojects", "applications"):
        for name, item in _objects(harness, plural).items():
            for entry in item["metadata"].get("managedFields") or []:
                if entry.get("manager") == "argocd-server":
                    times[f"{plural}/{name}"] = entry.get("time", "")
    return times


def test_a_second_run_sends_nothing(loop: tuple[Harness, str, Path]) -> None:
    harness, _, _ = loop
    writes = _argocd_server_writes(harness)
    project_version = _objects(harness, "appprojects")["loop"]["metadata"]["resourceVersion"]
    assert set(writes) >= {"appprojects/loop", "applications/loop-auto", "applications/loop-manual"}
    time.sleep(1.1)  # managedFields times have a one-second resolution
    dry = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    again = run("local", "local/phase", SITE, env=_env(harness))
    for result in (dry, again):
        assert result.code == 0, result.output
        assert not _lines(result, "create") and not _lines(result, "update"), result.stdout
        assert "application loop-auto: unchanged Application loop-auto" in result.stdout
        _clean(harness, result)
    assert _argocd_server_writes(harness) == writes
    assert (
        _objects(harness, "appprojects")["loop"]["metadata"]["resourceVersion"] == project_version
    )


def test_a_changed_declaration_updates_only_that_application(
    loop: tuple[Harness, str, Path],
) -> None:
    harness, url, _ = loop
    path = harness.sites / SITE / "argocd/applications.toml"
    path.write_text(_applications_toml(url, sync_options=', "ServerSideApply=true"'))
    dry = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    assert _lines(dry, "update") == [
        "application loop-auto: update    Application loop-auto (spec.syncPolicy.syncOptions)"
    ], dry.stdout
    applied = run("local", "local/phase", SITE, env=_env(harness))
    assert applied.code == 0, applied.output
    stored = _objects(harness, "applications")["loop-auto"]
    assert stored["spec"]["syncPolicy"]["syncOptions"] == [
        "CreateNamespace=true",
        "ServerSideApply=true",
    ]
    again = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    assert not _lines(again, "update"), again.stdout


def test_removed_and_hand_made_applications_are_reported_and_kept(
    loop: tuple[Harness, str, Path],
) -> None:
    harness, url, _ = loop
    hand_made = {
        "metadata": {"name": "by-hand", "namespace": NAMESPACE},
        "spec": {
            "project": "loop",
            "source": {"repoURL": url, "path": "config", "targetRevision": "main"},
            "destination": {"name": CLUSTER_NAME, "namespace": "loop-by-hand"},
        },
    }
    _client(harness).request("POST", "/api/v1/applications", hand_made)
    path = harness.sites / SITE / "argocd/applications.toml"
    path.write_text(_applications_toml(url, manual=False, sync_options=', "ServerSideApply=true"'))
    applied = run("local", "local/phase", SITE, env=_env(harness))
    assert applied.code == 0, applied.output
    assert (
        "application loop-manual: unchanged Application loop-manual (removed from the site: kept; "
        f"make argocd/app/delete SITE={SITE} APP=loop-manual)" in applied.stdout
    )
    assert (
        "application by-hand: unchanged Application by-hand (not declared by the site: left alone)"
        in applied.stdout
    )
    assert {"loop-auto", "loop-manual", "by-hand"} <= set(_objects(harness, "applications"))
    path.write_text(_applications_toml(url, sync_options=', "ServerSideApply=true"'))


# --------------------------------------------------------------------------- commands


def test_list_shows_sync_health_and_revisions(loop: tuple[Harness, str, Path]) -> None:
    harness, _, work = loop
    head = subprocess.run(
        ["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    listed = run("local", "argocd/app/list", SITE, env=_env(harness))
    assert listed.code == 0, listed.output
    lines = {
        line.split()[0]: line for line in listed.stdout.splitlines() if not line.startswith(" ")
    }
    assert lines["loop-auto"].startswith(
        f"loop-auto  loop  Synced  Healthy  main@{head[:7]}, deployed {head[:7]}"
    )
    assert lines["loop-manual"].startswith("loop-manual  loop  OutOfSync  Missing")
    assert lines["by-hand"].endswith("(not declared by the site)")
    _clean(harness, listed)


def test_a_manual_application_changes_only_through_sync(loop: tuple[Harness, str, Path]) -> None:
    harness, _, _ = loop
    assert _configmap(harness, "loop-manual") is None
    synced = run("local", "argocd/app/sync", SITE, env=_env(harness, APP="loop-manual"))
    assert synced.code == 0, synced.output
    assert "application loop-manual: Succeeded at " in synced.stdout
    assert "    ConfigMap loop-manual/loop-config: Synced" in synced.stdout
    assert _configmap(harness, "loop-manual") == {"value": "1"}
    missing = run("local", "argocd/app/sync", SITE, env=_env(harness))
    assert missing.code == 1 and "name the application: APP=<name>" in missing.stderr
    _clean(harness, synced)


def test_delete_asks_then_deletes_without_cascading(loop: tuple[Harness, str, Path]) -> None:
    harness, _, _ = loop
    refused = run("local", "argocd/app/delete", SITE, env=_env(harness, APP="loop-manual"))
    assert refused.code == 1
    assert "would delete Application loop-manual (project loop)" in refused.stdout
    assert "not cascading: its 1 resource(s) stay on loop-gpu" in refused.stdout
    assert "not confirmed: nothing deleted" in refused.stdout
    assert "loop-manual" in _objects(harness, "applications")
    deleted = run("local", "argocd/app/delete", SITE, "--yes", env=_env(harness, APP="loop-manual"))
    assert deleted.code == 0, deleted.output
    assert "loop-manual" not in _objects(harness, "applications")
    assert _configmap(harness, "loop-manual") == {"value": "1"}  # not cascaded
    for result in (refused, deleted):
        _clean(harness, result)


def test_doctor_reports_applications_and_missing_references(
    loop: tuple[Harness, str, Path],
) -> None:
    harness, _, _ = loop
    # Written as the CRD directly: Argo CD's API refuses an unknown cluster even unvalidated.
    foreign = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "foreign", "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://unregistered.example/x.git",
                "path": ".",
                "targetRevision": "main",
            },
            "destination": {"server": "https://10.255.0.1:6443", "namespace": "x"},
        },
    }
    manifest = harness.home / "foreign.json"
    manifest.write_text(json.dumps(foreign))
    harness.kubectl(MANAGEMENT, "apply", "-f", str(manifest))
    result = run("local", "argocd/doctor", SITE, env=_env(harness))
    assert "ok    application loop-auto: Synced, Healthy, main@" in result.stdout, result.stdout
    assert "FAIL  application loop-manual: declared in the site, not in Argo CD" in result.stdout
    assert (
        "FAIL  application foreign: repository https://unregistered.example/x.git: referenced, not registered in Argo CD"
        in result.stdout
    )
    assert (
        "FAIL  application foreign: cluster https://10.255.0.1:6443: referenced, not registered in Argo CD"
        in result.stdout
    )
    assert result.code == 1
    _clean(harness, result)


def test_a_project_that_forbids_the_destination_is_refused_before_any_connection(
    loop: tuple[Harness, str, Path],
) -> None:
    harness, _, _ = loop
    path = harness.sites / SITE / "argocd/applications.toml"
    good = path.read_text()
    path.write_text(good.replace('namespace = "loop-manual"', 'namespace = "default"'))
    try:
        refused = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    finally:
        path.write_text(good)
    assert refused.code == 2
    assert refused.stderr.strip().endswith(
        "applications[1].namespace: project loop does not allow the destination loop-gpu/default (its destinations)"
    ), refused.stderr
