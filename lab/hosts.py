"""Boot and stop the lab hosts: systemd-nspawn containers on a bridge, reached over SSH."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab import config, edge

_NETWORK_UNIT = f"""[Match]
Name=host0

[Network]
Address={{address}}/{config.NETWORK_PREFIX}
LinkLocalAddressing=no
IPv6AcceptRA=no
"""

# The rke2 server unit as rke2's installer writes it, trimmed to what the stand-in uses.
_RKE2_UNIT = """[Unit]
Description=Rancher Kubernetes Engine v2 (server), lab stand-in
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
ExecStart=/usr/local/bin/rke2 server
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
"""


def _state(name: str) -> Path:
    return config.STATE_DIR / "hosts" / name


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


# --- network -------------------------------------------------------------------------------


def bridge_up() -> None:
    if _run("ip", "link", "show", config.BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", config.BRIDGE, "type", "bridge")
    gateway = f"{config.GATEWAY}/{config.NETWORK_PREFIX}"
    if gateway not in _run("ip", "-4", "addr", "show", config.BRIDGE).stdout:
        _run("ip", "addr", "add", gateway, "dev", config.BRIDGE)
    _run("ip", "link", "set", config.BRIDGE, "up")


def bridge_down() -> None:
    _run("ip", "link", "del", config.BRIDGE, check=False)


# --- host filesystem -----------------------------------------------------------------------


def _host_key(upper: Path, address: str) -> str:
    """Generate the host's SSH key and return its known_hosts line."""
    key = upper / "etc" / "ssh" / "ssh_host_ed25519_key"
    key.parent.mkdir(parents=True, exist_ok=True)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key))
    public = key.with_suffix(".pub").read_text().split()
    return f"{address} {public[0]} {public[1]}"


def _login_key(root: Path) -> None:
    home = root / "home" / config.LOGIN_USER
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    public = config.SSH_KEY.with_suffix(".pub").read_text()
    _write(ssh_dir / "authorized_keys", public, 0o600)
    stat = home.stat()
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, stat.st_uid, stat.st_gid)


def _identity(root: Path, lab_host: config.LabHost) -> None:
    _write(root / "etc" / "hostname", f"{lab_host.name}\n")
    _write(root / "etc" / "hosts", f"127.0.0.1 localhost\n127.0.1.1 {lab_host.name}\n")
    _write(
        root / "etc" / "systemd" / "network" / "10-host0.network",
        _NETWORK_UNIT.format(address=lab_host.address),
    )


def _provision_rke2(root: Path, lab_host: config.LabHost, standin: Path) -> None:
    """Pre-install the rke2 stand-in: the workload cluster exists before any deploy runs."""
    binary = root / "usr" / "local" / "bin" / "rke2"
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(standin, binary)
    binary.chmod(0o755)
    _write(
        root / "etc" / "rancher" / "rke2" / "config.yaml",
        f'write-kubeconfig-mode: "0600"\ntls-san:\n  - {lab_host.address}\n'
        f"node-label:\n  - role=gpu\n",
        0o600,
    )
    unit = root / "etc" / "systemd" / "system" / "rke2-server.service"
    _write(unit, _RKE2_UNIT)
    wants = unit.parent / "multi-user.target.wants" / unit.name
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.symlink_to(f"/{unit.relative_to(root)}")


# --- lifecycle -----------------------------------------------------------------------------


# v1 hierarchies of this machine (cgroups are hybrid: v2 has no controllers, see lab/README.md).
_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_dirs(name: str) -> list[Path]:
    """The host's own cgroup in every v1 hierarchy: without a host systemd to delegate one,
    kubelet and containerd would create /kubepods at the machine's cgroup root, and two nodes
    (or the machine's own) would collide."""
    if not _CGROUP_ROOT.is_dir():
        return []
    return [
        hierarchy / "tirosh-lab" / name
        for hierarchy in sorted(_CGROUP_ROOT.iterdir())
        if hierarchy.name != "unified" and (hierarchy / "cgroup.procs").exists()
    ]


