"""Benchmark: the local phase's access part (argocd/access.toml: 4 login accounts, 1 automation
account, 2 roles, 4 bindings) against the real Argo CD of tests/local: from nothing, a no-op
re-run, and --dry; and ``argocd/access/check`` (declared policy and Argo CD's can-i).

    python -m bench.access_phase

Each run is ``python -m local ...`` as an operator runs it (a fresh process: interpreter start-up,
site validation and the Argo CD login included). Prints numbers, asserts nothing.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.argocd_harness import SITE, argocd_harness
from lab.config import REPO_ROOT

NAMES = ("ops", "dev", "viewer", "audit")
PASSWORDS = {f"BENCH_{name.upper()}_PASSWORD": f"bench-{name}-password-7c1e" for name in NAMES}
ACCESS = (
    "".join(
        f'[[accounts]]\nname = "{name}"\ncapabilities = ["login"]\n'
        f'password_env = "BENCH_{name.upper()}_PASSWORD"\n'
        for name in NAMES
    )
    + """
[[accounts]]
name = "ci"
capabilities = ["apiKey"]

[rbac]
default = ""

[[rbac.roles]]
name = "deployer"
permissions = ["applications, get, prod/*", "applications, sync, prod/*", "logs, get, prod/*"]

[[rbac.roles]]
name = "auditor"
permissions = ["*, get, *", "accounts, get, *, deny"]

[[rbac.bindings]]
role = "deployer"
accounts = ["dev", "ci"]

[[rbac.bindings]]
role = "readonly"
accounts = ["viewer"]

[[rbac.bindings]]
role = "auditor"
accounts = ["audit"]

[[rbac.bindings]]
role = "admin"
accounts = ["ops"]
"""
)


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:])} failed:\n{result.stdout}{result.stderr}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, argocd_harness(Path(tmp)) as harness:
        (harness.sites / SITE / "argocd/clusters.toml").write_text("clusters = []\n")
        (harness.sites / SITE / "argocd/access.toml").write_text(ACCESS)
        env = harness.env(ARGOCD_PASSWORD=harness.initial_password() or "", **PASSWORDS)
        phase = [sys.executable, "-m", "local", "local/phase", SITE]
        print(f"from nothing: {_timed(phase, env):.2f} s")
        noop = [_timed(phase, env) for _ in range(5)]
        dry = [_timed([*phase, "--dry"], env) for _ in range(5)]
        print(f"no-op re-run: median {statistics.median(noop):.2f} s (5 runs)")
        print(f"--dry:        median {statistics.median(dry):.2f} s (5 runs)")
        check = [sys.executable, "-m", "local", "argocd/access/check", SITE]
        grid = dict(env, ACCOUNT="dev")
        one = dict(grid, RESOURCE="applications", ACTION="sync", OBJECT="prod/web")
        print(f"access/check, 39 questions, pycasbin and Argo CD: {_timed(check, grid):.2f} s")
        print(f"access/check, one question: {_timed(check, one):.2f} s")


if __name__ == "__main__":
    main()
