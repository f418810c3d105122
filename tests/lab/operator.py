"""Run the project's commands as an operator would, with a private HOME per test session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import config

PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
KUBECTL = str(Path(sys.executable).with_name("kubectl"))


@dataclass
class Operator:
    """An operator's machine: a HOME with ~/.kube, and optional environment overrides."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
        env.update(HOME=str(self.home), PYINFRA_FAKE_DELAY="0", **self.env)
        return env

    def run(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            args,
            cwd=config.REPO_ROOT,
            env=self.environ(),
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
                f"--- stderr\n{result.stderr}"
            )
        return result

    def deploy(
        self, *flags: str, deploy_file: str = "deploy.py", site: str = "lab"
    ) -> subprocess.CompletedProcess[str]:
        return self.run(PYINFRA, "-y", *flags, f"inventories/{site}.py", deploy_file)

    def plan(self, deploy_file: str = "deploy.py", site: str = "lab") -> list[dict[str, Any]]:
        """The --dry plan as JSON: one entry per operation with the hosts it would change."""
        result = self.run(PYINFRA, "--dry", "--json", f"inventories/{site}.py", deploy_file)
        return json.loads(result.stdout)["plan"]

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(KUBECTL, *args, check=check, timeout=120)


def changed_operations(plan: list[dict[str, Any]]) -> list[str]:
    # Names read "deploys/k3s.py | Install k3s ..." for operations of included files.
    return [
        op["name"].split(" | ", 1)[-1]
        for op in plan
        if op.get("hosts_with_change") or op.get("hosts_with_conditional_change")
    ]
