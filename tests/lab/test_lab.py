"""The lab itself: booted hosts over SSH, systemd, and a real control plane behind the stand-in."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lab import config, hosts, versions
from tests.lab.operator import Operator
from tests.terminal import run_in_a_terminal

pytestmark = pytest.mark.lab
MANIFEST = config.REPO_ROOT / "manifests" / "argocd" / f"install-{versions.ARGOCD}.yaml"
RKE2 = config.host("rke2-gpu")


def ssh(name: str, command: str) -> str:
    result = subprocess.run(
        [*hosts.ssh_command(config.host(name)), command], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def rke2_kubeconfig(lab: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in's admin kubeconfig, pointed at the host address from the operator side."""
    kubeconfig = yaml.safe_load(ssh("rke2-gpu", "sudo cat /etc/rancher/rke2/rke2.yaml"))
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://{RKE2.address}:6443"
    path = tmp_path_factory.mktemp("rke2") / "kubeconfig"
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(kubeconfig))
    return path


@pytest.mark.parametrize("name", [h.name for h in config.HOSTS])
def test_each_host_is_a_booted_system_reached_over_ssh_as_a_sudo_user(
    lab: object, name: str
) -> None:
    assert ssh(name, "hostname") == name
    assert ssh(name, "id -un") == config.LOGIN_USER
    assert ssh(name, "sudo -n id -u") == "0"
    assert ssh(name, "ps -p 1 -o comm=") == "systemd"
    assert ssh(name, "systemctl is-active ssh.service") == "active"


def test_hosts_reach_each_other_on_the_lab_network(lab: object) -> None:
    assert ssh("rke2-gpu", "ip -4 -o addr show host0").split()[3] == f"{RKE2.address}/24"
    # argocd-server on the management VM will call the workload cluster's API: it must be reachable.
    probe = f"curl -sk -o /dev/null -w '%{{http_code}}' https://{RKE2.address}:6443/livez"
    assert ssh("argocd", probe) in ("200", "401", "403")
    # No route beyond the lab: hosts have no default gateway.
    assert "default" not in ssh("argocd", "ip -4 route")


def test_rke2_standin_is_a_systemd_service_with_a_k3s_style_kubeconfig(lab: object) -> None:
    assert ssh("rke2-gpu", "systemctl is-active rke2-server.service") == "active"
    assert ssh("rke2-gpu", "sudo stat -c %a /etc/rancher/rke2/rke2.yaml") == "600"
    kubeconfig = yaml.safe_load(ssh("rke2-gpu", "sudo cat /etc/rancher/rke2/rke2.yaml"))
    assert [c["name"] for c in kubeconfig["clusters"]] == ["default"]
    assert [u["name"] for u in kubeconfig["users"]] == ["default"]
    assert [c["name"] for c in kubeconfig["contexts"]] == ["default"]
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert ssh("rke2-gpu", "rke2 --version").startswith("rke2 version v1.37.2+rke2r1")


def test_apiserver_answers_from_the_operator_side_via_its_tls_san(
    operator: Operator, rke2_kubeconfig: Path
) -> None:
    # No insecure-skip-tls-verify: the serving certificate must carry the host address.
    version = operator.kubectl("--kubeconfig", str(rke2_kubeconfig), "version", "-o", "yaml")
    assert "gitVersion: v1.37.2" in version.stdout.split("serverVersion:")[1]
    nodes = operator.kubectl("--kubeconfig", str(rke2_kubeconfig), "get", "nodes", "-o", "yaml")
    assert "role: gpu" in nodes.stdout