def _own_cgroups(name: str) -> list[Path]:
    made = []
    for directory in _cgroup_dirs(name):
        for level in (directory.parent, directory):
            level.mkdir(exist_ok=True)
            for knob in ("cpuset.cpus", "cpuset.mems"):  # v1 cpuset: empty until copied down
                own, parent = level / knob, level.parent / knob
                if own.exists() and not own.read_text().strip():
                    own.write_text(parent.read_text())
        made.append(directory)
    return made


def _enter_cgroups(directories: list[Path]) -> None:
    pid = str(os.getpid())
    for directory in directories:
        (directory / "cgroup.procs").write_text(pid)


def _remove_cgroups(name: str) -> None:
    # Children first (kubepods/..., k8s.io/...): rmdir only succeeds on empty leaves.
    for directory in _cgroup_dirs(name):
        if not directory.is_dir():
            continue
        for child in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            directory.rmdir()


def _node_options(state: Path, node: Node) -> list[str]:
    """systemd-nspawn options that let kubelet, containerd and runc start Pods inside the host."""
    containerd = state / "containerd"  # ext4: overlayfs cannot be an overlay's upper dir
    containerd.mkdir()
    return [
        "--capability=all",
        "--system-call-filter=@keyring @mount @privileged bpf",
        "--bind=/dev/kmsg",
        "--private-users=no",
        f"--bind={containerd}:{NODE_CONTAINERD_DIR}",
        f"--bind-ro={node.bin_dir}:{config.HOST_NODE_DIR}",
        f"--bind-ro={node.images}:{NODE_IMAGES_DIR}",
    ]


@dataclass(frozen=True)
class Node:
    """What a host needs to run Pods: node binaries and the air-gap image archives."""

    bin_dir: Path
    images: Path
    registries: str  # registries.yaml (mirrors) for the k3s stand-in


# Where k3s keeps containerd's content and looks for air-gap image archives.
NODE_CONTAINERD_DIR = "/var/lib/rancher/k3s/agent/containerd"
NODE_IMAGES_DIR = "/var/lib/rancher/k3s/agent/images"


def boot(
    lab_host: config.LabHost,
    rootfs: Path,
    bin_dir: Path,
    standin: Path,
    node: Node | None = None,
) -> str:
    """Boot one host from a fresh overlay of the rootfs; return its known_hosts line.

    With `node`, the host can run Pods (the k3s stand-in then starts containerd and kubelet).
    """
    state = _state(lab_host.name)
    upper, work, root = state / "upper", state / "work", state / "root"
    for path in (upper, work, root):
        path.mkdir(parents=True)
    options = f"lowerdir={rootfs},upperdir={upper},workdir={work}"
    _run("mount", "-t", "overlay", "overlay", "-o", options, str(root))
    _identity(root, lab_host)
    _login_key(root)
    known_host = _host_key(root, lab_host.address)
    if lab_host.name == "rke2-gpu":
        _provision_rke2(root, lab_host, standin)
    if lab_host.name == config.EDGE_HOST:
        edge.provision(root)
    node_options = []
    if node is not None:
        node_options = _node_options(state, node)
        # Outside /etc/rancher/k3s: a fresh host has none until the deploy creates it.
        _write(root / "etc" / "tirosh-lab" / "registries.yaml", node.registries, 0o600)
        # The site's DNS names for the edge host, served to Pods by CoreDNS's NodeHosts.
        edge_address = config.host(config.EDGE_HOST).address
        names = f"{edge.ARGOCD_SERVER_NAME} {edge.GIT_SERVER_NAME}"
        _write(root / "etc" / "tirosh-lab" / "hosts", f"{edge_address} {names}\n")
    cgroups = _own_cgroups(lab_host.name)
    console = open(state / "console.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [
            "systemd-nspawn",
            "--quiet",
            f"--directory={root}",
            f"--machine={lab_host.name}",
            "--boot",
            "--register=no",
            "--keep-unit",
            f"--network-bridge={config.BRIDGE}",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
            f"--bind-ro={bin_dir}:{config.HOST_BIN_DIR}",
            *node_options,
        ],
        stdin=subprocess.DEVNULL,
        stdout=console,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: _enter_cgroups(cgroups),
    )
    (state / "nspawn.pid").write_text(str(process.pid))
    (state / "boot_id").write_text(_boot_id())
    _record_namespace(lab_host.name, process.pid)
    return known_host


