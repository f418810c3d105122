"""The lab's GitOps loop: what the lab site declares for it, and a commit pushed to the edge.

A copy of the lab site (tests/lab/test_gitops_loop.py, bench/gitops_webhook.py) registers the
workload cluster of the profile and ``private/gitops.git`` over SSH, and declares project
``lab`` and the root application ``lab-root`` of lab/gitops/apps (the app-of-apps layout, see
lab/gitops/README.md), with the edge's webhook secret from ``LAB_WEBHOOK_SECRET``. ``push``
commits a change to a clone and pushes it over SSH with the deploy key: the edge's
post-receive hook then calls Argo CD's webhook (lab/edge.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Final

from lab import config, edge

REPO_URL: Final = f"git@{edge.GIT_SERVER_NAME}:private/gitops.git"
CLUSTER: Final = "lab-rke2-gpu"
ROOT: Final = "lab-root"
CHILDREN: Final = ("lab-rke2-gpu", "lab-node", "lab-gated")
AUTOMATED: Final = ("lab-root", "lab-rke2-gpu", "lab-node")
WEBHOOK_ENV: Final = "LAB_WEBHOOK_SECRET"
LIVE_FILE: Final = "workloads/rke2-gpu/configmap.yaml"


def repositories_toml() -> str:
    # The edge's host key as lab-up recorded it ("git.lab.test,198.51.100.12 <type> <key>"),
    # pinned in the site like an operator pins GitHub's.
    _, key_type, key = (edge.SECRETS.directory / "ssh_known_hosts").read_text().split()[:3]
    return (
        "[[repositories]]\n"
        'name = "lab-gitops"\n'
        f'url = "{REPO_URL}"\n'
        f'ssh_key_file = "{edge.SECRETS.deploy_key}"\n'
        f'ssh_known_hosts = ["{edge.GIT_SERVER_NAME} {key_type} {key}"]\n'
    )


APPLICATIONS_TOML: Final = f"""
[gitops]
webhook_secret_env = "{WEBHOOK_ENV}"

[[projects]]
name = "lab"
description = "the lab's root application and its children"
source_repos = ["{REPO_URL}"]
destinations = [
  {{ cluster = "in-cluster", namespace = "argocd" }},
  {{ cluster = "in-cluster", namespace = "lab-web" }},
  {{ cluster = "{CLUSTER}", namespace = "lab-*" }},
]
cluster_resources = ["Namespace"]

[[applications]]
name = "{ROOT}"
project = "lab"
repo_url = "{REPO_URL}"
path = "apps"
target_revision = "main"
cluster = "in-cluster"
namespace = "argocd"
sync = "automated"
prune = true
self_heal = true
"""


def declare(sites: Path) -> None:
    """Turn the copy ``sites`` of sites/ into the loop's: the profile's cluster, the SSH
    repository, the project and root application."""
    argocd = sites / "lab" / "argocd"
    (argocd / "clusters.toml").unlink(missing_ok=True)
    (argocd / "repositories.toml").write_text(repositories_toml())
    (argocd / "applications.toml").write_text(APPLICATIONS_TOML)


def webhook_secret() -> str:
    return edge.SECRETS.webhook_secret.read_text().strip()


def _git_env() -> dict[str, str]:
    ssh = (
        f"ssh -i {edge.SECRETS.deploy_key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes "
        f"-o UserKnownHostsFile={edge.SECRETS.directory / 'ssh_known_hosts'}"
    )
    return dict(
        os.environ,
        GIT_SSH_COMMAND=ssh,
        GIT_AUTHOR_NAME="lab operator",
        GIT_AUTHOR_EMAIL="op@lab.test",
        GIT_COMMITTER_NAME="lab operator",
        GIT_COMMITTER_EMAIL="op@lab.test",
    )


def clone(work: Path) -> Path:
    """A clone of private/gitops.git (by the edge's address: the name resolves in the lab only)."""
    address = config.host(config.EDGE_HOST).address
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(
        ["git", "clone", "-q", f"git@{address}:private/gitops.git", str(work)],
        env=_git_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return work


def push(work: Path, path: str, text: str, message: str) -> str:
    """Write ``text`` to ``path`` of the clone, commit, push to main; the push's output (the
    hook's line ``remote: argocd webhook: 200`` included)."""
    (work / path).write_text(text)
    env = _git_env()
    subprocess.run(["git", "-C", str(work), "commit", "-qam", message], env=env, check=True)
    pushed = subprocess.run(
        ["git", "-C", str(work), "push", "-q", "origin", "HEAD:main"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return pushed.stdout + pushed.stderr


def live_configmap(revision: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: live\n"
        f'data:\n  revision: "{revision}"\n'
    )
