"""Bring the whole lab up and down."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from lab import artifacts, build, config, edge, hosts, images, registry, rootfs

REQUIRED_COMMANDS = (
    "systemd-nspawn",
    "debootstrap",
    "go",
    "ip",
    "ssh",
    "ssh-keygen",
    "mount",
    "tar",  # image layers
    "git",  # the edge host's GitOps repository
    "openssl",  # the Git server's htpasswd (password on stdin)
)


def missing_prerequisites() -> list[str]:
    """Why the lab cannot run here, one reason per item (empty when it can)."""
    problems = []
    if platform.system() != "Linux":
        problems.append("the lab needs Linux")
    if os.geteuid() != 0:
        problems.append("the lab needs root (systemd-nspawn, mounts, network links)")
    problems += [f"missing command: {cmd}" for cmd in REQUIRED_COMMANDS if not shutil.which(cmd)]
    return problems


def _login_key() -> None:
    if config.SSH_KEY.exists():
        return
    config.SSH_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "tirosh-lab",
            "-f",
            str(config.SSH_KEY),
        ],
        check=True,
    )


def prepare() -> tuple[Path, Path, Path, hosts.Node]:
    """Build or fetch from cache everything a boot needs: rootfs, control plane, stand-in,
    the node's binaries and its images."""
    problems = missing_prerequisites()
    if problems:
        raise RuntimeError("lab prerequisites missing: " + "; ".join(problems))
    # The two debootstraps wait on Debian's mirror and dpkg, the Go builds on the CPU: on a cold
    # machine they overlap (the whole build measured 33 min, ≈42 one after the other). Nothing
    # else touches those two directories.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="debootstrap") as pool:
        roots = pool.submit(_root_filesystems)
        bin_dir = build.controlplane()
        _stop_if_failed(roots)
        standin = build.standin()
        for go_build in images.GO_BUILDS:
            _stop_if_failed(roots)
            go_build()
        base = roots.result()
    artifacts.publish(standin)
    layout = images.ensure()
    airgap = images.archive(layout, config.CACHE_DIR / "airgap" / "lab-images.tar")
    mirror = registry.mirrors(config.host(config.EDGE_HOST).address)
    node = hosts.Node(bin_dir=build.node(), images=airgap.parent, registries=mirror)
    _login_key()
    return base, bin_dir, standin, node


def _root_filesystems() -> Path:
    """The hosts' root filesystem and the images' base layer, built when missing."""
    images.image_base()
    return rootfs.ensure()


def _stop_if_failed(background: Future[Path]) -> None:
    """Raise a failed debootstrap's error now rather than after the remaining Go builds."""
    if background.done():
        background.result()


def up() -> float:
    """Boot every lab host from scratch and wait until each answers over SSH. Returns seconds."""
    base, bin_dir, standin, node = prepare()
    started = time.monotonic()
    down()
    hosts.bridge_up()
    lines = []
    for lab_host in config.HOSTS:
        lines.append(
            hosts.boot(
                lab_host,
                base,
                bin_dir,
                standin,
                node if lab_host.name == config.NODE_HOST else None,
            )
        )
    config.KNOWN_HOSTS.write_text("\n".join(lines) + "\n")
    # The Git server's SSH host key under its name too (git@git.lab.test:private/gitops.git).
    edge_line = next(
        line for line in lines if line.startswith(config.host(config.EDGE_HOST).address + " ")
    )
    (edge.SECRETS.directory / "ssh_known_hosts").write_text(f"{edge.GIT_SERVER_NAME},{edge_line}\n")
    config.SSH_CONFIG.write_text(hosts.ssh_config(config.HOSTS))
    for lab_host in config.HOSTS:
        hosts.wait_for_ssh(lab_host)
    edge_host = config.host(config.EDGE_HOST)
    registry.wait(edge_host.address)
    registry.push(edge_host.address, images.ensure())
    wait_for_rke2()
    return time.monotonic() - started


def wait_for_rke2(timeout: float = 120) -> None:
    """The workload cluster is pre-provisioned; the lab is up when its API server answers."""
    rke2 = config.host("rke2-gpu")
    probe = "sudo -n /usr/local/bin/rke2 kubectl get --raw /readyz"
    deadline = time.monotonic() + timeout
    while subprocess.run([*hosts.ssh_command(rke2), probe], capture_output=True).returncode:
        if time.monotonic() > deadline:
            raise TimeoutError(f"rke2 stand-in on {rke2.name} not ready after {timeout}s")
        time.sleep(1)


@contextmanager
def exclusive() -> Iterator[None]:
    """Hold the lab for this process; another test session or `make lab-up` meanwhile is refused.

    The lab's bridge, addresses and state directory are the machine's, shared by every checkout.
    """
    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    lock = config.STATE_DIR / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        owner = lock.read_text().strip() or "another process"
        raise RuntimeError(f"the lab is in use by {owner}; wait for it to finish") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n".encode())
    try:
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def down() -> None:
    for lab_host in config.HOSTS:
        hosts.stop(lab_host.name)
    hosts.bridge_down()


def status() -> dict[str, bool]:
    return {h.name: hosts.running(h.name) for h in config.HOSTS}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    if command in ("up", "down", "build"):
        try:
            with exclusive():
                return _up_down_or_build(command)
        except RuntimeError as error:
            print(f"lab: {error}", file=sys.stderr)
            return 1
    if command == "ssh":
        name = args[1] if len(args) > 1 else "argocd"
        os.execvp("ssh", [*hosts.ssh_command(config.host(name)), *args[2:]])
    elif command == "status":
        for name, is_running in status().items():
            memory = f", {hosts.rss_bytes(name) / 2**20:.0f} MiB RSS" if is_running else ""
            print(f"{name}: {'running' if is_running else 'stopped'}{memory}")
    else:
        print("usage: python -m lab {up|down|build|ssh [HOST [CMD...]]|status}", file=sys.stderr)
        return 2
    return 0


def _up_down_or_build(command: str) -> int:
    if command == "up":
        print(
            f"lab: up in {up():.1f}s: " + ", ".join(f"{h.name} {h.address}" for h in config.HOSTS)
        )
    elif command == "build":
        started = time.monotonic()
        built = prepare()
        print(f"lab: built in {time.monotonic() - started:.1f}s:", *built[:3])
    else:
        down()
        print("lab: down")
    return 0
