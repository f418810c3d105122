"""The edge host: the site's network services around the cluster (registry mirror, ...)."""

from __future__ import annotations

from pathlib import Path

# Services the shared rootfs installs disabled (versions.PER_HOST_SERVICES) that this host runs.
SERVICES = ("docker-registry.service",)


def _enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    """What `systemctl enable` does for a unit with WantedBy=<target>, on a stopped tree."""
    wants = root / "etc" / "systemd" / "system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if not link.is_symlink():
        link.symlink_to(f"/lib/systemd/system/{unit}")


def provision(root: Path) -> None:
    for unit in SERVICES:
        _enable(root, unit)
