"""Each site file is read once per process: in the validator, in a deploy's --dry plan of a
real site (pyinfra's @fake connector: nothing is contacted), and in an operator command.

The files opened are counted by an audit hook loaded into the child (tests/readcount); the
commands against a real Argo CD are counted the same way in tests/local/test_commands.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COUNTER = REPO / "tests/readcount"
SITE_FILES = (
    "profile.toml",
    "inventory.toml",
    "k3s/vars.yml",
    "argocd/vars.yml",
    "argocd/clusters.toml",
    "argocd/repositories.toml",
    "argocd/secrets.toml",
    "argocd/applications.toml",
    "argocd/access.toml",
    "vms.tfvars",
)


def counted_run(argv: list[str], sites: Path, env: dict[str, str]) -> tuple[int, str, Counter[str]]:
    """Run ``argv`` with the read counter; (exit code, output, opens per file under sites)."""
    out = sites.parent / "reads"
    out.mkdir(exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    environ = dict(env, PYTHONPATH=str(COUNTER), TIROSH_READS_UNDER=str(sites))
    environ["TIROSH_READS_TO"] = str(out)
    result = subprocess.run(
        argv, cwd=REPO, env=environ, capture_output=True, text=True, timeout=300, check=False
    )
    counts: Counter[str] = Counter()
    for file in out.iterdir():
        counts.update(json.loads(file.read_text()))
    return result.returncode, result.stdout + result.stderr, counts


def _environ(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    return dict(environ, HOME=str(home), PYINFRA_FAKE_DELAY="0")


def _opened(counts: Counter[str], site: str) -> dict[str, int]:
    # An optional file that is absent counts too: trying to open it is its read.
    return {name: counts[f"{site}/{name}"] for name in SITE_FILES}


@pytest.fixture()
def sites(tmp_path: Path) -> Path:
    """A copy of sites/ (TIROSH_SITES_DIR): its reads are the ones counted."""
    copy = tmp_path / "sites"
    shutil.copytree(REPO / "sites", copy)
    return copy


def test_the_validator_reads_each_file_once(sites: Path, tmp_path: Path) -> None:
    env = dict(_environ(tmp_path), TIROSH_SITES_DIR=str(sites))
    code, output, counts = counted_run(
        [sys.executable, "-m", "tirosh.site", "validate", "tirosh-home"], sites, env
    )
    assert code == 0, output
    assert _opened(counts, "tirosh-home") == dict.fromkeys(SITE_FILES, 1)


def test_a_deploy_plan_reads_each_file_once(sites: Path, tmp_path: Path) -> None:
    env = dict(_environ(tmp_path), TIROSH_SITES_DIR=str(sites), FAKE_SITE="tirosh-home")
    pyinfra = str(Path(sys.executable).with_name("pyinfra"))
    code, output, counts = counted_run(
        [pyinfra, "tests/inventories/fake.py", "deploy.py", "--dry"], sites, env
    )
    assert code == 0, output
    # The local phase was planned too (no kubeconfig yet: it runs after the remote phase).
    assert "Local phase" in output
    assert _opened(counts, "tirosh-home") == dict.fromkeys(SITE_FILES, 1)


def test_an_operator_command_reads_each_file_once(sites: Path, tmp_path: Path) -> None:
    # The phase's plan for tirosh-home: the management context is not in the (empty)
    # kubeconfig, so it stops there with one line, after the site was loaded and used.
    env = dict(_environ(tmp_path), TIROSH_SITES_DIR=str(sites), GITOPS_WRITEBACK_USERNAME="u")
    env.update(GITOPS_WRITEBACK_TOKEN="t", GHCR_USERNAME="u", GHCR_PULL_TOKEN="t")
    code, output, counts = counted_run(
        [sys.executable, "-m", "local", "local/phase", "tirosh-home", "--dry"], sites, env
    )
    assert code == 1, output
    assert "Traceback" not in output
    assert _opened(counts, "tirosh-home") == dict.fromkeys(SITE_FILES, 1)
