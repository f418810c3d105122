"""Argo CD running in the lab (the lab site's pin, lab/versions.py ARGOCD): Pods on the argocd host, the API through the site's path.

Runs after test_argocd_deploy (see conftest.py), when the deploy has installed Argo CD and the
k3s stand-in on the argocd host is a node (containerd, kubelet, CoreDNS, Traefik). The site's
path is https://gitops.lab.test -> Caddy on the edge host (lab CA) -> Traefik on the argocd
host's port 80 -> argocd-server (server.insecure). The name is resolved by this test alone
(urllib3 connects to the edge address and sends the name as SNI and Host), never by
/etc/hosts, and the lab CA is trusted only for these requests.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml

from lab import config, edge, hosts, images
from lab import versions as lab_versions
from tests.lab.operator import KUBECTL, Operator
from tirosh import argocd

pytestmark = pytest.mark.lab
CONTEXT = ("--context", "lab/k3s")
EDGE = config.host(config.EDGE_HOST).address
VERSION_PREFIX = f"{lab_versions.ARGOCD}+"


def kubectl_json(operator: Operator, *args: str) -> Any:
    return json.loads(operator.kubectl(*CONTEXT, *args, "-o", "json").stdout)


def via_proxy(path: str, timeout: float = 10) -> urllib3.BaseHTTPResponse:
    """GET https://gitops.lab.test<path> through the lab's TLS proxy, trusting only the lab CA."""
    pool = urllib3.HTTPSConnectionPool(
        EDGE,
        443,
        server_hostname=edge.ARGOCD_SERVER_NAME,
        assert_hostname=edge.ARGOCD_SERVER_NAME,
        ca_certs=str(edge.SECRETS.ca_cert),
        cert_reqs="CERT_REQUIRED",
        timeout=timeout,
        retries=False,
    )
    try:
        return pool.request("GET", path, headers={"Host": edge.ARGOCD_SERVER_NAME}, redirect=False)
    finally:
        pool.close()