def wait_for_ssh(lab_host: config.LabHost, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((lab_host.address, 22), timeout=1):
                pass
            result = subprocess.run(
                [*ssh_command(lab_host), "sudo", "-n", "true"], capture_output=True, timeout=10
            )
            if result.returncode == 0:
                return
        except (OSError, subprocess.TimeoutExpired):
            pass
        if time.monotonic() > deadline:
            log = _state(lab_host.name) / "console.log"
            raise TimeoutError(f"lab host {lab_host.name} has no SSH after {timeout}s; see {log}")
        time.sleep(0.5)


def ssh_config(lab_hosts: tuple[config.LabHost, ...]) -> str:
    """An ssh_config naming each host by its lab name, with the lab key and known_hosts."""
    blocks = [
        f"Host {h.name}\n"
        f"    HostName {h.address}\n"
        f"    User {config.LOGIN_USER}\n"
        f"    IdentityFile {config.SSH_KEY}\n"
        f"    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {config.KNOWN_HOSTS}\n"
        f"    StrictHostKeyChecking yes\n"
        f"    BatchMode yes\n"
        for h in lab_hosts
    ]
    return "\n".join(blocks)


def ssh_command(lab_host: config.LabHost) -> list[str]:
    return ["ssh", "-F", str(config.SSH_CONFIG), lab_host.name]


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _pid(name: str) -> int | None:
    """The host's systemd-nspawn, if it is still the process this boot of the machine started.

    State survives a reboot of the machine, and PIDs get reused: a pid is only trusted when
    the boot id matches and the process is systemd-nspawn for this machine name.
    """
    state = _state(name)
    try:
        pid = int((state / "nspawn.pid").read_text())
        if (state / "boot_id").read_text() != _boot_id():
            return None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if b"systemd-nspawn" not in cmdline[0] or f"--machine={name}".encode() not in cmdline:
        return None
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _record_namespace(name: str, nspawn_pid: int, timeout: float = 10) -> None:
    """Remember the container's PID namespace: every process of the host lives in it."""
    ours = _pid_namespace(os.getpid())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children").read_text().split():
            namespace = _pid_namespace(int(child))
            if namespace is not None and namespace != ours:
                (_state(name) / "pidns").write_text(namespace)
                return
        time.sleep(0.05)
    raise TimeoutError(f"lab host {name}: systemd-nspawn started no container")


def members(name: str) -> list[int]:
    """The processes of a running host (those in its PID namespace, this boot only)."""
    try:
        namespace = (_state(name) / "pidns").read_text()
        if (_state(name) / "boot_id").read_text() != _boot_id():
            return []
    except OSError:
        return []
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _pid_namespace(int(entry.name)) == namespace
    ]


def _pod_processes(name: str) -> list[int]:
    found = []
    for pid in members(name):
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if "/kubepods" in cgroups:
            found.append(pid)
    return found


def rss_bytes(name: str) -> int:
    total = 0
    for pid in members(name):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def stop(name: str, timeout: float = 20) -> None:
    """Power the host off (nspawn turns SIGTERM into a clean shutdown), then remove every trace."""
    state = _state(name)
    pid = _pid(name)
    # Pod processes may ignore SIGTERM (≈30 s each): they hold no state worth a clean stop.
    for container in _pod_processes(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(container, signal.SIGKILL)
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    # Whatever a killed nspawn left behind: SIGKILL to each process of the host's namespace.
    for leftover in members(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    root = state / "root"
    if os.path.ismount(root):
        _run("umount", "--lazy", str(root), check=False)
    _run("ip", "link", "del", f"vb-{name}"[:15], check=False)
    _remove_cgroups(name)
    shutil.rmtree(state, ignore_errors=True)


def running(name: str) -> bool:
    pid = _pid(name)
    return pid is not None and _alive(pid)
