"""Benchmark: registering N repositories and C clusters, this project against the argocd CLI,
side by side in one run on one real Argo CD (the tests/local harness: argocd-server,
repo-server and the application controller of the lab's Argo CD build, two loopback control
planes, a Git smart-HTTP server).

    python -m bench.registration            # sizes 1/5/20/50 repositories, with 0-3 clusters

For each size both start from nothing registered (every repository and cluster Secret deleted,
``argocd-manager`` removed from the workload cluster), and each runs as an operator runs it:

- this project: one fresh process, ``python -m local argocd/repo/add loop`` (repositories only)
  or ``local/phase loop`` (clusters too): interpreter, site validation, Secrets, Argo CD's
  connection tests;
- the runbook: ``argocd login`` then ``argocd cluster add CONTEXT --yes`` per cluster and
  ``argocd repo add URL --upsert`` per repository, one process each (the lab's build of the
  argocd CLI; its config in a temporary directory).

The C clusters are one workload API reached at C addresses (127.0.0.2-4), each its own Argo CD
cluster. Prints a table and asserts nothing. The login password reaches the CLI on its
command line, as the runbook types it: this harness's throwaway one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lab import build
from lab.argocd_harness import (
    KUBECTL,
    MANAGEMENT,
    NAMESPACE,
    SITE,
    WORKLOAD,
    Harness,
    argocd_harness,
    git_http_server,
)
from lab.config import REPO_ROOT

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
SIZES = ((1, 0), (5, 0), (20, 0), (50, 0), (1, 1), (5, 1), (20, 3), (50, 3))
REPOSITORIES = tuple(f"public/r{index:02d}.git" for index in range(1, 51))
SECRET_TYPES = "argocd.argoproj.io/secret-type in (repository,repo-creds,cluster)"


def _contexts(harness: Harness, port: str) -> None:
    """Contexts bench-1..3, each with a cluster entry of its own address (as the CLI adds the
    context's server)."""
    path = harness.kubeconfig
    document = yaml.safe_load(path.read_text())
    workload = next(c for c in document["clusters"] if c["name"] == WORKLOAD)
    for index, address in enumerate(ADDRESSES, 1):
        cluster = dict(workload["cluster"], server=f"https://{address}:{port}")
        document["clusters"].append({"name": f"bench-{index}", "cluster": cluster})
        document["contexts"].append(
            {"name": f"bench-{index}", "context": {"cluster": f"bench-{index}", "user": WORKLOAD}}
        )
    path.write_text(yaml.safe_dump(document))


def _declare(harness: Harness, repositories: int, clusters: int, port: str, git: str) -> None:
    folder = harness.sites / SITE / "argocd"
    for name in ("secrets.toml", "clusters.toml"):
        (folder / name).unlink(missing_ok=True)
    if clusters:
        (folder / "clusters.toml").write_text(
            "".join(
                f'[[clusters]]\ncontext = "bench-{i}"\nname = "bench-{i}"\n'
                f'server = "https://{a}:{port}"\n'
                for i, a in enumerate(ADDRESSES[:clusters], 1)
            )
        )
    (folder / "repositories.toml").write_text(
        "".join(
            f'[[repositories]]\nname = "r{i:02d}"\nurl = "{git}/{path}"\n'
            for i, path in enumerate(REPOSITORIES[:repositories], 1)
        )
    )


def _kubectl(harness: Harness, context: str, *args: str) -> None:
    subprocess.run(
        [KUBECTL, "--kubeconfig", str(harness.kubeconfig), "--context", context, *args],
        check=True,
        capture_output=True,
    )


def _forget_everything(harness: Harness) -> None:
    """Nothing registered: Argo CD's Secrets gone, and argocd-manager on the workload cluster."""
    _kubectl(harness, MANAGEMENT, "-n", NAMESPACE, "delete", "secret", "-l", SECRET_TYPES)
    for kind, name in (
        ("clusterrolebinding", "argocd-manager-role-binding"),
        ("clusterrole", "argocd-manager-role"),
    ):
        _kubectl(harness, WORKLOAD, "delete", kind, name, "--ignore-not-found")
    for kind, name in (
        ("secret", "argocd-manager-long-lived-token"),
        ("serviceaccount", "argocd-manager"),
    ):
        _kubectl(harness, WORKLOAD, "-n", "kube-system", "delete", kind, name, "--ignore-not-found")
    time.sleep(1.0)  # Argo CD's informers see the deletions


def _ours(harness: Harness, env: dict[str, str], clusters: int) -> tuple[float, int, str]:
    command = ("local/phase",) if clusters else ("argocd/repo/add",)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "local", *command, SITE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, result.returncode, result.stdout + result.stderr


def _cli(
    harness: Harness, config: Path, repositories: int, clusters: int, git: str, password: str
) -> tuple[float, int, str]:
    argocd = str(build.argocd())
    base = [argocd, "--config", str(config)]
    env = dict(harness.env(), ARGOCD_BINARY_NAME="argocd", KUBECONFIG=str(harness.kubeconfig))
    commands = [
        [*base, "login", harness.host_port, "--plaintext", "--username", "admin",
         "--password", password],
        *([*base, "cluster", "add", f"bench-{i}", "--name", f"bench-{i}", "--yes", "--upsert"]
          for i in range(1, clusters + 1)),
        *([*base, "repo", "add", f"{git}/{path}", "--name", f"r{i:02d}", "--upsert"]
          for i, path in enumerate(REPOSITORIES[:repositories], 1)),
    ]  # fmt: skip
    started = time.perf_counter()
    for command in commands:
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode:
            return time.perf_counter() - started, result.returncode, result.stderr[-1000:]
    return time.perf_counter() - started, 0, ""


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="bench-registration-") as tmp,
        argocd_harness(Path(tmp, "argocd"), ADDRESSES) as harness,
        git_http_server(Path(tmp, "git"), REPOSITORIES) as git,
    ):
        port = harness.workload_direct.rsplit(":", 1)[1]
        _contexts(harness, port)
        password = harness.initial_password() or ""
        env = harness.env(ARGOCD_PASSWORD=password)
        print(f"{'repositories':>12} {'clusters':>8} {'this project':>13} {'argocd CLI':>11} ratio")
        for repositories, clusters in SIZES:
            _declare(harness, repositories, clusters, port, git)
            _forget_everything(harness)
            ours, code, output = _ours(harness, env, clusters)
            if code:
                print(f"this project failed (exit {code}):\n{output[-2000:]}")
            _forget_everything(harness)
            theirs, cli_code, cli_output = _cli(
                harness, Path(tmp, f"cli-{repositories}-{clusters}"), repositories, clusters,
                git, password,
            )  # fmt: skip
            if cli_code:
                print(f"argocd CLI failed (exit {cli_code}): {cli_output}")
            print(
                f"{repositories:>12} {clusters:>8} {ours:>11.2f} s {theirs:>9.2f} s "
                f"{theirs / ours:.2f}x"
            )
        # The no-op: everything registered by this project, then its second run.
        _forget_everything(harness)
        _declare(harness, 20, 3, port, git)
        _ours(harness, env, 3)
        noop = [_ours(harness, env, 3)[0] for _ in range(5)]
        print(
            f"no-op, 3 clusters + 20 repositories, own process: {sorted(noop)[2]:.2f} s median of 5"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
