"""Benchmark: commit-to-live through Argo CD's webhook on the lab, and the no-op deploy with a
project and a root application declared.

    python -m bench.gitops_webhook [--pushes N]

Needs a booted lab (`python -m lab up`). Declares the GitOps loop in a copy of the lab site
(lab/gitops_loop.py), deploys it (an operator HOME of its own), waits for the root application
and its automated children to be Synced/Healthy, then times: a no-op deploy; N commits, each
from the start of `git push` to the ConfigMap's new value on the workload cluster. Leaves the
applications in place (`python -m lab down` clears everything). Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab import config, gitops_loop

PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
KUBECTL = str(Path(sys.executable).with_name("kubectl"))


def _env(home: Path, sites: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    env.update(HOME=str(home), TIROSH_SITES_DIR=str(sites))
    env[gitops_loop.WEBHOOK_ENV] = gitops_loop.webhook_secret()
    return env


def _deploy(env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run(
        [PYINFRA, "-y", "inventories/lab.py", "deploy.py"],
        cwd=config.REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    return time.monotonic() - started


def _kubectl(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    ).stdout


def _synced(env: dict[str, str]) -> bool:
    listed = _kubectl(
        env, "--context", "lab/k3s", "-n", "argocd", "get", "applications", "-o", "json"
    )
    apps = {
        a["metadata"]["name"]: a.get("status") or {}
        for a in json.loads(listed or "{}").get("items", [])
    }
    return all(
        (apps.get(n, {}).get("sync") or {}).get("status") == "Synced"
        and (apps.get(n, {}).get("health") or {}).get("status") == "Healthy"
        for n in gitops_loop.AUTOMATED
    )


def _live(env: dict[str, str]) -> str:
    return _kubectl(
        env,
        "--context",
        "lab/rke2/gpu",
        "-n",
        "lab-apps",
        "get",
        "configmap",
        "live",
        "-o",
        "jsonpath={.data.revision}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gitops-") as tmp:
        home, sites = Path(tmp) / "home", Path(tmp) / "sites"
        home.mkdir()
        shutil.copytree(config.REPO_ROOT / "sites", sites)
        gitops_loop.declare(sites)
        env = _env(home, sites)
        print(
            f"first deploy (project, root application declared): {_deploy(env):.1f} s", flush=True
        )
        started = time.monotonic()
        while not _synced(env):
            if time.monotonic() - started > 600:
                sys.exit("the applications did not reach Synced/Healthy within 600 s")
            time.sleep(1)
        print(f"root and children Synced/Healthy {time.monotonic() - started:.1f} s after it")
        # The no-op deploy with the project and root application declared, with its remote
        # commands counted: bench.deploy, in the loop site's environment.
        subprocess.run(
            [sys.executable, "-m", "bench.deploy", "--runs", "5"], cwd=config.REPO_ROOT, env=env
        )
        work = gitops_loop.clone(Path(tmp) / "gitops")
        seconds = []
        base = int(time.time())
        for index in range(args.pushes):
            value = f"{base}-{index}"
            started = time.monotonic()
            gitops_loop.push(work, gitops_loop.LIVE_FILE, gitops_loop.live_configmap(value), value)
            while _live(env) != value:
                if time.monotonic() - started > 400:
                    sys.exit(f"push {index + 1} not live after 400 s")
                time.sleep(0.2)
            seconds.append(time.monotonic() - started)
            print(f"push {index + 1}: live after {seconds[-1]:.1f} s", flush=True)
        print(
            f"commit-to-live through the webhook: median {statistics.median(seconds):.1f} s "
            f"over {len(seconds)} pushes (min {min(seconds):.1f}, max {max(seconds):.1f})"
        )


if __name__ == "__main__":
    main()