def wait_until(what: str, check: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(1)


def proxy_version() -> str | None:
    try:
        response = via_proxy("/api/version")
    except urllib3.exceptions.HTTPError:
        return None
    if response.status != 200:
        return None
    version: str = json.loads(response.data)["Version"]
    return version


# --------------------------------------------------------------------------- rollout


def _workloads() -> list[argocd.ManifestObject]:
    manifest = argocd.read_manifest(
        config.REPO_ROOT / f"manifests/argocd/install-{lab_versions.ARGOCD}.yaml"
    )
    return [o for o in manifest.objects if o.kind in ("Deployment", "StatefulSet")]


def test_every_argocd_workload_rolls_out_and_is_ready(operator: Operator) -> None:
    started = time.monotonic()
    workloads = _workloads()
    assert len(workloads) == 7
    for workload in workloads:
        operator.run(
            KUBECTL,
            *CONTEXT,
            "-n",
            "argocd",
            "rollout",
            "status",
            f"{workload.kind}/{workload.name}",
            "--timeout=600s",
            timeout=660,
        )
        status = kubectl_json(operator, "-n", "argocd", "get", workload.kind, workload.name)
        desired = status["spec"].get("replicas", 1)
        assert status["status"].get("readyReplicas", 0) == desired >= 1, workload.name
    print(f"\nArgo CD rollout ready {time.monotonic() - started:.1f}s after the tests reached it")


def test_status_is_healthy_and_exits_0(operator: Operator) -> None:
    result = operator.run("make", "-s", "argocd/status", "SITE=lab", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for workload in _workloads():
        assert f"{workload.kind} {workload.name}: 1/1 ready" in result.stdout, workload.name
    assert "not healthy" not in result.stdout


def test_dex_server_runs_the_labs_dex_and_stays_up(operator: Operator) -> None:
    """The dex container has a real Dex on PATH (rundex checks that before anything else) and
    has not restarted: without SSO configured Argo CD does not start it."""
    version = operator.kubectl(
        *CONTEXT,
        "-n",
        "argocd",
        "exec",
        "deploy/argocd-dex-server",
        "-c",
        "dex",
        "--",
        "dex",
        "version",
    )
    assert f"Version: {lab_versions.DEX}" in version.stdout, version.stdout
    pod = kubectl_json(
        operator, "-n", "argocd", "get", "pods", "-l", "app.kubernetes.io/name=argocd-dex-server"
    )["items"][0]
    dex = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "dex")
    assert dex["ready"] and dex["restartCount"] == 0, dex


def test_every_pod_image_came_from_the_lab_not_from_outside(operator: Operator) -> None:
    """Each container's image digest is one the lab assembled; the hosts have no route out."""
    ours = images.digests(images.ensure())
    pods = kubectl_json(operator, "get", "pods", "--all-namespaces")["items"]
    seen = 0
    for pod in pods:
        statuses = pod["status"].get("containerStatuses", []) + pod["status"].get(
            "initContainerStatuses", []
        )
        for container in statuses:
            digest = container["imageID"].rsplit("@", 1)[-1]
            assert digest in ours, f"{pod['metadata']['name']}/{container['name']}: {container}"
            seen += 1
    assert seen >= 9
    routes = subprocess.run(
        [*hosts.ssh_command(config.host("argocd")), "ip", "-4", "route", "show", "default"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert routes.stdout.strip() == ""


# --------------------------------------------------------------------------- the API


@pytest.fixture
def port_forward(operator: Operator) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        ["make", "-s", "argocd/port-forward", "SITE=lab"],
        cwd=config.REPO_ROOT,
        env=operator.environ(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_api_version_through_port_forward(port_forward: subprocess.Popen[str]) -> None:
    http = urllib3.PoolManager(retries=False, timeout=5)
    answer: dict[str, Any] = {}

    def answered() -> bool:
        try:
            response = http.request("GET", "http://127.0.0.1:8080/api/version")
        except urllib3.exceptions.HTTPError:
            return False
        answer.update(json.loads(response.data))
        return response.status == 200

    wait_until("port-forward answers", answered, timeout=60)
    assert answer["Version"].startswith(VERSION_PREFIX)


def test_api_version_through_the_tls_proxy_and_traefik() -> None:
    wait_until("https://gitops.lab.test/api/version", lambda: proxy_version() is not None)
    version = proxy_version()
    assert version is not None and version.startswith(VERSION_PREFIX)


def test_the_proxy_certificate_is_not_trusted_without_the_lab_ca() -> None:
    with socket.create_connection((EDGE, 443), timeout=5) as raw:
        context = ssl.create_default_context()  # the machine's trust store only
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname=edge.ARGOCD_SERVER_NAME)


def test_server_insecure_false_breaks_the_proxy_path_and_true_restores_it(
    operator: Operator, tmp_path: Path
) -> None:
    """With server.insecure=false argocd-server answers Traefik's plain HTTP with a redirect to
    HTTPS on the same URL: behind a TLS proxy that is Argo CD's well-known redirect loop."""

    def server() -> Any:
        return kubectl_json(operator, "-n", "argocd", "get", "deployment", "argocd-server")

    def rolled_out() -> bool:
        status = server()["status"]
        return status.get("updatedReplicas") == status.get("readyReplicas") == 1 and not status.get(
            "unavailableReplicas"
        )

    sites = tmp_path / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    vars_file = sites / "lab" / "argocd" / "vars.yml"
    data = yaml.safe_load(vars_file.read_text())
    data["argocd_server_insecure"] = False
    vars_file.write_text(yaml.safe_dump(data))
    secure = Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})

    generation = server()["metadata"]["generation"]
    secure.deploy(deploy_file="deploys/argocd.py")
    assert server()["metadata"]["generation"] == generation + 1
    wait_until("argocd-server restarted", rolled_out)

    # Traefik may still send a request to the old Pod while it terminates: wait until the
    # answers are redirects three times in a row, and keep the last.
    answers: list[urllib3.BaseHTTPResponse] = []

    def redirected() -> bool:
        try:
            response = via_proxy("/api/version")
        except urllib3.exceptions.HTTPError:
            answers.clear()
            return False
        if response.status not in (301, 302, 307, 308):
            answers.clear()
            return False
        answers.append(response)
        return len(answers) >= 3

    wait_until("argocd-server redirects the proxied request", redirected, timeout=120)
    location = answers[-1].headers["Location"]
    # The redirect points at the very URL the client asked for: following it loops.
    assert location == f"https://{edge.ARGOCD_SERVER_NAME}/api/version", location

    operator.deploy(deploy_file="deploys/argocd.py")
    assert server()["metadata"]["generation"] == generation + 2
    wait_until("argocd-server restarted", rolled_out)
    wait_until("the proxy path answers again", lambda: proxy_version() is not None)
