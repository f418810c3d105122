"""Bring the whole lab up and down."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from lab import artifacts, build, config, edge, hosts, images, progress, registry, rootfs, versions

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


@dataclass(frozen=True)
class Step:
    """One part of the build: how to make it (or take it from the cache) and whether the cache
    already has it (None: known only once the parts before it are done)."""

    name: str
    kind: str
    lane: str
    make: Callable[[], Path]
    cached: Callable[[], bool] | None = None


AIRGAP = config.CACHE_DIR / "airgap" / "lab-images.tar"


def _steps() -> tuple[list[Step], list[Step]]:
    """The debootstraps (one lane, in a thread) and the Go builds (the other), in order."""
    roots = [
        Step(
            "image base", "image-base", "debootstrap", images.image_base, images.image_base_cached
        ),
        Step("host rootfs", "rootfs", "debootstrap", rootfs.ensure, rootfs.cached),
    ]
    go = [
        Step("control plane", "controlplane", "go", build.controlplane, build.controlplane_cached),
        Step("k3s stand-in", "standin", "go", build.standin, build.standin_cached),
        Step("node", "node", "go", build.node, build.node_cached),
        *(
            Step(
                f"Argo CD {version}",
                "argocd",
                "go",
                partial(build.argocd, version),
                partial(build.argocd_cached, version),
            )
            for version in versions.ARGOCD_BUILDS
        ),
        Step("CoreDNS", "coredns", "go", build.coredns, build.coredns_cached),
        Step("Dex", "dex", "go", build.dex, build.dex_cached),
        Step("Traefik", "traefik", "go", build.traefik, build.traefik_cached),
    ]
    return roots, go


def prepare(stream: TextIO | None = None) -> tuple[Path, Path, Path, hosts.Node]:
    """Build or fetch from cache everything a boot needs: rootfs, control plane, stand-in,
    the node's binaries and its images. Shows each part's state on ``stream`` (stderr)."""
    problems = missing_prerequisites()
    if problems:
        raise RuntimeError("lab prerequisites missing: " + "; ".join(problems))
    roots, go = _steps()
    known = {step.name: step.cached() if step.cached else None for step in [*roots, *go]}
    # The layout and archive follow from the rest: a guess for the estimate, checked when reached.
    guess = all(known.values())
    parts = [progress.Part(s.name, s.kind, s.lane, cached=known[s.name]) for s in [*roots, *go]]
    parts += [
        progress.Part("images", "images", progress.AFTER, cached=guess),
        progress.Part("air-gap archive", "airgap", progress.AFTER, cached=guess),
    ]
    shown = progress.Progress(parts, stream, logs=build.LOG_DIR)
    shown.start()
    try:
        built = _run_steps(shown, roots, go, known)
    except BaseException:
        shown.finish(failed=True)
        raise
    shown.finish()
    return built


def _run_steps(
    shown: progress.Progress, roots: list[Step], go: list[Step], known: dict[str, bool | None]
) -> tuple[Path, Path, Path, hosts.Node]:
    # The two debootstraps wait on Debian's mirror and dpkg, the Go builds on the CPU: on a cold
    # machine they overlap (the whole build measured 33 min, ≈42 one after the other). Nothing
    # else touches those two directories.
    results: dict[str, Path] = {}
    if all(known[step.name] for step in roots):
        results.update(_run_lane(shown, roots, known))  # cached: in order, no thread needed
        roots = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="debootstrap") as pool:
        background = pool.submit(_run_lane, shown, roots, known)
        for step in go:
            _stop_if_failed(background)
            results[step.name] = shown.run(step.name, step.make, known[step.name])
        results.update(background.result())
    artifacts.publish(results["k3s stand-in"])
    layout = shown.run("images", images.ensure, images.cached())
    archived = images.archive_current(layout, AIRGAP)
    airgap = shown.run("air-gap archive", partial(images.archive, layout, AIRGAP), archived)
    mirror = registry.mirrors(config.host(config.EDGE_HOST).address)
    node = hosts.Node(bin_dir=results["node"], images=airgap.parent, registries=mirror)
    _login_key()
    return results["host rootfs"], results["control plane"], results["k3s stand-in"], node


def _run_lane(
    shown: progress.Progress, steps: list[Step], known: dict[str, bool | None]
) -> dict[str, Path]:
    return {step.name: shown.run(step.name, step.make, known[step.name]) for step in steps}


def _stop_if_failed(background: Future[dict[str, Path]]) -> None:
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
        except RuntimeError as error:  # BuildError too: it names the failed step's log
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
        prepare()  # its last line says how long it took
    else:
        down()
        print("lab: down")
    return 0
