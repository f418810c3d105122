"""A real Argo CD on loopback for the local phase's tests.

Two loopback control planes (lab/loopback.py's k3s stand-in: kube-apiserver, kube-controller-
manager, kine): the management cluster, which gets Argo CD v3.5.1's CRDs, ConfigMaps, Secrets
and RBAC from the official manifest, and a workload cluster. On this machine run the real
``argocd-server`` and ``argocd-repo-server`` (the multi-call binary of ``lab.build.argocd()``
invoked by name) against the management cluster, with Debian's ``redis-server`` as their cache.

The workload cluster's API listens on 127.0.0.1 only; Argo CD reaches it as
``https://127.0.0.2:<port>`` (in its certificate's SANs) through a small TCP relay, the way a
site declares the address Argo CD reaches instead of the kubeconfig's loopback one.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from lab import build
from lab.loopback import LOOPBACK, _prepare_root, _stop, _wait_ready, free_port_base

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


@contextmanager
def control_plane(tmp: Path, tls_sans: list[str] | None = None) -> Iterator[Path]:
    """lab.loopback.loopback_cluster with extra certificate SANs; yields the admin kubeconfig."""
    root = tmp / "root"
    k3s = _prepare_root(root, build.controlplane(), build.standin())
    if tls_sans:
        config_file = root / "etc/rancher/k3s/config.yaml"
        settings = yaml.safe_load(config_file.read_text())
        settings["tls-san"] = tls_sans
        config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    base = free_port_base()
    env = dict(os.environ, TIROSH_LAB_ROOT=str(root), TIROSH_LAB_PORT_BASE=str(base))
    env.pop("NOTIFY_SOCKET", None)
    log = tmp / "k3s.log"
    kubeconfig = root / "etc/rancher/k3s/k3s.yaml"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(k3s), "server"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
    try:
        _wait_ready(process, kubeconfig, log)
        yield kubeconfig
    finally:
        try:
            _stop(process, log)
        finally:
            shutil.rmtree(root, ignore_errors=True)


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
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
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
    for name in ("argocd-server", "argocd-repo-server"):
        link = directory / name
        link.symlink_to(binary)
        links[name] = link
    return links


def bare_repositories(root: Path, work: Path) -> None:
    """``root/public/gitops.git``, ``root/private/gitops.git`` and ``root/private/other.git``."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    work.mkdir(parents=True)
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    (work / "README").write_text("gitops\n")
    subprocess.run([*git, "-C", str(work), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "first"], check=True)
    for path in ("public/gitops.git", "private/gitops.git", "private/other.git"):
        bare = root / path
        subprocess.run([*git, "clone", "-q", "--bare", str(work), str(bare)], check=True)
