"""A real Argo CD on loopback for the local phase's tests.

Two loopback control planes (lab/loopback.py's k3s stand-in: kube-apiserver, kube-controller-
manager, kine): the management cluster, which gets Argo CD v3.5.8's CRDs, ConfigMaps, Secrets
and RBAC from the official manifest, and a workload cluster. On this machine run the real
``argocd-server`` and ``argocd-repo-server`` (the multi-call binary of ``lab.build.argocd()``
invoked by name) against the management cluster, with Debian's ``redis-server`` as their cache.

The workload cluster's API listens on 127.0.0.1 only; Argo CD reaches it as
``https://127.0.0.2:<port>`` (in its certificate's SANs) through a small TCP relay, the way a
site declares the address Argo CD reaches instead of the kubeconfig's loopback one.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab import build
from lab.config import REPO_ROOT
from lab.loopback import LOOPBACK, loopback_cluster, process_group_members

WORKLOAD_ADDRESS = "127.0.0.2"
MANIFEST_KINDS = (
    "CustomResourceDefinition",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def control_plane(tmp: Path, tls_sans: list[str] | None = None) -> AbstractContextManager[Path]:
    """A loopback control plane (lab.loopback) with extra certificate SANs; yields its admin
    kubeconfig."""
    return loopback_cluster(tmp, tls_sans)


class Process:
    """A background process in its own session, its output in a log file; stopped as a group."""

    def __init__(
        self, argv: list[str], log: Path, env: dict[str, str], cwd: Path, stdin: str | None = None
    ) -> None:
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        if stdin is not None:
            assert self.popen.stdin is not None
            self.popen.stdin.write(stdin.encode())
            self.popen.stdin.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()


def wait_http(url: str, process: Process, timeout: float = 90.0) -> None:
    """Until ``url`` answers at all (any HTTP status), or fail with the process's log."""
    # Readiness only: a self-signed certificate is fine here (the tests check verification).
    unverified = ssl.create_default_context()
    unverified.check_hostname, unverified.verify_mode = False, ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=unverified)
    )
    deadline = time.monotonic() + timeout
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(
                f"{process.log.name} exited with {process.popen.returncode}:\n{process.tail()}"
            )
        try:
            with opener.open(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not answering after {timeout:g}s:\n{process.tail()}")
        time.sleep(0.3)


def manifest_subset(manifest: Path, target: Path) -> None:
    """The manifest's documents of MANIFEST_KINDS: what argocd-server needs in the cluster."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [
        d
        for d in yaml.load_all(manifest.read_text(), Loader=loader)
        if d and d["kind"] in MANIFEST_KINDS
    ]
    target.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def argocd_binaries(directory: Path) -> dict[str, Path]:
    """Links named argocd-server and argocd-repo-server to the multi-call binary."""
    binary = build.argocd()
    directory.mkdir(parents=True, exist_ok=True)
    links = {}
    # "argocd" too: repo-server runs git with GIT_ASKPASS=argocd (argocd-git-ask-pass mode).
    for name in ("argocd", "argocd-server", "argocd-repo-server", "argocd-application-controller"):
        link = directory / name
        link.symlink_to(binary)
        links[name] = link
    # The image's hack/git-verify-wrapper.sh, which repo-server runs for every revision: the
    # output of `git verify-commit`, with "no signature" not an error.
    wrapper = directory / "git-verify-wrapper.sh"
    wrapper.write_text('#!/bin/sh\ngit verify-commit "$1" 2>&1\nexit 0\n')
    wrapper.chmod(0o755)
    return links


def bare_repositories(root: Path, work: Path, extra: tuple[str, ...] = ()) -> None:
    """``root/public/gitops.git``, ``root/private/gitops.git`` and ``root/private/other.git``."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    work.mkdir(parents=True)
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    (work / "README").write_text("gitops\n")
    (work / "apps").mkdir()
    (work / "apps" / "configmap.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: synced-by-argocd\n"
        "  namespace: default\ndata:\n  from: gitops\n"
    )
    subprocess.run([*git, "-C", str(work), "add", "README", "apps"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "first"], check=True)
    for path in ("public/gitops.git", "private/gitops.git", "private/other.git", *extra):
        bare = root / path
        subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)


