"""k3s without a host: config.yaml rendering, release asset names, checksum files."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from tirosh import regular_file
from tirosh.templates import render

BINARY_PATH = "/usr/local/bin/k3s"
CONFIG_PATH = "/etc/rancher/k3s/config.yaml"
UNIT_PATH = "/etc/systemd/system/k3s.service"
KUBECONFIG_PATH = "/etc/rancher/k3s/k3s.yaml"
DEFAULT_RELEASE_URL = "https://github.com/k3s-io/k3s/releases/download"

# uname -m -> (release asset suffix, checksum file arch), as k3s's install.sh maps them.
_ARCHES = {
    "x86_64": ("", "amd64"),
    "amd64": ("", "amd64"),
    "aarch64": ("-arm64", "arm64"),
    "arm64": ("-arm64", "arm64"),
    "armv7l": ("-armhf", "arm"),
    "s390x": ("-s390x", "s390x"),
}
_VERSION_LINE = re.compile(r"^k3s version (v\S+)")


@dataclass(frozen=True)
class ReleaseAssets:
    """The two files of a k3s release that an install needs for one architecture."""

    binary: str
    checksums: str


def assets_for(machine: str) -> ReleaseAssets:
    try:
        suffix, arch = _ARCHES[machine]
    except KeyError:
        raise ValueError(f"k3s publishes no binary for architecture {machine!r}") from None
    return ReleaseAssets(binary=f"k3s{suffix}", checksums=f"sha256sum-{arch}.txt")


def release_url(base: str, version: str, asset: str) -> str:
    # `+` in versions such as v1.34.3+k3s1 must be escaped in the download path.
    return f"{base.rstrip('/')}/{quote(version, safe='')}/{asset}"


def parse_version(output: str) -> str | None:
    """The version from `k3s --version` (first line: `k3s version v1.34.3+k3s1 (abc123)`)."""
    match = _VERSION_LINE.match(output.strip().splitlines()[0]) if output.strip() else None
    return match.group(1) if match else None


def checksum_for(checksums_text: str, asset: str) -> str:
    """The sha256 of `asset` in a release's `sha256sum-<arch>.txt` (sha256sum output)."""
    for line in checksums_text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == asset:
            digest = parts[0].lower()
            if re.fullmatch(r"[0-9a-f]{64}", digest):
                return digest
    raise ValueError(f"no sha256 for {asset} in the checksum file")


def _airgap_file(path: Path) -> bytes:
    try:
        return regular_file.read_bytes(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: missing from the air-gapped k3s directory") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror}") from None
    except ValueError as error:  # a FIFO or device: refused without blocking
        raise ValueError(f"{path}: {error}") from None


def verified_airgap_binary(directory: Path, machine: str) -> tuple[Path, str]:
    """The air-gapped binary for `machine` and its sha256, after checking it on the operator side.

    A binary that does not match its checksum file is refused before anything is uploaded.
    """
    assets = assets_for(machine)
    binary = directory / assets.binary
    checksums = directory / assets.checksums
    checksums_text = _airgap_file(checksums).decode("utf-8", errors="replace")
    actual = hashlib.sha256(_airgap_file(binary)).hexdigest()
    expected = checksum_for(checksums_text, assets.binary)
    if actual != expected:
        raise ValueError(f"{binary}: sha256 {actual} does not match {checksums.name} ({expected})")
    return binary, expected


def render_config(config: dict[str, Any], site: str) -> str:
    """The text of /etc/rancher/k3s/config.yaml.

    safe_dump quotes strings such as "0644", so write-kubeconfig-mode stays a string and k3s
    does not read it as the YAML 1.1 octal integer 420.
    """
    body = yaml.safe_dump(config, sort_keys=True, default_flow_style=False) if config else ""
    return render("k3s/config.yaml.j2", site=site, body=body)


def render_unit() -> str:
    return render("k3s/k3s.service.j2", binary=BINARY_PATH)
