"""Benchmark: the local phase registering 3 clusters and 20 repositories, from scratch and as a
no-op, against the real Argo CD of tests/local (argocd-server, repo-server, two loopback control
planes, a Git smart-HTTP server).

    python -m bench.local_phase

Each run is ``python -m local local/phase loop`` as an operator runs it (a fresh process: interpreter
start-up, site validation and the Argo CD login included), after a first site validation, as
in a deploy, has parsed the Argo CD manifest (timed and printed apart). The three clusters are
one workload API reached at three addresses (127.0.0.2-4), each its own Argo CD cluster. Prints
numbers, asserts nothing; needs what the tests/local harness needs (root not required;
redis-server, the Go builds).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lab.argocd_harness import SITE, WORKLOAD, argocd_harness, git_http_server
from lab.config import REPO_ROOT

ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
REPOSITORIES = tuple(f"public/r{index:02d}.git" for index in range(1, 21))


def _contexts(kubeconfig: Path) -> None:
    """Contexts bench-1..3 for the workload cluster (one declared cluster per context)."""
    document = yaml.safe_load(kubeconfig.read_text())
    for index in range(1, len(ADDRESSES) + 1):
        document["contexts"].append(
            {"name": f"bench-{index}", "context": {"cluster": WORKLOAD, "user": WORKLOAD}}
        )
    kubeconfig.write_text(yaml.safe_dump(document))


def _declare(sites: Path, workload_port: str, git: str) -> None:
    clusters = "".join(
        f'[[clusters]]\ncontext = "bench-{i}"\nname = "bench-{i}"\n'
        f'server = "https://{a}:{workload_port}"\n'
        for i, a in enumerate(ADDRESSES, 1)
    )
    (sites / SITE / "argocd/clusters.toml").write_text(clusters)
    repositories = "".join(
        f'[[repositories]]\nname = "r{i:02d}"\nurl = "{git}/{path}"\n'
        for i, path in enumerate(REPOSITORIES, 1)
    )
    (sites / SITE / "argocd/repositories.toml").write_text(repositories)


def _profiler(label: str) -> list[str]:
    target = os.environ.get("BENCH_PROFILE")
    return ["-m", "cProfile", "-o", f"{target}.{label.replace(' ', '-')}"] if target else []


def _phase(label: str, env: dict[str, str], *args: str) -> tuple[float, int, str]:
    return _timed(label, env, "local", "local/phase", SITE, *args)


def _timed(label: str, env: dict[str, str], module: str, *args: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = subprocess.run(
        # BENCH_PROFILE=<prefix>: profile each run into <prefix>.<label> (cProfile, for pstats).
        [sys.executable, *_profiler(label), "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    return time.perf_counter() - started, result.returncode, result.stdout + result.stderr


def main() -> int:
    objects = len(ADDRESSES) + len(REPOSITORIES)
    with (
        tempfile.TemporaryDirectory(prefix="bench-local-") as tmp,
        argocd_harness(Path(tmp, "argocd"), ADDRESSES) as harness,
        git_http_server(Path(tmp, "git"), REPOSITORIES) as git,
    ):
        # Three contexts of one workload API: the same ServiceAccount serves all three.
        _contexts(harness.kubeconfig)
        _declare(harness.sites, harness.workload_direct.rsplit(":", 1)[1], git)
        env = harness.env(ARGOCD_PASSWORD=harness.initial_password() or "")
        # In a deploy the inventory has validated the site before the phase runs, which
        # parses the Argo CD manifest once per content and machine (~/.cache/tirosh-infra):
        # timed apart, so the phase's numbers are the phase's.
        seconds, code, output = _timed("validate", env, "tirosh.site", "validate", SITE)
        print(f"site validation, manifest not parsed yet on this machine: {seconds:.2f} s")
        if code:
            print(output[-2000:])
        for label, args in (
            ("from scratch", ()),
            ("no-op", ()),
            ("no-op --dry", ("--dry",)),
        ):
            seconds, code, output = _phase(label, env, *args)
            changed = sum(
                1 for line in output.splitlines() if " create " in line or " update " in line
            )
            print(
                f"{label:13} {seconds:6.2f} s for {objects} objects ({seconds / objects:.3f} s each), "
                f"{changed} created/updated, exit {code}"
            )
            if code:
                print(output[-2000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
