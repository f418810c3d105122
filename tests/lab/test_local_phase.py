"""The local phase against the lab's Argo CD (v3.5.8), as an operator runs it.

Runs after test_git_server (see conftest.py): Argo CD is running and the edge host serves Git.
A copy of the lab site declares what tirosh-home would: the workload cluster of the profile
(lab/rke2/gpu as lab-rke2-gpu) and a private repository over SSH with a deploy key. Then:
the deploy's own local phase registers both (through the profile's automatic port-forward,
logging in with the initial admin password read over SSH); an Application syncs the
repository to the workload cluster; a second deploy changes nothing; the same API answers
through the site's TLS proxy (https://gitops.lab.test, the lab CA trusted for that command
only, the name resolved in a private mount namespace, never in the machine's /etc/hosts).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import config, edge
from local.kube import argocd_manager as cluster_rbac
from tests.lab.operator import Operator, changed_operations

pytestmark = pytest.mark.lab
MANAGEMENT = ("--context", "lab/k3s")
WORKLOAD = ("--context", "lab/rke2/gpu")
REPO_URL = f"git@{edge.GIT_SERVER_NAME}:private/gitops.git"
CLUSTER = "lab-rke2-gpu"
PHASE_OP = "Local phase: clusters, repositories, Secrets"
EDGE = config.host(config.EDGE_HOST).address


def _repositories_toml() -> str:
    # The edge's host key as lab-up recorded it ("git.lab.test,198.51.100.12 <type> <key>"),
    # pinned in the site like an operator pins GitHub's.
    _, key_type, key = (edge.SECRETS.directory / "ssh_known_hosts").read_text().split()[:3]
    return (
        "[[repositories]]\n"
        'name = "lab-gitops"\n'
        f'url = "{REPO_URL}"\n'
        f'ssh_key_file = "{edge.SECRETS.deploy_key}"\n'
        f'ssh_known_hosts = ["{edge.GIT_SERVER_NAME} {key_type} {key}"]\n'
    )


@pytest.fixture(scope="module")
def phase_operator(
    operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    sites = tmp_path_factory.mktemp("phase") / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    argocd_dir = sites / "lab" / "argocd"
    (argocd_dir / "clusters.toml").unlink()  # the profile's cluster_context / cluster_name
    (argocd_dir / "repositories.toml").write_text(_repositories_toml())
    yield Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})
    _forget(operator)


def _forget(operator: Operator) -> None:
    """Leave Argo CD and the workload cluster as the lab site declares them: nothing."""
    operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "delete",
        "application",
        "lab-gitops",
        "--ignore-not-found",
        "--wait=true",
        check=False,
    )
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
    operator.kubectl(
        *WORKLOAD,
        "delete",
        "namespace",
        "lab-gitops",
        "--ignore-not-found",
        "--wait=false",
        check=False,
    )


def kubectl_json(operator: Operator, *args: str) -> Any:
    return json.loads(operator.kubectl(*args, "-o", "json").stdout)


def _port_forwards() -> list[str]:
    found = subprocess.run(
        ["pgrep", "-af", "kubectl.*port-forward"], capture_output=True, text=True
    )
    return found.stdout.splitlines()


def _secret_of(operator: Operator, kind: str) -> list[dict[str, Any]]:
    items = kubectl_json(
        operator,
        *MANAGEMENT,
        "-n",
        "argocd",
        "get",
        "secrets",
        "-l",
        f"argocd.argoproj.io/secret-type={kind}",
    )["items"]
    return [
        {k: base64.b64decode(v).decode() for k, v in item.get("data", {}).items()} for item in items
    ]


def test_the_deploys_local_phase_registers_the_cluster_and_the_ssh_repository(
    phase_operator: Operator,
) -> None:
    before = _port_forwards()
    started = time.monotonic()
    result = phase_operator.deploy()
    print(
        f"\nfull deploy with the local phase registering 1 cluster + 1 repository: "
        f"{time.monotonic() - started:.1f} s"
    )
    assert f"cluster {CLUSTER}: create" in result.stdout + result.stderr
    assert "lab-gitops: connection Successful" in result.stdout + result.stderr
    # The automatic port-forward was stopped with the command.
    assert _port_forwards() == before

    [cluster] = _secret_of(phase_operator, "cluster")
    assert cluster["name"] == CLUSTER
    assert cluster["server"] == "https://198.51.100.11:6443"
    tls = json.loads(cluster["config"])
    assert tls["bearerToken"] and "caData" in tls["tlsClientConfig"]
    # A ServiceAccount token, never the admin's client certificate or key.
    assert not {"certData", "keyData"} & set(tls["tlsClientConfig"])
    [repository] = _secret_of(phase_operator, "repository")
    assert repository["url"] == REPO_URL and repository["sshPrivateKey"].startswith("-----BEGIN")
    # What the workload cluster holds for Argo CD: its own ServiceAccount, role and token.
    for kind, name in (
        ("serviceaccount", cluster_rbac.MANAGER),
        ("clusterrole", cluster_rbac.ROLE),
        ("clusterrolebinding", cluster_rbac.BINDING),
        ("secret", cluster_rbac.TOKEN_SECRET),
    ):
        found = phase_operator.kubectl(
            *WORKLOAD, "-n", "kube-system", "get", kind, name, check=False
        )
        assert found.returncode == 0, (
            f"{kind}/{name} missing on the workload cluster: {found.stderr}"
        )


def test_an_application_syncs_the_repository_to_the_workload_cluster(
    phase_operator: Operator, tmp_path: Path
) -> None:
    application = tmp_path / "application.json"
    application.write_text(
        json.dumps(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": "lab-gitops", "namespace": "argocd"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": REPO_URL, "targetRevision": "main", "path": "rke2-gpu"},
                    "destination": {"name": CLUSTER, "namespace": "lab-gitops"},
                    "syncPolicy": {"automated": {}},
                },
            }
        )
    )
    phase_operator.kubectl(*MANAGEMENT, "apply", "-f", str(application))
    deadline = time.monotonic() + 180
    while True:
        status = kubectl_json(
            phase_operator, *MANAGEMENT, "-n", "argocd", "get", "application", "lab-gitops"
        ).get("status", {})
        if status.get("sync", {}).get("status") == "Synced":
            break
        assert time.monotonic() < deadline, json.dumps(status)[:2000]
        time.sleep(2)
    greeting = phase_operator.kubectl(
        *WORKLOAD,
        "-n",
        "lab-gitops",
        "get",
        "configmap",
        "hello",
        "-o",
        "jsonpath={.data.greeting}",
    )
    assert greeting.stdout == "hello from the lab's GitOps repository"


def _known_hosts(operator: Operator) -> str:
    return operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "get",
        "configmap",
        "argocd-ssh-known-hosts-cm",
        "-o",
        "jsonpath={.data.ssh_known_hosts}",
    ).stdout


def test_a_second_deploy_changes_nothing_and_keeps_the_added_host_key(
    phase_operator: Operator,
) -> None:
    # The install's re-apply would take argocd-ssh-known-hosts-cm's data back (the manifest
    # ships defaults) and drop the key the phase added: it is created once, then Argo CD's.
    assert changed_operations(phase_operator.plan()) == []
    result = phase_operator.deploy()
    assert "known hosts: create" not in result.stdout
    assert f"{edge.GIT_SERVER_NAME} ssh-ed25519" in _known_hosts(phase_operator)
    # With an Application using it, Argo CD reports the cluster's connection (its application
    # controller refreshes cluster info every few seconds): the doctor reads it.
    deadline = time.monotonic() + 120
    while True:
        # (the doctor itself fails: rke2-gpu runs no kubelet, so no node is Ready)
        doctor = phase_operator.run("make", "-s", "argocd/doctor", "SITE=lab", check=False)
        if f"ok    cluster {CLUSTER}: https://198.51.100.11:6443: Successful" in doctor.stdout:
            break
        assert time.monotonic() < deadline, doctor.stdout
        time.sleep(5)
    # Nothing differs: nothing is written, and Argo CD is not asked (no login, no test).
    added = phase_operator.run("make", "-s", "argocd/cluster/add", "SITE=lab")
    assert not re.search(r": (create|update|delete) ", added.stdout), added.stdout
    assert "connection" not in added.stdout, added.stdout
    result = phase_operator.run("make", "-s", "local/phase", "SITE=lab")
    assert f"cluster {CLUSTER}: unchanged" in result.stdout
    assert "lab-gitops: unchanged" in result.stdout
    assert not re.search(r": (create|update|delete) ", result.stdout), result.stdout


def test_argocd_password_reads_the_initial_secret_over_ssh(phase_operator: Operator) -> None:
    shown = phase_operator.run("make", "-s", "argocd/password", "SITE=lab").stdout.strip()
    stored = phase_operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "get",
        "secret",
        "argocd-initial-admin-secret",
        "-o",
        "jsonpath={.data.password}",
    ).stdout
    assert shown == base64.b64decode(stored).decode()


def _through_the_proxy(
    operator: Operator, tmp_path: Path, ca: Path | None
) -> subprocess.CompletedProcess[str]:
    """make argocd/repo/list over https://gitops.lab.test: the name resolves to the edge host in
    this command's own mount namespace; SSL_CERT_FILE trusts the lab CA for it alone."""
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{EDGE} {edge.ARGOCD_SERVER_NAME}\n")
    env = dict(operator.env, ARGOCD_AUTO_PORT_FORWARD="false", ARGOCD_LOGIN_ARGS="")
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return Operator(home=operator.home, env=env).run(
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        str(hosts),
        "make",
        "-s",
        "argocd/repo/list",
        "SITE=lab",
        check=False,
    )


def test_the_api_answers_through_the_sites_tls_proxy(
    phase_operator: Operator, tmp_path: Path
) -> None:
    result = _through_the_proxy(phase_operator, tmp_path, edge.SECRETS.ca_cert)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"lab-gitops  {REPO_URL}  git  Successful" in result.stdout
    # Verification is on: without the lab CA the same command stops with one line.
    untrusted = _through_the_proxy(phase_operator, tmp_path, None)
    assert untrusted.returncode != 0
    assert f"TLS verification of {edge.ARGOCD_SERVER_NAME} failed" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr
    # The machine's own /etc/hosts never learnt the name.
    assert edge.ARGOCD_SERVER_NAME not in Path("/etc/hosts").read_text()
