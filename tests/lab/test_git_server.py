"""The lab's Git server on the edge host: HTTPS with a token, SSH with a deploy key.

Credentials are generated at lab-up under .lab/edge (0600) and never reach argv: git reads the
token through a credential helper that cats the file. The server's name is resolved per command
(curl's resolve option through git), and the lab CA is trusted for these commands only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lab import config, edge
from tests.lab.operator import KUBECTL, Operator

pytestmark = pytest.mark.lab
EDGE = config.host(config.EDGE_HOST).address
HTTPS = f"https://{edge.GIT_SERVER_NAME}"


def git(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = [
        "git",
        "-c",
        f"http.curloptResolve={edge.GIT_SERVER_NAME}:443:{EDGE}",
        "-c",
        f"http.sslCAInfo={edge.SECRETS.ca_cert}",
        "-c",
        "credential.interactive=never",
    ]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    environ.update(GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1", HOME="/nonexistent")
    environ.update(env or {})
    return subprocess.run([*base, *args], capture_output=True, text=True, env=environ, timeout=60)


def token_helper(token_file: Path) -> list[str]:
    # The token stays in its file: the helper prints it to git's stdin pipe, not to argv.
    helper = f"!f() {{ echo username={edge.GIT_USER}; printf 'password=%s\\n' \"$(cat {token_file})\"; }}; f"
    return ["-c", f"credential.helper={helper}"]


def test_public_repository_clones_anonymously(tmp_path: Path, lab: object) -> None:
    result = git("clone", f"{HTTPS}/public/gitops.git", str(tmp_path / "public"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "public" / "rke2-gpu" / "configmap.yaml").is_file()


def test_private_repository_refuses_anonymous_clone(tmp_path: Path, lab: object) -> None:
    result = git("clone", f"{HTTPS}/private/gitops.git", str(tmp_path / "anonymous"))
    assert result.returncode != 0
    assert (
        "401" in result.stderr
        or "Authentication failed" in result.stderr
        or "could not read Username" in result.stderr
    )


def test_private_repository_clones_with_the_token_over_https(tmp_path: Path, lab: object) -> None:
    result = git(
        *token_helper(edge.SECRETS.token),
        "clone",
        f"{HTTPS}/private/gitops.git",
        str(tmp_path / "https"),
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "https" / "rke2-gpu" / "namespace.yaml").is_file()


def test_a_wrong_token_is_refused(tmp_path: Path, lab: object) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 40 + "\n")
    result = git(
        *token_helper(wrong), "clone", f"{HTTPS}/private/gitops.git", str(tmp_path / "wrong")
    )
    assert result.returncode != 0
    assert "Authentication failed" in result.stderr
    assert "0" * 40 not in result.stderr


def _ssh(key: Path) -> dict[str, str]:
    known_hosts = edge.SECRETS.directory / "ssh_known_hosts"
    command = (
        f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile={known_hosts}"
        f" -o StrictHostKeyChecking=yes -o HostName={EDGE}"
    )
    return {"GIT_SSH_COMMAND": command}


def test_private_repository_clones_with_the_deploy_key_over_ssh(
    tmp_path: Path, lab: object
) -> None:
    url = f"git@{edge.GIT_SERVER_NAME}:private/gitops.git"
    result = git("clone", url, str(tmp_path / "ssh"), env=_ssh(edge.SECRETS.deploy_key))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ssh" / "rke2-gpu" / "configmap.yaml").is_file()


def test_another_key_is_refused_over_ssh(tmp_path: Path, lab: object) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    url = f"git@{edge.GIT_SERVER_NAME}:private/gitops.git"
    result = git("clone", url, str(tmp_path / "refused"), env=_ssh(other))
    assert result.returncode != 0
    assert "Permission denied" in result.stderr


def test_secrets_are_private_files(lab: object) -> None:
    for path in (edge.SECRETS.ca_key, edge.SECRETS.token, edge.SECRETS.deploy_key):
        assert path.stat().st_mode & 0o077 == 0, path


def test_pods_on_the_argocd_host_reach_the_git_server(operator: Operator) -> None:
    """From the repo-server Pod (CoreDNS resolves the name; the CA comes in on stdin)."""
    script = (
        "cat > /tmp/lab-ca.crt && git -c http.sslCAInfo=/tmp/lab-ca.crt ls-remote "
        f"{HTTPS}/public/gitops.git && rm /tmp/lab-ca.crt"
    )
    result = subprocess.run(
        [
            KUBECTL,
            "--context",
            "lab/k3s",
            "-n",
            "argocd",
            "exec",
            "-i",
            "deploy/argocd-repo-server",
            "-c",
            "argocd-repo-server",
            "--",
            "sh",
            "-c",
            script,
        ],
        input=edge.SECRETS.ca_cert.read_text(),
        capture_output=True,
        text=True,
        env=operator.environ(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "refs/heads/main" in result.stdout
