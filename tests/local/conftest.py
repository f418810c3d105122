"""Fixtures: a real Argo CD v3.5.1 API server on loopback with a management and a workload
cluster, and a site ``loop`` that points at them (see harness.py).

Everything lives under one temporary directory used as the operator's HOME; every process is
stopped and checked gone at the end of the session.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lab.config import REPO_ROOT
from lab.loopback import process_group_members
from tests.local.harness import (
    WORKLOAD_ADDRESS,
    Process,
    argocd_binaries,
    bare_repositories,
    control_plane,
    free_port,
    manifest_subset,
    wait_http,
)

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
MANIFEST = REPO_ROOT / "manifests" / "argocd" / "install-v3.5.1.yaml"
NAMESPACE = "argocd"
SITE = "loop"
MANAGEMENT = "loop/k3s"
WORKLOAD = "loop/rke2/gpu"
CLUSTER_NAME = "loop-gpu"
GIT_USER = "git-bot"
GIT_TOKEN = "canary-git-token-6c1e0b9f"


@dataclass
class Harness:
    home: Path
    sites: Path
    kubeconfig: Path  # the operator's, with MANAGEMENT and WORKLOAD
    management_admin: Path
    url: str  # argocd-server --insecure (plain HTTP)
    tls_url: str  # argocd-server with its self-signed certificate
    workload_server: str  # as Argo CD reaches it
    workload_direct: str  # the kubeconfig's own (loopback) URL
    processes: list[Process]

    @property
    def host_port(self) -> str:
        return self.url.removeprefix("http://")

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of an operator command against this harness (no inherited secrets)."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "TIROSH_SITES_DIR": str(self.sites),
            "ARGOCD_INITIAL_SECRET_FROM": "context",
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env

    def kubectl(
        self, context: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), "--context", context, *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def initial_password(self) -> str | None:
        result = self.kubectl(
            MANAGEMENT,
            "-n",
            NAMESPACE,
            "get",
            "secret",
            "argocd-initial-admin-secret",
            "--ignore-not-found",
            "-o",
            "jsonpath={.data.password}",
        )
        return base64.b64decode(result.stdout).decode() if result.stdout else None


def _merge(management: Path, workload: Path, target: Path) -> None:
    """The operator's kubeconfig: both admin kubeconfigs renamed to the site's context names."""
    merged: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": MANAGEMENT,
    }
    clusters, users, contexts = [], [], []
    for source, name in ((management, MANAGEMENT), (workload, WORKLOAD)):
        doc = yaml.safe_load(source.read_text())
        clusters.append({"name": name, "cluster": doc["clusters"][0]["cluster"]})
        users.append({"name": name, "user": doc["users"][0]["user"]})
        contexts.append({"name": name, "context": {"cluster": name, "user": name}})
    merged.update(clusters=clusters, users=users, contexts=contexts)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch(mode=0o600)
    target.write_text(yaml.safe_dump(merged))


def _site(sites: Path, server: str, workload_server: str) -> None:
    site = sites / SITE
    (site / "k3s").mkdir(parents=True)
    (site / "argocd").mkdir()
    lab = REPO_ROOT / "sites" / "lab"
    shutil.copy(lab / "k3s/vars.yml", site / "k3s/vars.yml")
    shutil.copy(lab / "argocd/vars.yml", site / "argocd/vars.yml")
    (site / "inventory.toml").write_text(
        '[vms.argocd]\nansible_host = "127.0.0.1"\nansible_user = "tirosh"\n'
        'ansible_become_user = "root"\nproxmox_vm_name = "loop"\nworkloads = ["k3s", "argocd"]\n'
    )
    (site / "profile.toml").write_text(f"""
