"""A real control plane on loopback, for tests that need a Kubernetes API and nothing else.

The k3s stand-in (lab/controlplane/cmd/k3s-standin) runs kine, kube-apiserver and
kube-controller-manager directly on this machine, under a private root directory
(TIROSH_LAB_ROOT) and on free ports (TIROSH_LAB_PORT_BASE), listening on 127.0.0.1 only. No
container, no bridge, no SSH: it starts in seconds where the full lab takes minutes. As in the
lab, no kubelet runs, so Pods are stored but never start.

Usage::

    with loopback_cluster(tmp_path) as kubeconfig:  # admin kubeconfig, context "default"
        ...
"""

from __future__ import annotations

import base64
import os
import random
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from lab import build, config
from tirosh.processes import stop_group

__all__ = ["LOOPBACK", "free_port_base", "loopback_cluster", "process_group_members"]

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 90.0
STOP_GRACE = 20.0
# Below Linux's default ephemeral range (32768-60999): a port the kernel hands out to some
# outgoing connection cannot then collide with the one we picked.
_PORT_RANGE = (20000, 32000)
_COMPONENTS = ("kine", "kube-apiserver", "kube-controller-manager", "kubectl")


def free_port_base(count: int = 3, attempts: int = 100) -> int:
    """A port P such that P .. P+count-1 are all free on 127.0.0.1 right now (checked by
    binding each one)."""
    for _ in range(attempts):
        base = random.randrange(*_PORT_RANGE)
        if all(_bindable(base + offset) for offset in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports on {LOOPBACK} in {_PORT_RANGE}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _prepare_root(root: Path, bin_dir: Path, standin: Path) -> Path:
    """Lay out what the stand-in expects under TIROSH_LAB_ROOT; return the k3s to run."""
    lab_bin = root / config.HOST_BIN_DIR.lstrip("/")
    lab_bin.mkdir(parents=True)
    for name in _COMPONENTS:
        (lab_bin / name).symlink_to(bin_dir / name)
    # The stand-in picks its flavour from argv[0]'s basename: it must be "k3s".
    k3s = root / "usr/local/bin/k3s"
    k3s.parent.mkdir(parents=True)
    k3s.symlink_to(standin)
    settings = {
        "bind-address": LOOPBACK,
        # Without these the stand-in advertises (and certifies) this machine's own address;
        # everything of the loopback cluster stays on 127.0.0.1.
        "advertise-address": LOOPBACK,
        "node-ip": LOOPBACK,
        "write-kubeconfig-mode": "0600",
        "node-name": "loopback",
    }
    config_file = root / "etc/rancher/k3s/config.yaml"
    config_file.parent.mkdir(parents=True)
    config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    return k3s


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {log}: {exc})"


def _readyz(kubeconfig: Path) -> bool:
    """True when the API server answers /readyz with 200, authenticated by the kubeconfig."""
    try:
        data = yaml.safe_load(kubeconfig.read_text())
        cluster, user = data["clusters"][0]["cluster"], data["users"][0]["user"]
    except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
        return False  # not (completely) written yet
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    # ssl wants the client certificate and key as files: a private, short-lived directory.
    with tempfile.TemporaryDirectory(prefix="loopback-client-") as tmp:
        cert, key = Path(tmp, "client.crt"), Path(tmp, "client.key")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.touch(mode=0o600)
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        context.load_cert_chain(cert, key)
    # No proxy: this request is for 127.0.0.1 whatever the environment says.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(f"{cluster['server']}/readyz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _wait_ready(process: subprocess.Popen[bytes], kubeconfig: Path, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"k3s stand-in exited with {code} while starting:\n{_tail(log)}")
        if kubeconfig.is_file() and _readyz(kubeconfig):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"loopback control plane not ready after {START_TIMEOUT:.0f}s:\n{_tail(log)}"
            )
        time.sleep(0.5)


def process_group_members(pgid: int) -> list[str]:
    """'pid command' of every process in the process group, zombies included, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        # Fields after "(comm)": state ppid pgrp ...; comm itself may contain spaces.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            members.append(f"{entry.name} {comm} ({fields[0]})")
    return members


def _stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM (the stand-in stops its components in order), then SIGKILL the group."""
    # The stand-in leads its own process group (start_new_session): the SIGKILL reaches any
    # component it failed to stop as well as the stand-in itself.
    stop_group(process, STOP_GRACE, term_group=False)
    deadline = time.monotonic() + 10
    while (left := process_group_members(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        raise AssertionError(
            f"processes left behind by the loopback control plane: {left}\n{_tail(log)}"
        )


@contextmanager
def loopback_cluster(tmp: Path, tls_sans: list[str] | None = None) -> Iterator[Path]:
    """Run a real control plane on 127.0.0.1; yield its admin kubeconfig (context ``default``).

    Everything lives under ``tmp``: ``tmp/root`` (TIROSH_LAB_ROOT: config, data, certificates)
    and ``tmp/k3s.log`` (the stand-in's and its components' output). On exit every process is
    stopped and checked gone; ``tmp/root`` (which holds private keys) is removed.
    ``tls_sans``: more names of the API certificate (an address another process reaches it by).
    """
    bin_dir = build.controlplane()
    standin = build.standin()
    root = tmp / "root"
    k3s = _prepare_root(root, bin_dir, standin)
    if tls_sans:
        config_file = root / "etc/rancher/k3s/config.yaml"
        settings = yaml.safe_load(config_file.read_text())
        settings["tls-san"] = tls_sans
        config_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    base = free_port_base()
    env = dict(os.environ, TIROSH_LAB_ROOT=str(root), TIROSH_LAB_PORT_BASE=str(base))
    env.pop("NOTIFY_SOCKET", None)  # it is not our systemd unit
    log = tmp / "k3s.log"
    kubeconfig = root / "etc/rancher/k3s/k3s.yaml"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(k3s), "server"],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
            start_new_session=True,
        )
    try:
        _wait_ready(process, kubeconfig, log)
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        if server != f"https://{LOOPBACK}:{base}":
            raise RuntimeError(f"unexpected API server {server} in {kubeconfig}")
        yield kubeconfig
    finally:
        try:
            _stop(process, log)
        finally:
            shutil.rmtree(root, ignore_errors=True)
