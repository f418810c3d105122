"""The Makefile refuses a SITE value that could run a command or leave sites/, before any recipe."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
# The site loader's rule (tirosh.site): the Makefile must agree with it exactly.
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def make_dry(site: str, target: str = "k3s/status") -> subprocess.CompletedProcess[str]:
    # -n: print recipes without running them; the SITE check runs while the Makefile is parsed.
    return subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"SITE={site}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.parametrize(
    "site",
    ["x;touch {canary}", "$(shell touch {canary})", "`touch {canary}`", "x' && touch {canary} '"],
)
def test_a_site_value_that_would_run_a_command_is_refused(site: str, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    result = make_dry(site.format(canary=canary))
    assert result.returncode != 0
    assert "SITE must name a folder of sites/" in result.stderr
    assert not canary.exists()


@pytest.mark.parametrize("site", ["", "..", "../etc", ".hidden", "-rf", "a b", "a/b"])
def test_empty_and_path_like_site_values_are_refused(site: str) -> None:
    result = make_dry(site)
    assert result.returncode != 0
    assert "SITE" in result.stderr


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="aZ09._-/ ;$()`'\"\\|&<>*?~!#\t", min_size=1, max_size=12))
def test_the_makefile_accepts_exactly_the_names_the_site_loader_accepts(site: str) -> None:
    result = make_dry(site, target="help")
    # make itself drops leading blanks of a command-line assignment (`SITE= 0` is `SITE=0`), so
    # the Makefile sees, and the recipes use, the value without them.
    as_make_sees_it = site.lstrip(" \t")
    assert (result.returncode == 0) == bool(SITE_NAME.fullmatch(as_make_sees_it)), result.stderr


def test_k3s_status_fails_when_a_health_check_fails() -> None:
    # Every check is chained with && up to the last one, so the target's exit code is theirs.
    recipe = make_dry("lab").stdout
    assert "/readyz && echo" in recipe
    assert "; echo" not in recipe


@pytest.mark.parametrize(
    "target", ["proxmox/vms/plan", "proxmox/vms/apply", "proxmox/vms/inventory"]
)
@pytest.mark.parametrize("value", ["true; touch {canary}", "$(shell touch {canary})", "`id`"])
def test_proxmox_targets_pass_fixed_flags_only(target: str, value: str, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    command = value.format(canary=canary)
    result = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            target,
            "SITE=lab",
            f"RESTART={command}",
            f"DRY={command}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    recipe = result.stdout.strip().splitlines()[-1]
    assert recipe == f".venv/bin/python -m local.proxmox {target.rsplit('/', 1)[1]} lab"
    assert not canary.exists()


def test_proxmox_flags_on_request() -> None:
    def recipe(target: str, *assignments: str) -> str:
        result = subprocess.run(
            ["make", "-n", "--no-print-directory", target, "SITE=lab", *assignments],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout.strip().splitlines()[-1]

    assert recipe("proxmox/vms/apply", "RESTART=true").endswith("apply lab --restart")
    assert recipe("proxmox/vms/inventory", "DRY=true").endswith("inventory lab --dry")