[kube]
kubeconfig = "~/.kube/config"
[kube.contexts]
argocd = "{MANAGEMENT}"
rke2_gpu = "{WORKLOAD}"
[argocd]
target_name = "argocd"
server = "{server}"
login_args = "--plaintext --grpc-web"
auto_port_forward = false
cluster_context = "{WORKLOAD}"
cluster_name = "{CLUSTER_NAME}"
""")
    (site / "argocd/clusters.toml").write_text(
        f'[[clusters]]\ncontext = "{WORKLOAD}"\nname = "{CLUSTER_NAME}"\nserver = "{workload_server}"\n'
    )


def _start_argocd(tmp: Path, admin: Path, redis_port: int) -> tuple[list[Process], str, str]:
    links = argocd_binaries(tmp / "bin")
    env = dict(os.environ, HOME=str(tmp), ARGOCD_GPG_ENABLED="false")
    for name in ("gnupg", "tls", "ssh", "plugins"):
        (tmp / name).mkdir(mode=0o700)
    env.update(
        ARGOCD_GNUPGHOME=str(tmp / "gnupg"),
        ARGOCD_TLS_DATA_PATH=str(tmp / "tls"),
        ARGOCD_SSH_DATA_PATH=str(tmp / "ssh"),
        ARGOCD_PLUGINSOCKFILEPATH=str(tmp / "plugins"),
    )
    repo_port, plain_port, tls_port = free_port(), free_port(), free_port()
    redis = f"127.0.0.1:{redis_port}"
    repo = Process(
        [
            str(links["argocd-repo-server"]),
            "--disable-tls",
            "--client-ca-path",
            "",
            "--port",
            str(repo_port),
            "--metrics-port",
            str(free_port()),
            "--redis",
            redis,
            "--address",
            "127.0.0.1",
        ],
        tmp / "repo-server.log",
        env,
        tmp,
    )
    common = [
        "--kubeconfig",
        str(admin),
        "--namespace",
        NAMESPACE,
        "--redis",
        redis,
        "--repo-server",
        f"127.0.0.1:{repo_port}",
        "--repo-server-plaintext",
        "--dex-server",
        "http://127.0.0.1:1",
        "--staticassets",
        str(tmp / "no-assets"),
    ]
    plain = Process(
        [
            str(links["argocd-server"]),
            "--insecure",
            "--port",
            str(plain_port),
            "--address",
            "127.0.0.1",
            "--metrics-port",
            str(free_port()),
            *common,
        ],
        tmp / "argocd-server.log",
        env,
        tmp,
    )
    url = f"http://127.0.0.1:{plain_port}"
    wait_http(f"{url}/api/version", plain)
    # Started after the first: both would race to generate the same argocd-secret keys.
    tls = Process(
        [
            str(links["argocd-server"]),
            "--port",
            str(tls_port),
            "--address",
            "127.0.0.1",
            "--metrics-port",
            str(free_port()),
            *common,
        ],
        tmp / "argocd-server-tls.log",
        env,
        tmp,
    )
    return [repo, plain, tls], url, f"https://127.0.0.1:{tls_port}"


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp = tmp_path_factory.mktemp("argocd")
    processes: list[Process] = []
    try:
        with (
            control_plane(tmp / "mgmt-cp") as admin,
            control_plane(tmp / "work-cp", [WORKLOAD_ADDRESS]) as workload_admin,
        ):
            home = tmp / "home"
            kubeconfig = home / ".kube" / "config"
            _merge(admin, workload_admin, kubeconfig)
            subset = tmp / "argocd-subset.yaml"
            manifest_subset(MANIFEST, subset)
            base = [KUBECTL, "--kubeconfig", str(admin)]
            subprocess.run(
                [*base, "create", "namespace", NAMESPACE], check=True, capture_output=True
            )
            subprocess.run(
                [
                    *base,
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "-n",
                    NAMESPACE,
                    "-f",
                    str(subset),
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
            redis_port = free_port()
            processes.append(
                Process(
                    [
                        "redis-server",
                        "--port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ],
                    tmp / "redis.log",
                    dict(os.environ),
                    tmp,
                )
            )
            direct = yaml.safe_load(workload_admin.read_text())["clusters"][0]["cluster"]["server"]
            port = direct.rsplit(":", 1)[1]
            relay = Process(
                [
                    sys.executable,
                    "-m",
                    "tests.local.relay",
                    WORKLOAD_ADDRESS,
                    port,
                    "127.0.0.1",
                    port,
                ],
                tmp / "relay.log",
                dict(os.environ),
                REPO_ROOT,
            )
            processes.append(relay)
            started, url, tls_url = _start_argocd(tmp, admin, redis_port)
            processes.extend(started)
            wait_http(f"{tls_url}/api/version", started[2])
            sites = tmp / "sites"
            workload_server = f"https://{WORKLOAD_ADDRESS}:{port}"
            _site(sites, url.removeprefix("http://"), workload_server)
            yield Harness(
                home, sites, kubeconfig, admin, url, tls_url, workload_server, direct, processes
            )
    finally:
        for process in reversed(processes):
            process.stop()
        left = [m for p in processes for m in process_group_members(p.popen.pid)]
        assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Git smart-HTTP server (tests/local/gitserver.py): /public/gitops.git for
    anyone, /private/gitops.git for GIT_USER with GIT_TOKEN."""
    tmp = tmp_path_factory.mktemp("git")
    bare_repositories(tmp / "repos", tmp / "work")
    port = free_port()
    server = Process(
        [sys.executable, "-m", "tests.local.gitserver", str(tmp / "repos"), str(port), GIT_USER],
        tmp / "gitserver.log",
        dict(os.environ),
        REPO_ROOT,
        stdin=GIT_TOKEN + "\n",
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/public/gitops.git/info/refs", server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
