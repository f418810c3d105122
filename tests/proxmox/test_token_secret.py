"""The API token's secret (a canary) never shows: not in output at any verbosity, not in ``ps``
samples taken while the commands run, not in any file they leave. Against the PVE API test
double (no live Proxmox VE)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.proxmox.conftest import CANARY, REPO, FakePve, ProxmoxSite


def _run_sampling_ps(argv: list[str], env: dict[str, str]) -> tuple[int, str, int]:
    """Run ``python -m local proxmox/vms/ARGV``; (exit code, its output, ps samples taken)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "local", f"proxmox/vms/{argv[0]}", *argv[1:]],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    samples = 0
    while process.poll() is None or samples == 0:
        listing = subprocess.run(
            ["ps", "-eww", "-o", "pid=,args="], capture_output=True, text=True, check=True
        ).stdout
        assert CANARY not in listing
        try:
            cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        except FileNotFoundError:
            cmdline = b""
        assert CANARY.encode() not in cmdline
        samples += 1
    output, _ = process.communicate(timeout=120)
    return process.returncode, output, samples


def test_the_token_secret_is_in_no_output_ps_sample_or_file(
    proxmox_site: ProxmoxSite, pve: FakePve, tmp_path: Path
) -> None:
    # The agent wait keeps apply running for a while: ps is sampled during real requests.
    env = {**proxmox_site.env, "TIROSH_PROXMOX_AGENT_WAIT": "2"}
    total = 0
    outputs = []
    for argv in (["plan", "lab"], ["plan", "lab", "-vv"], ["apply", "lab", "-vv"]):
        code, output, samples = _run_sampling_ps(argv, env)
        assert code == 0, output
        outputs.append(output)
        total += samples
    pve.do("agent", vmid=210, address="198.51.100.77")
    pve.do("agent", vmid=211, address="198.51.100.78")
    for argv in (["inventory", "lab", "-v"], ["apply", "lab", "-vv", "--restart"]):
        code, output, samples = _run_sampling_ps(argv, env)
        assert code == 0, output
        outputs.append(output)
        total += samples
    # A refused secret and an unreachable API, at the highest verbosity.
    code, output, samples = _run_sampling_ps(
        ["plan", "lab", "-vv"], {**env, "PROXMOX_TOKEN_SECRET": CANARY + "x"}
    )
    assert code == 1 and "authentication failure" in output
    outputs.append(output)
    assert total >= 5
    # -vv did log the requests, with their form fields: the secret is in none of them.
    assert "proxmox: POST /api2/json/nodes/pve1/qemu/9000/clone -> 200 [" in outputs[2]
    assert "ciuser=tirosh" in outputs[2]
    for output in outputs:
        assert CANARY not in output
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert CANARY.encode() not in path.read_bytes(), path
    assert (proxmox_site.root / "inventory.toml.bak").exists()  # the files checked include it
