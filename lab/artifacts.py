"""The air-gapped k3s artifact directory the deploy installs from: the binary and its checksum file."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from lab import config


def publish(standin: Path, directory: Path = config.K3S_ARTIFACTS) -> Path:
    """Lay out `k3s` and `sha256sum-amd64.txt` exactly as a k3s release publishes them."""
    directory.mkdir(parents=True, exist_ok=True)
    binary = directory / "k3s"
    if not binary.exists() or binary.read_bytes() != standin.read_bytes():
        shutil.copy2(standin, binary)
    binary.chmod(0o755)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    (directory / "sha256sum-amd64.txt").write_text(f"{digest}  k3s\n")
    return directory
