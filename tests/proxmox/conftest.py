"""Fixtures of the Proxmox tests: a PVE API test double in its own process, and a site using it.

No live Proxmox VE is used anywhere: ``pve`` starts ``tests/proxmox/fakepve_process.py``
(fakepve, a test double of the PVE API, with the additions named there) on 127.0.0.1, and
``proxmox_site`` is a copy of the lab site whose ``[proxmox]`` points at it, trusting its
certificate by ``ca_file``.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# The token secret the fake accepts: a canary that must never show up in output or files.
CANARY = "canary-9f3c1e7a-token-secret-b24d"
PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0ZXN0a2V5Zm9ydGlyb3NoaW5mcmF0ZXN0c29ubHk tirosh@test"
)
START_TIMEOUT = 60


@dataclass
class FakePve:
    """The running test double: its API port, its CA file, and its control API."""

    port: int
    control: int
    ca_file: Path
    process: subprocess.Popen[str]

    def _call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def requests(self) -> list[tuple[str, str]]:
        """fakepve's request log: (method, path) of every request it answered."""
        return [(m, p) for m, p in self._call("/requests")]

    def changing(self, since: int = 0) -> list[tuple[str, str]]:
        """The requests after the first ``since`` that could change state (not GET)."""
        return [(m, p) for m, p in self.requests()[since:] if m not in ("GET", "HEAD")]

    def do(self, op: str, **args: Any) -> None:
        self._call("/do", {"op": op, **args})

    def vm(self, vmid: int) -> dict[str, Any]:
        state: dict[str, Any] = self._call(f"/vm/{vmid}")
        return state


@pytest.fixture
def pve(tmp_path: Path) -> Iterator[FakePve]:
    directory = tmp_path / "fakepve"
    directory.mkdir()
    env = {**os.environ, "FAKEPVE_TOKEN_SECRET": CANARY}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.proxmox.fakepve_process", str(directory)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline() if ready else ""
        assert line.startswith("ready "), f"the PVE test double did not start: {line!r}"
        _, port, control = line.split()
        yield FakePve(int(port), int(control), directory / "fakepve.crt", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


VMS_TFVARS = """\
# The lab's VMs on the PVE test double.
vms = [
  {
    name      = "lab-argocd"
    vm_id     = 210
    tags      = ["gitops", "k3s"]
    cpu_cores = 4
    memory_mb = 8192
    clone     = { vm_id = 9000 }
    disk      = { datastore_id = "local-lvm", size_gb = 40 }
    network   = { bridge = "vmbr0" }
    user_account = { username = "tirosh", ssh_public_key_file = "~/.ssh/id_ed25519.pub" }
    ip_config = { ipv4 = { address = "dhcp" } }
  },
  {
    name      = "lab-rke2-gpu"
    vm_id     = 211
    cpu_cores = 2
    memory_mb = 4096
    clone     = { vm_id = 9000 }
    disk      = { datastore_id = "local-lvm", size_gb = 10 }
    user_account = { username = "tirosh", ssh_public_key_file = "~/.ssh/id_ed25519.pub" }
  },
]
"""


@dataclass
class ProxmoxSite:
    root: Path  # sites/lab of the copy
    home: Path
    env: dict[str, str]

    def write(self, name: str, text: str) -> None:
        (self.root / name).write_text(text)

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text()
        assert old in text, f"test bug: {old!r} not in {name}"
        path.write_text(text.replace(old, new, 1))


def proxmox_table(port: int, trust: str) -> str:
    return f"""
[proxmox]
api_url = "https://127.0.0.1:{port}"
node = "pve1"
token_id = "tirosh-infra@pve!vms"
{trust}
"""


@pytest.fixture
def proxmox_site(tmp_path: Path, pve: FakePve) -> ProxmoxSite:
    sites = tmp_path / "sites"
    root = sites / "lab"
    shutil.copytree(REPO / "sites" / "lab", root)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519.pub").write_text(PUBLIC_KEY + "\n")
    with (root / "profile.toml").open("a") as profile:
        profile.write(proxmox_table(pve.port, f'ca_file = "{pve.ca_file}"'))
    (root / "vms.tfvars").write_text(VMS_TFVARS)
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "TIROSH_SITES_DIR": str(sites),
        "PROXMOX_TOKEN_SECRET": CANARY,
        "TIROSH_PROXMOX_AGENT_WAIT": "0",
        "TIROSH_PROXMOX_TASK_TIMEOUT": "30",
    }
    return ProxmoxSite(root, home, env)