KUBECTL = str(Path(sys.executable).with_name("kubectl"))
MANIFEST = REPO_ROOT / "manifests" / "argocd" / "install-v3.5.8.yaml"
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


def _start_argocd(
    tmp: Path, admin: Path, redis_port: int, dex_server: str = "http://127.0.0.1:1"
) -> tuple[list[Process], str, str]:
    links = argocd_binaries(tmp / "bin")
    env = dict(os.environ, HOME=str(tmp), ARGOCD_GPG_ENABLED="false")
    env["PATH"] = f"{tmp / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    for name in ("gnupg", "tls", "ssh", "plugins", "tmp"):
        (tmp / name).mkdir(mode=0o700)
    env.update(
        ARGOCD_GNUPGHOME=str(tmp / "gnupg"),
        ARGOCD_TLS_DATA_PATH=str(tmp / "tls"),
        ARGOCD_SSH_DATA_PATH=str(tmp / "ssh"),
        ARGOCD_PLUGINSOCKFILEPATH=str(tmp / "plugins"),
        # repo-server clones into $TMPDIR/_argocd-repo: this harness's own, removed with it.
        TMPDIR=str(tmp / "tmp"),
        # Default /tmp/reposerver-ask-pass.sock: shared by every repo-server on the machine.
        ARGOCD_ASK_PASS_SOCK=str(tmp / "plugins" / "ask-pass.sock"),
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
        dex_server,
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
    # The application controller syncs Applications to registered clusters (the proof that a
    # registered cluster and repository work); without a kubelet only Pod-less objects go live.
    controller = Process(
        [
            str(links["argocd-application-controller"]),
            "--kubeconfig",
            str(admin),
            "--namespace",
            NAMESPACE,
            "--redis",
            redis,
            "--repo-server",
            f"127.0.0.1:{repo_port}",
            "--repo-server-plaintext",
            "--metrics-port",
            str(free_port()),
        ],
        tmp / "application-controller.log",
        env,
        tmp,
    )
    return [repo, plain, tls, controller], url, f"https://127.0.0.1:{tls_port}"


@contextmanager
def argocd_harness(
    tmp: Path,
    workload_addresses: tuple[str, ...] = (WORKLOAD_ADDRESS,),
    dex_server: str = "http://127.0.0.1:1",
) -> Iterator[Harness]:
    """The whole harness under ``tmp``; every process stopped and checked gone afterwards.

    The workload cluster is reachable by Argo CD at each of ``workload_addresses`` (one relay
    each); the site declares the first.
    """
    processes: list[Process] = []
    try:
        with (
            control_plane(tmp / "mgmt-cp") as admin,
            control_plane(tmp / "work-cp", list(workload_addresses)) as workload_admin,
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
            for address in workload_addresses:
                processes.append(
                    Process(
                        [
                            sys.executable,
                            "-m",
                            "lab.relay",
                            address,
                            port,
                            "127.0.0.1",
                            port,
                        ],
                        tmp / f"relay-{address}.log",
                        dict(os.environ),
                        REPO_ROOT,
                    )
                )
            started, url, tls_url = _start_argocd(tmp, admin, redis_port, dex_server)
            processes.extend(started)
            wait_http(f"{tls_url}/api/version", started[2])
            sites = tmp / "sites"
            workload_server = f"https://{workload_addresses[0]}:{port}"
            _site(sites, url.removeprefix("http://"), workload_server)
            yield Harness(
                home, sites, kubeconfig, admin, url, tls_url, workload_server, direct, processes
            )
    finally:
        for process in reversed(processes):
            process.stop()
        left = [m for p in processes for m in process_group_members(p.popen.pid)]
        assert not left, f"processes left behind: {left}"


@contextmanager
def git_http_server(tmp: Path, repositories: tuple[str, ...] = ()) -> Iterator[str]:
    """Base URL of a Git smart-HTTP server (lab/gitserver.py): /public/gitops.git for
    anyone, /private/gitops.git and /private/other.git for GIT_USER with GIT_TOKEN, and each
    of ``repositories`` (paths such as public/r01.git)."""
    bare_repositories(tmp / "repos", tmp / "work", repositories)
    port = free_port()
    server = Process(
        [sys.executable, "-m", "lab.gitserver", str(tmp / "repos"), str(port), GIT_USER],
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
