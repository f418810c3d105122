"""The lab hosts' root filesystem: Debian by debootstrap, cached and shared read-only by all hosts."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from lab import build, config, versions

# Runs in a chroot of the fresh rootfs. Every host boots an overlay of the result, so nothing
# host-specific goes here (host keys, addresses and the login key are written per host).
_CONFIGURE = f"""
set -eu
id {config.LOGIN_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {config.LOGIN_USER}
echo '{config.LOGIN_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{config.LOGIN_USER}
chmod 0440 /etc/sudoers.d/{config.LOGIN_USER}
systemctl enable systemd-networkd.service ssh.service
# Packages whose services only some hosts run: the lab enables each on its host (lab/hosts.py).
for unit in {" ".join(versions.PER_HOST_SERVICES)}; do systemctl disable "$unit" 2>/dev/null || true; done
# No DNS and no default route: lab hosts talk only to each other and to the bridge address.
systemctl disable systemd-resolved.service 2>/dev/null || true
: > /etc/resolv.conf
rm -f /etc/ssh/ssh_host_*
passwd --lock root
apt-get clean
"""


def key(packages: tuple[str, ...] = versions.ROOTFS_PACKAGES, configure: str = _CONFIGURE) -> str:
    spec = "\n".join([versions.DEBIAN_SUITE, versions.DEBIAN_MIRROR, *packages, configure])
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def cached(
    kind: str = "rootfs",
    packages: tuple[str, ...] = versions.ROOTFS_PACKAGES,
    configure: str = _CONFIGURE,
) -> bool:
    return (config.CACHE_DIR / kind / key(packages, configure)).is_dir()


def ensure(
    kind: str = "rootfs",
    packages: tuple[str, ...] = versions.ROOTFS_PACKAGES,
    configure: str = _CONFIGURE,
) -> Path:
    """Return the cached root filesystem, building it first if this version has none."""
    final = config.CACHE_DIR / kind / key(packages, configure)
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{final.name}-*"):
        _remove_staging(leftover)  # an earlier build that was killed
    staging = final.with_name(f".{final.name}-{os.getpid()}")
    log = build.fresh_log(kind)
    try:
        build.run_logged(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                versions.DEBIAN_SUITE,
                str(staging),
                versions.DEBIAN_MIRROR,
            ],
            log,
            f"debootstrap {versions.DEBIAN_SUITE} ({kind})",
        )
        build.run_logged(
            ["chroot", str(staging), "/bin/sh", "-c", configure], log, f"configuring {kind}"
        )
        os.rename(staging, final)
    finally:
        _remove_staging(staging)
    return final


def _remove_staging(staging: Path) -> None:
    """Remove a build directory, unmounting what debootstrap mounted in it (proc, sys) first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith(f"{staging}/")), reverse=True):
        subprocess.run(["umount", "--lazy", mountpoint], check=False)
    shutil.rmtree(staging, ignore_errors=True)
