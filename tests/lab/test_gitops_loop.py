"""The GitOps loop on the lab: a deploy declares project ``lab`` and the root application of
lab/gitops/apps; its children reach Synced/Healthy on their clusters (a Pod on the argocd
node's own cluster, API-only objects on rke2-gpu); a second deploy changes nothing; a commit
pushed to the edge's Git server reaches the cluster through Argo CD's webhook; the manual
child changes only through ``make argocd/app/sync``; and last, the argocd host destroyed and
booted empty comes back with one deploy (the time from the empty host to every automated
application Synced is printed, not asserted).

Runs after test_local_phase (conftest.py's order), whose teardown leaves Argo CD registering
nothing; this module's teardown does the same for what it adds.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import config, gitops_loop, rebuild
from lab.hosts import ssh_command
from tests.lab.operator import Operator, changed_operations

pytestmark = pytest.mark.lab
MANAGEMENT = ("--context", "lab/k3s")
WORKLOAD = ("--context", "lab/rke2/gpu")


@pytest.fixture(scope="module")
def loop_operator(
    operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    sites = tmp_path_factory.mktemp("loop") / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    gitops_loop.declare(sites)
    env = {"TIROSH_SITES_DIR": str(sites), gitops_loop.WEBHOOK_ENV: gitops_loop.webhook_secret()}
    yield Operator(home=operator.home, env=env)
    _forget(operator)


def _forget(operator: Operator) -> None:
    """Leave Argo CD and both clusters as the lab site declares them: nothing."""
    names = [gitops_loop.ROOT, *gitops_loop.CHILDREN]
    operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "delete",
        "application",
        *names,
        "--ignore-not-found",
        check=False,
    )
    operator.kubectl(*MANAGEMENT, "-n", "argocd", "delete", "appproject", "lab", check=False)
    for kind in ("cluster", "repository"):
        operator.kubectl(
            *MANAGEMENT,
            "-n",
            "argocd",
            "delete",
            "secret",
            "-l",
            f"argocd.argoproj.io/secret-type={kind}",
            check=False,
        )
    patch = '[{"op": "remove", "path": "/data/webhook.github.secret"}]'
    operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "patch",
        "secret",
        "argocd-secret",
        "--type",
        "json",
        "-p",
        patch,
        check=False,
    )
    operator.kubectl(*MANAGEMENT, "delete", "namespace", "lab-web", "--wait=false", check=False)
    operator.kubectl(
        *WORKLOAD, "delete", "namespace", "lab-apps", "lab-gated", "--wait=false", check=False
    )


def _apps(operator: Operator) -> dict[str, dict[str, Any]]:
    listed = operator.kubectl(*MANAGEMENT, "-n", "argocd", "get", "applications", "-o", "json")
    return {a["metadata"]["name"]: a for a in json.loads(listed.stdout)["items"]}


def _state(app: dict[str, Any]) -> tuple[str, str]:
    status = app.get("status") or {}
    return (status.get("sync") or {}).get("status", ""), (status.get("health") or {}).get(
        "status", ""
    )


def _wait_synced(operator: Operator, names: tuple[str, ...], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        apps = _apps(operator)
        states = {n: _state(apps[n]) if n in apps else ("absent", "") for n in names}
        if all(state == ("Synced", "Healthy") for state in states.values()):
            return
        assert time.monotonic() < deadline, json.dumps(states)
        time.sleep(3)


def _live(operator: Operator) -> str:
    return operator.kubectl(
        *WORKLOAD,
        "-n",
        "lab-apps",
        "get",
        "configmap",
        "live",
        "-o",
        "jsonpath={.data.revision}",
        check=False,
    ).stdout


def _server_writes(operator: Operator) -> dict[str, str]:
    """When argocd-server last wrote the project and each application (managedFields)."""
    times = {}
    for plural in ("appprojects", "applications"):
        listed = operator.kubectl(
            *MANAGEMENT, "-n", "argocd", "get", plural, "--show-managed-fields", "-o", "json"
        )
        for item in json.loads(listed.stdout)["items"]:
            for entry in item["metadata"].get("managedFields") or []:
                if entry.get("manager") == "argocd-server":
                    times[f"{plural}/{item['metadata']['name']}"] = entry.get("time", "")
    return times


def test_a_deploy_brings_the_root_and_its_children_to_synced_and_healthy(
    loop_operator: Operator,
) -> None:
    result = loop_operator.deploy("-vvv")  # the webhook secret is in no line, even at -vvv
    output = result.stdout + result.stderr
    assert "project lab: create" in output and f"application {gitops_loop.ROOT}: create" in output
    assert gitops_loop.webhook_secret() not in output
    _wait_synced(loop_operator, gitops_loop.AUTOMATED, 300)
    apps = _apps(loop_operator)
    assert set(gitops_loop.CHILDREN) <= set(apps)
    assert _state(apps["lab-gated"])[0] == "OutOfSync"  # manual: not synced by itself
    assert _live(loop_operator) == "0"
    ready = loop_operator.kubectl(
        *MANAGEMENT,
        "-n",
        "lab-web",
        "get",
        "deployment",
        "cache",
        "-o",
        "jsonpath={.status.readyReplicas}",
    )
    assert ready.stdout == "1"


def test_a_second_deploy_changes_nothing(loop_operator: Operator) -> None:
    writes = _server_writes(loop_operator)
    assert f"applications/{gitops_loop.ROOT}" in writes and "appprojects/lab" in writes
    time.sleep(1.1)  # managedFields times have a one-second resolution
    assert changed_operations(loop_operator.plan()) == []
    loop_operator.deploy()
    assert _server_writes(loop_operator) == writes


def test_a_push_reaches_the_cluster_through_the_webhook(
    loop_operator: Operator, tmp_path: Path
) -> None:
    work = gitops_loop.clone(tmp_path / "gitops")
    started = time.monotonic()
    output = gitops_loop.push(
        work, gitops_loop.LIVE_FILE, gitops_loop.live_configmap("1"), "live: 1"
    )
    assert "argocd webhook: 200" in output, output
    # Far below Argo CD's 180 s poll: the webhook made the refresh (the benchmark times it).
    deadline = started + 60
    while _live(loop_operator) != "1":
        assert time.monotonic() < deadline, "the commit did not reach the cluster within 60 s"
        time.sleep(0.5)


def test_the_manual_child_changes_only_through_app_sync(loop_operator: Operator) -> None:
    absent = loop_operator.kubectl(
        *WORKLOAD, "-n", "lab-gated", "get", "configmap", "gated", check=False
    )
    assert absent.returncode != 0
    # What `make argocd/app/sync SITE=lab APP=lab-gated` runs (tests/unit/test_makefile.py).
    gate = Operator(home=loop_operator.home, env={**loop_operator.env, "APP": "lab-gated"})
    synced = gate.run(sys.executable, "-m", "local", "argocd/app/sync", "lab", check=False)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "application lab-gated: Succeeded at " in synced.stdout
    release = loop_operator.kubectl(
        *WORKLOAD,
        "-n",
        "lab-gated",
        "get",
        "configmap",
        "gated",
        "-o",
        "jsonpath={.data.release}",
    )
    assert release.stdout == "1"


def test_app_list_and_the_doctor_report_the_applications(loop_operator: Operator) -> None:
    listed = loop_operator.run(sys.executable, "-m", "local", "argocd/app/list", "lab")
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line[:1] != " "}
    assert lines[gitops_loop.ROOT].startswith(f"{gitops_loop.ROOT}  lab  Synced  Healthy  main@")
    assert lines["lab-node"].endswith(f"(child of {gitops_loop.ROOT})")
    doctor = loop_operator.run(sys.executable, "-m", "local", "argocd/doctor", "lab", check=False)
    assert f"ok    application {gitops_loop.ROOT}: Synced, Healthy" in doctor.stdout, doctor.stdout
    assert gitops_loop.webhook_secret() not in listed.stdout + doctor.stdout + doctor.stderr


def _uid(operator: Operator, *args: str) -> str:
    return operator.kubectl(*args, "-o", "jsonpath={.metadata.uid}").stdout


def _management_ca(operator: Operator) -> str:
    document = yaml.safe_load((operator.home / ".kube" / "config").read_text())
    cluster = next(c for c in document["clusters"] if c["name"] == "lab/k3s")
    return str(cluster["cluster"].get("certificate-authority-data"))


def test_the_management_vm_rebuilt_from_nothing_comes_back_with_one_deploy(
    loop_operator: Operator,
) -> None:
    """The argocd host destroyed and booted empty (fresh rootfs: new k3s CA, new Argo CD and
    admin password); one deploy, without TIROSH_REPLACE_CONTEXTS, brings back everything the
    site declares, and the workload cluster's objects are kept, not recreated."""
    workload_objects = {
        "namespace": _uid(loop_operator, *WORKLOAD, "get", "namespace", "lab-apps"),
        "configmap": _uid(loop_operator, *WORKLOAD, "-n", "lab-apps", "get", "configmap", "live"),
    }
    live = _live(loop_operator)
    old_ca = _management_ca(loop_operator)
    started = time.monotonic()
    booted = rebuild.recreate(config.NODE_HOST)
    empty = loop_operator.run(
        *ssh_command(config.host(config.NODE_HOST)),
        "test",
        "-e",
        "/usr/local/bin/k3s",
        check=False,
    )
    assert empty.returncode == 1  # nothing of the old host is left
    result = loop_operator.deploy()
    deployed = time.monotonic() - started
    assert "TIROSH_REPLACE_CONTEXTS" not in loop_operator.environ()
    output = result.stdout + result.stderr
    assert "project lab: create" in output and f"application {gitops_loop.ROOT}: create" in output
    _wait_synced(loop_operator, gitops_loop.AUTOMATED, 600)
    synced = time.monotonic() - started
    print(
        f"\nrebuild: host booted empty in {booted:.1f} s, deploy done at {deployed:.1f} s, "
        f"every automated application Synced/Healthy at {synced:.1f} s"
    )
    assert _management_ca(loop_operator) != old_ca  # the deploy's own context, new CA
    assert _live(loop_operator) == live
    assert {
        "namespace": _uid(loop_operator, *WORKLOAD, "get", "namespace", "lab-apps"),
        "configmap": _uid(loop_operator, *WORKLOAD, "-n", "lab-apps", "get", "configmap", "live"),
    } == workload_objects
    ready = loop_operator.kubectl(
        *MANAGEMENT,
        "-n",
        "lab-web",
        "get",
        "deployment",
        "cache",
        "-o",
        "jsonpath={.status.readyReplicas}",
    )
    assert ready.stdout == "1"
