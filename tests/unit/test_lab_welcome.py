"""The last screen of `make demo`: what a newcomer needs next, on one screen."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import welcome
from tirosh.site import load_site

REPO = Path(__file__).resolve().parents[2]


def test_the_screen_names_the_url_the_password_command_the_contexts_and_commands() -> None:
    site = load_site("lab")
    text = welcome.screen(site)
    lines = text.splitlines()
    assert len(lines) <= 24 and max(len(line) for line in lines) <= 100
    assert f"Argo CD {site.argocd.version} runs" in lines[0]
    assert "https://gitops.lab.test" in text
    assert "--resolve gitops.lab.test:443:198.51.100.12" in text  # the name resolves nowhere else
    assert "make argocd/password SITE=lab" in text
    assert "make argocd/port-forward SITE=lab" in text
    start = next(i for i, line in enumerate(lines) if line.startswith("Contexts"))
    assert lines[start].split()[1] == site.argocd_context == "lab/k3s"
    assert lines[start + 1].split()[0] == site.rke2_context == "lab/rke2/gpu"
    for command in ("make argocd/status SITE=lab", "make lab-ssh HOST=argocd", "make lab-down"):
        assert command in text
    assert "tirosh-home" not in text  # no command that would reach a real site


def test_make_demo_ends_with_the_screen_after_the_rollout_wait() -> None:
    recipe = subprocess.run(
        ["make", "-n", "--no-print-directory", "demo/report"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.splitlines()
    assert "-m local argocd/status lab --wait 600" in recipe[1]
    assert recipe[-1].endswith("-m lab.welcome")