def test_controller_manager_fills_service_account_token_secrets(
    operator: Operator, rke2_kubeconfig: Path
) -> None:
    kc = ("--kubeconfig", str(rke2_kubeconfig))
    operator.kubectl(*kc, "-n", "kube-system", "create", "serviceaccount", "lab-probe")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {
            "name": "lab-probe-token",
            "namespace": "kube-system",
            "annotations": {"kubernetes.io/service-account.name": "lab-probe"},
        },
    }
    manifest = Path(rke2_kubeconfig).with_name("secret.yaml")
    manifest.write_text(yaml.safe_dump(secret))
    operator.kubectl(*kc, "apply", "-f", str(manifest))
    token = ""
    for _ in range(60):
        token = operator.kubectl(
            *kc,
            "-n",
            "kube-system",
            "get",
            "secret",
            "lab-probe-token",
            "-o",
            "jsonpath={.data.token}",
        ).stdout
        if token:
            break
        time.sleep(0.5)
    assert len(token) > 100, "kube-controller-manager did not fill the token Secret"
    root_ca = operator.kubectl(*kc, "-n", "kube-system", "get", "configmap", "kube-root-ca.crt")
    assert root_ca.returncode == 0


def test_argocd_manifest_needs_server_side_apply_and_its_crds_become_established(
    operator: Operator, rke2_kubeconfig: Path
) -> None:
    kc = ("--kubeconfig", str(rke2_kubeconfig))
    # The real API server rejects client-side apply of the ApplicationSet CRD (annotation limit).
    client_side = operator.kubectl(
        *kc, "apply", "-f", str(MANIFEST), "--dry-run=server", check=False
    )
    assert client_side.returncode != 0
    assert "Too long" in client_side.stderr
    operator.kubectl(*kc, "create", "namespace", "argocd-lab-probe")
    operator.kubectl(
        *kc,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-n",
        "argocd-lab-probe",
        "-f",
        str(MANIFEST),
    )
    for crd in (
        "applications.argoproj.io",
        "applicationsets.argoproj.io",
        "appprojects.argoproj.io",
    ):
        operator.kubectl(*kc, "wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


def test_a_second_session_cannot_take_the_lab_over(lab: object) -> None:
    """The session holds the lab: another `make lab-up` or `lab-down` is refused, not obeyed."""
    for command in ("up", "down"):
        result = subprocess.run(
            [sys.executable, "-m", "lab", command],
            cwd=config.REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert "the lab is in use by pid" in result.stderr
    assert ssh("argocd", "hostname") == "argocd"


PREPARE = "from lab import lifecycle; lifecycle.prepare()"
# Every part of the build in its order: the debootstraps' lane, the Go builds', the assembly.
PARTS = (
    "image base",
    "host rootfs",
    "control plane",
    "k3s stand-in",
    "node",
    *(f"Argo CD {version}" for version in versions.ARGOCD_BUILDS),
    "CoreDNS",
    "Dex",
    "Traefik",
    "images",
    "air-gap archive",
)


def _build_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    return {**env, "TERM": "xterm"}


def test_the_build_shows_each_part_cached_in_a_pipe(lab: object) -> None:
    """What `python -m lab build` prints in CI and logs, once everything is cached: one plain
    line per part (the lab's lock is this session's, so prepare() runs without it)."""
    result = subprocess.run(
        [sys.executable, "-c", PREPARE],
        cwd=config.REPO_ROOT,
        env=_build_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"lab build: {len(PARTS)} parts, every one cached"
    assert lines[1:-1] == [f"lab build: {part}: cached" for part in PARTS]
    assert re.fullmatch(
        rf"lab build: finished in \d+ s \(0 built, {len(PARTS)} cached\)", lines[-1]
    )
    assert "\x1b" not in result.stderr


def test_the_build_shows_each_part_cached_under_a_bar_on_a_terminal(lab: object) -> None:
    code, output = run_in_a_terminal([sys.executable, "-c", PREPARE], _build_environment())
    assert code == 0, output
    last = output[output.rindex("\x1b[J") :].replace("\x1b[J", "").replace("\x1b[2K", "")
    block = last.splitlines()
    assert block[: len(PARTS)] == [f"  = {part}: cached" for part in PARTS]
    assert re.fullmatch(r"\[#{30}\] 100%  elapsed 0:\d\d, ≈ 0 s left", block[len(PARTS)])
