"""The local phase's commands against the real Argo CD (lab/argocd_harness.py), as an operator
runs them: subprocesses with the environment as their only input. Canary secrets are checked
in every output, in ``ps`` samples taken during each run, and in files written outside 0600.

Tests run in file order; the password change comes last (it invalidates the initial one).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from local.argocd.api import Client, LoginFailed
from tests.local.conftest import (
    CLUSTER_NAME,
    GIT_TOKEN,
    GIT_USER,
    MANAGEMENT,
    NAMESPACE,
    SITE,
    WORKLOAD,
    Harness,
)
from tests.local.operator import Run, leaks, run
from tirosh.argocd_secrets import secret_name

pytestmark = pytest.mark.lab

WRITEBACK_TOKEN = "canary-writeback-7f3a9c1e"
GHCR_TOKEN = "canary-ghcr-5b2d8e4f"
NEW_PASSWORD = "canary-admin-9d4c2b7a"
REPO_TOKEN = "canary-repo-token-3e8f1a6d"
SECRETS_TOML = """
[[secrets]]
name = "argocd-image-updater-gitops-writeback"
namespace = "argocd"
[secrets.keys]
username = "GITOPS_WRITEBACK_USERNAME"
password = "GITOPS_WRITEBACK_TOKEN"

[[secrets]]
name = "argocd-image-updater-ghcr-pull"
namespace = "argocd"
type = "kubernetes.io/dockerconfigjson"
registry = "ghcr.io"
username_env = "GHCR_USERNAME"
password_env = "GHCR_PULL_TOKEN"
"""
SECRET_ENV = {
    "GITOPS_WRITEBACK_USERNAME": "writeback-bot",
    "GITOPS_WRITEBACK_TOKEN": WRITEBACK_TOKEN,
    "GHCR_USERNAME": "ghcr-bot",
    "GHCR_PULL_TOKEN": GHCR_TOKEN,
}


def _canaries(harness: Harness) -> list[str]:
    values = [WRITEBACK_TOKEN, GHCR_TOKEN, NEW_PASSWORD, REPO_TOKEN, _sa_token(harness)]
    initial = harness.initial_password()
    return [v for v in [*values, initial or ""] if v]


def _sa_token(harness: Harness) -> str:
    result = harness.kubectl(
        WORKLOAD,
        "-n",
        "kube-system",
        "get",
        "secret",
        "argocd-manager-long-lived-token",
        "--ignore-not-found",
        "-o",
        "jsonpath={.data.token}",
    )
    return base64.b64decode(result.stdout).decode() if result.stdout else ""


def _connected(stdout: str) -> bool:
    """The cluster's state after registering: Successful (argocd-server's own test), or Unknown
    once the application controller took over and no Application uses the cluster yet (what
    Argo CD reports then); never Failed. The Application test below proves the connection."""
    states = [line for line in stdout.splitlines() if f"cluster {CLUSTER_NAME}: connection" in line]
    return len(states) == 1 and (
        states[0].endswith("connection Successful")
        or states[0].endswith(
            "connection Unknown: Cluster has no applications and is not being monitored."
        )
    )


def _workload_accepts(harness: Harness, token: str) -> bool:
    """Whether the workload API authenticates ``token`` (header only, never argv)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    request = urllib.request.Request(
        f"{harness.workload_direct}/api", headers={"Authorization": f"Bearer {token}"}
    )
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        assert exc.code == 401, exc.code
        return False


def _clean(harness: Harness, result: Run, canaries: list[str] | None = None) -> None:
    # The ps samples did see the command itself: the canary check below looked at something.
    assert any(" ".join(result.argv[1:]) in line for line in result.command_lines)
    found = leaks(result, canaries or _canaries(harness), [harness.home, harness.sites])
    assert not found, found


def _admin_env(harness: Harness, **extra: str) -> dict[str, str]:
    return harness.env(ARGOCD_PASSWORD=harness.initial_password() or NEW_PASSWORD, **extra)


def _cluster_secret(harness: Harness) -> dict[str, str]:
    result = harness.kubectl(
        MANAGEMENT,
        "-n",
        NAMESPACE,
        "get",
        "secret",
        "-l",
        "argocd.argoproj.io/secret-type=cluster",
        "-o",
        "json",
    )
    items = json.loads(result.stdout)["items"]
    assert len(items) == 1, [i["metadata"]["name"] for i in items]
    return {k: base64.b64decode(v).decode() for k, v in items[0]["data"].items()}


# --------------------------------------------------------------------------- clusters


def test_cluster_add_registers_the_workload_cluster_with_a_token(harness: Harness) -> None:
    result = run("local", "argocd/cluster/add", SITE, env=_admin_env(harness))
    assert result.code == 0, result.output
    assert (
        f"cluster {CLUSTER_NAME}: create    ServiceAccount kube-system/argocd-manager"
        in result.stdout
    )
    assert f"cluster {CLUSTER_NAME}: create    ClusterRole argocd-manager-role" in result.stdout
    assert (
        f"cluster {CLUSTER_NAME}: create    Argo CD cluster {CLUSTER_NAME} ({harness.workload_server})"
        in result.stdout
    )
    assert _connected(result.stdout)
    _clean(harness, result)
    stored = _cluster_secret(harness)
    config = json.loads(stored["config"])
    assert stored["server"] == harness.workload_server and stored["name"] == CLUSTER_NAME
    same = config["bearerToken"] == _sa_token(harness)
    assert same
    assert (
        "keyData" not in config["tlsClientConfig"] and "certData" not in config["tlsClientConfig"]
    )
    assert config["tlsClientConfig"]["caData"]
    for kind, name in (
        ("serviceaccount", "argocd-manager"),
        ("secret", "argocd-manager-long-lived-token"),
    ):
        harness.kubectl(WORKLOAD, "-n", "kube-system", "get", kind, name)
    harness.kubectl(WORKLOAD, "get", "clusterrole", "argocd-manager-role")
    binding = json.loads(
        harness.kubectl(
            WORKLOAD, "get", "clusterrolebinding", "argocd-manager-role-binding", "-o", "json"
        ).stdout
    )
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "argocd-manager", "namespace": "kube-system"}
    ]


def _resource_versions(harness: Harness) -> dict[str, str]:
    """Name -> resourceVersion of Argo CD's repository, repo-creds and cluster Secrets."""
    result = harness.kubectl(
        MANAGEMENT,
        "-n",
        NAMESPACE,
        "get",
        "secret",
        "-l",
        "argocd.argoproj.io/secret-type in (repository,repo-creds,cluster)",
        "-o",
        "json",
    )
    items = json.loads(result.stdout)["items"]
    return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}


# A password Argo CD would refuse: a run that logged in would fail on it.
NEVER_SENT = "never-sent-password"


def test_cluster_add_again_writes_nothing_and_logs_in_nowhere(harness: Harness) -> None:
    before = _resource_versions(harness)
    result = run("local", "argocd/cluster/add", SITE, env=harness.env(ARGOCD_PASSWORD=NEVER_SENT))
    assert result.code == 0, result.output
    actions = [line.split(": ", 1)[1].split()[0] for line in result.stdout.splitlines()]
    assert set(actions) == {"unchanged"}, result.stdout
    assert "connection" not in result.stdout  # Argo CD was not asked
    assert _resource_versions(harness) == before
    _clean(harness, result)


def test_a_hand_edit_of_an_owned_key_is_put_back_and_others_are_left(harness: Harness) -> None:
    name = _cluster_secret_name(harness)
    harness.kubectl(
        MANAGEMENT, "-n", NAMESPACE, "patch", "secret", name, "--type=merge",
        "-p", json.dumps({"stringData": {"name": "edited-by-hand", "shard": "1"}}),
    )  # fmt: skip
    # The initial admin Secret is the only credential given: the login it needs works.
    result = run("local", "argocd/cluster/add", SITE, env=harness.env())
    assert result.code == 0, result.output
    assert f"update    Argo CD cluster {CLUSTER_NAME}" in result.stdout
    assert "(changed: name)" in result.stdout
    assert _connected(result.stdout)
    stored = _cluster_secret(harness)
    assert stored["name"] == CLUSTER_NAME and stored["shard"] == "1"
    _clean(harness, result)


def test_a_cluster_registered_through_the_api_is_adopted(harness: Harness) -> None:
    stored = _cluster_secret(harness)
    harness.kubectl(
        MANAGEMENT, "-n", NAMESPACE, "delete", "secret", _cluster_secret_name(harness)
    )  # fmt: skip
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or NEW_PASSWORD, "test")
    server = stored["server"]
    body = {"server": server, "name": CLUSTER_NAME, "config": json.loads(stored["config"])}
    client.upsert_cluster(body)  # as `argocd cluster add` does
    result = run("local", "argocd/cluster/add", SITE, env=harness.env(ARGOCD_PASSWORD=NEVER_SENT))
    assert result.code == 0, result.output
    assert f"unchanged Argo CD cluster {CLUSTER_NAME}" in result.stdout
    assert _cluster_secret_name(harness) == secret_name("cluster", server)
    _cluster_secret(harness)  # exactly one
    _clean(harness, result)


def _cluster_secret_name(harness: Harness) -> str:
    result = harness.kubectl(
        MANAGEMENT, "-n", NAMESPACE, "get", "secret", "-l",
        "argocd.argoproj.io/secret-type=cluster", "-o", "jsonpath={.items[0].metadata.name}",
    )  # fmt: skip
    return result.stdout


def test_cluster_dry_run_needs_no_login_and_changes_nothing(harness: Harness) -> None:
    result = run("local", "argocd/cluster/add", SITE, "--dry", env=harness.env())
    assert result.code == 0, result.output
    assert f"unchanged Argo CD cluster {CLUSTER_NAME}" in result.stdout


def test_cluster_rotate_replaces_the_token(harness: Harness) -> None:
    old = _sa_token(harness)
    result = run("local", "argocd/cluster/rotate", SITE, env=_admin_env(harness))
    assert result.code == 0, result.output
    new = _sa_token(harness)
    same = new == old  # compared apart: an assert on the tokens would print them
    assert new and not same, result.stdout
    stored = json.loads(_cluster_secret(harness)["config"])["bearerToken"] == new
    assert stored
    assert (
        "delete    ServiceAccount kube-system/argocd-manager (revokes the token)" in result.stdout
    )
    assert "update    Argo CD cluster" in result.stdout and _connected(result.stdout)
    _clean(harness, result, [*_canaries(harness), old])


def test_the_management_cluster_and_a_missing_context_are_refused(harness: Harness) -> None:
    (harness.sites / SITE / "argocd/clusters.toml").rename(
        harness.sites / SITE / "argocd/clusters.off"
    )
    try:
        own = run(
            "local", "argocd/cluster/add", SITE, env=_admin_env(harness, CLUSTER_KUBECTX=MANAGEMENT)
        )
        # Seen from the site alone: refused at validation, before any connection (exit 2).
        assert own.code == 2 and "is the management context" in own.stderr, own.output
        # Another name for the management cluster's API is seen only through the kubeconfig.
        document = yaml.safe_load(harness.kubeconfig.read_text())
        [entry] = [c["context"] for c in document["contexts"] if c["name"] == MANAGEMENT]
        document["contexts"].append({"name": "mgmt-alias", "context": dict(entry)})
        harness.kubeconfig.write_text(yaml.safe_dump(document))
        alias = run(
            "local",
            "argocd/cluster/add",
            SITE,
            env=_admin_env(harness, CLUSTER_KUBECTX="mgmt-alias"),
        )
        assert alias.code == 1 and "is the management cluster" in alias.stderr, alias.output
        missing = run(
            "local", "argocd/cluster/add", SITE, env=_admin_env(harness, CLUSTER_KUBECTX="nope")
        )
        assert missing.code == 1
        assert f"context 'nope' is not in {harness.kubeconfig}" in missing.stderr
        # The kubeconfig's own address for the workload cluster is loopback: refused with a hint.
        raw = run("local", "argocd/cluster/add", SITE, env=_admin_env(harness))
        assert raw.code == 1 and "is this machine's loopback" in raw.stderr, raw.output
    finally:
        (harness.sites / SITE / "argocd/clusters.off").rename(
            harness.sites / SITE / "argocd/clusters.toml"
        )


# --------------------------------------------------------------------------- Secrets


def _secret(harness: Harness, name: str) -> dict[str, Any]:
    return json.loads(
        harness.kubectl(MANAGEMENT, "-n", NAMESPACE, "get", "secret", name, "-o", "json").stdout
    )


def test_secrets_plan_apply_round_trip(harness: Harness) -> None:
    (harness.sites / SITE / "argocd/secrets.toml").write_text(SECRETS_TOML)
    env = harness.env(**SECRET_ENV)
    plan = run("local", "kubernetes/secret/plan", SITE, env=env)
    assert plan.code == 0, plan.output
    assert (
        "create    Secret argocd/argocd-image-updater-gitops-writeback key password" in plan.stdout
    )
    assert (
        "create    Secret argocd/argocd-image-updater-ghcr-pull key .dockerconfigjson"
        in plan.stdout
    )
    applied = run("local", "kubernetes/secret/apply", SITE, env=env)
    assert applied.code == 0, applied.output
    writeback = _secret(harness, "argocd-image-updater-gitops-writeback")
    assert writeback["type"] == "Opaque"
    data = {k: base64.b64decode(v).decode() for k, v in writeback["data"].items()}
    assert data == {"username": "writeback-bot", "password": WRITEBACK_TOKEN}
    pull = _secret(harness, "argocd-image-updater-ghcr-pull")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(pull["data"][".dockerconfigjson"]))
    assert base64.b64decode(config["auths"]["ghcr.io"]["auth"]).decode() == f"ghcr-bot:{GHCR_TOKEN}"
    again = run("local", "kubernetes/secret/plan", SITE, env=env)
    assert [line.split()[0] for line in again.stdout.splitlines()] == ["unchanged"] * 3
    for result in (plan, applied, again):
        _clean(harness, result)


def test_secrets_changed_token_updates_only_its_key(harness: Harness) -> None:
    env = harness.env(**dict(SECRET_ENV, GITOPS_WRITEBACK_TOKEN=WRITEBACK_TOKEN + "-2"))
    result = run(
        "local",
        "kubernetes/secret/plan",
        SITE,
        env=dict(env, KUBERNETES_SECRET="argocd-image-updater-gitops-writeback"),
    )
    assert result.stdout.splitlines() == [
        "unchanged Secret argocd/argocd-image-updater-gitops-writeback key username",
        "update    Secret argocd/argocd-image-updater-gitops-writeback key password",
    ]
    _clean(harness, result, [*_canaries(harness), WRITEBACK_TOKEN + "-2"])


def test_a_missing_variable_is_named_and_nothing_applies(harness: Harness) -> None:
    env = harness.env(**{k: v for k, v in SECRET_ENV.items() if k != "GHCR_PULL_TOKEN"})
    env["GITOPS_WRITEBACK_TOKEN"] = "would-change"
    result = run("local", "kubernetes/secret/apply", SITE, env=env)
    assert result.code == 1
    assert "GHCR_PULL_TOKEN (Secret argocd-image-updater-ghcr-pull)" in result.stderr
    assert "nothing was applied" in result.stderr
    data = _secret(harness, "argocd-image-updater-gitops-writeback")["data"]
    assert base64.b64decode(data["password"]).decode() == WRITEBACK_TOKEN


# --------------------------------------------------------------------------- repositories


def test_an_unreachable_repository_fails_with_argocds_message(harness: Harness) -> None:
    (harness.sites / SITE / "argocd/repositories.toml").write_text(
        '[[repositories]]\nname = "nowhere"\nurl = "http://127.0.0.1:9/org/nowhere.git"\n'
        'username = "bot"\ntoken_env = "REPO_TOKEN"\n'
    )
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness, REPO_TOKEN=REPO_TOKEN))
    assert result.code == 1, result.output
    assert "nowhere: connection Failed:" in result.stdout
    assert "connection refused" in result.stdout.lower()
    assert "(its Secret was removed again)" in result.stdout
    assert not _repository_secrets(harness, "http://127.0.0.1:9/org/nowhere.git")
    _clean(harness, result)


def test_a_missing_token_is_named_before_anything_changes(harness: Harness) -> None:
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness))
    assert result.code == 1
    assert "export REPO_TOKEN" in result.stderr and "nothing was changed" in result.stderr


def _repository_secrets(harness: Harness, url: str) -> list[dict[str, Any]]:
    """Every repository Secret for ``url`` (Argo CD would use one of duplicates)."""
    result = harness.kubectl(
        MANAGEMENT,
        "-n",
        NAMESPACE,
        "get",
        "secret",
        "-l",
        "argocd.argoproj.io/secret-type=repository",
        "-o",
        "json",
    )
    items = json.loads(result.stdout)["items"]
    return [i for i in items if base64.b64decode(i["data"].get("url", "")).decode() == url]


def _repository_secret(harness: Harness, url: str) -> dict[str, str]:
    """The decoded data of the one repository Secret for ``url``."""
    [item] = _repository_secrets(harness, url)
    return {k: base64.b64decode(v).decode() for k, v in item["data"].items()}


def _repositories(harness: Harness, text: str) -> None:
    (harness.sites / SITE / "argocd/repositories.toml").write_text(text)


def test_public_and_token_repositories_connect(harness: Harness, git_server: str) -> None:
    _repositories(
        harness,
        f"""
[[repositories]]
name = "public"
url = "{git_server}/public/gitops.git"

[[repositories]]
name = "private"
url = "{git_server}/private/gitops.git"
username = "{GIT_USER}"
token_env = "GIT_TOKEN"
""",
    )
    # Registered earlier through Argo CD's API, as `argocd repo add` does: adopted.
    public = f"{git_server}/public/gitops.git"
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or NEW_PASSWORD, "test")
    client.upsert_repository({"repo": public, "name": "public", "type": "git"})
    env = _admin_env(harness, GIT_TOKEN=GIT_TOKEN)
    result = run("local", "argocd/repo/add", SITE, env=env)
    assert result.code == 0, result.output
    assert "public: unchanged repository" in result.stdout  # the API wrote what we declare
    assert "private: create    repository" in result.stdout
    assert "private: connection Successful" in result.stdout
    [adopted] = _repository_secrets(harness, public)
    assert adopted["metadata"]["name"] == secret_name("repository", public)
    stored = _repository_secret(harness, f"{git_server}/private/gitops.git")
    assert (stored["username"], stored["password"]) == (GIT_USER, GIT_TOKEN)
    before = _resource_versions(harness)
    again = run("local", "argocd/repo/add", SITE, env=dict(env, ARGOCD_PASSWORD=NEVER_SENT))
    assert again.code == 0, again.output
    assert "private: unchanged repository" in again.stdout
    assert " create " not in again.stdout and " update " not in again.stdout
    assert "connection" not in again.stdout and _resource_versions(harness) == before
    listed = run("local", "argocd/repo/list", SITE, env=env)
    assert listed.code == 0, listed.output
    assert f"private  {git_server}/private/gitops.git  git  Successful" in listed.stdout
    for item in (result, again, listed):
        _clean(harness, item, [*_canaries(harness), GIT_TOKEN])


def test_a_wrong_token_fails_and_the_stored_credentials_stay(
    harness: Harness, git_server: str
) -> None:
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness, GIT_TOKEN="wrong-token"))
    assert result.code == 1, result.output
    assert "private: connection Failed:" in result.stdout
    assert "authentication required" in result.stdout.lower()
    stored = _repository_secret(harness, f"{git_server}/private/gitops.git")
    assert stored["password"] == GIT_TOKEN


def test_an_upsert_carries_the_credentials(harness: Harness, git_server: str) -> None:
    text = (harness.sites / SITE / "argocd/repositories.toml").read_text()
    _repositories(harness, text.replace('name = "private"', 'name = "private-renamed"'))
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness, GIT_TOKEN=GIT_TOKEN))
    assert result.code == 0, result.output
    assert "private-renamed: update    repository" in result.stdout
    stored = _repository_secret(harness, f"{git_server}/private/gitops.git")
    assert (stored["name"], stored["password"]) == ("private-renamed", GIT_TOKEN)


def test_a_credential_template_serves_a_repository_without_its_own(
    harness: Harness, git_server: str
) -> None:
    _repositories(
        harness,
        f"""
[[repositories]]
name = "other"
url = "{git_server}/private/other.git"

[[credentials]]
url = "{git_server}/private"
username = "{GIT_USER}"
token_env = "GIT_TOKEN"
""",
    )
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness, GIT_TOKEN=GIT_TOKEN))
    assert result.code == 0, result.output
    assert f"template {git_server}/private: create    repo-creds" in result.stdout
    assert "other: connection Successful" in result.stdout
    _clean(harness, result, [*_canaries(harness), GIT_TOKEN])


def test_ssh_host_keys_go_to_argocd_and_the_deploy_key_stays_secret(
    harness: Harness, tmp_path: Path
) -> None:
    key = tmp_path / "deploy-key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(key)], check=True
    )
    key.chmod(0o600)
    private = key.read_text()
    public = key.with_suffix(".pub").read_text().split()
    _repositories(
        harness,
        f"""
[[repositories]]
name = "over-ssh"
url = "ssh://git@127.0.0.1:9/org/r.git"
ssh_key_file = "{key}"
ssh_known_hosts = ["[127.0.0.1]:9 {public[0]} {public[1]}"]
""",
    )
    result = run("local", "argocd/repo/add", SITE, env=_admin_env(harness))
    assert "known hosts: create    SSH known host [127.0.0.1]:9 ssh-ed25519" in result.stdout, (
        result.output
    )
    known = harness.kubectl(
        MANAGEMENT,
        "-n",
        NAMESPACE,
        "get",
        "configmap",
        "argocd-ssh-known-hosts-cm",
        "-o",
        "jsonpath={.data.ssh_known_hosts}",
    ).stdout
    assert f"[127.0.0.1]:9 ssh-ed25519 {public[1]}" in known
    # Nothing listens on port 9: Argo CD's own connection error, and a non-zero exit.
    assert result.code == 1 and "over-ssh: connection Failed:" in result.stdout
    again = run("local", "argocd/repo/add", SITE, env=_admin_env(harness))
    assert "known hosts: unchanged SSH known host [127.0.0.1]:9" in again.stdout
    key_body = "".join(private.splitlines()[1:-1])
    for item in (result, again):
        _clean(harness, item, [*_canaries(harness), key_body])


def test_an_application_syncs_the_registered_repository_to_the_registered_cluster(
    harness: Harness, git_server: str
) -> None:
    """Proof that what was registered works: Argo CD's own controller syncs through both."""
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or NEW_PASSWORD, "test")
    application = {
        "metadata": {"name": "proof", "namespace": NAMESPACE},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": f"{git_server}/private/gitops.git",
                "path": "apps",
                "targetRevision": "main",
            },
            "destination": {"server": harness.workload_server, "namespace": "default"},
            "syncPolicy": {"automated": {}},
        },
    }
    client.request("POST", "/api/v1/applications", application, {"upsert": "true"})
    deadline = time.monotonic() + 120
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.request("GET", "/api/v1/applications/proof").get("status") or {}
        if (status.get("sync") or {}).get("status") == "Synced":
            break
        time.sleep(2)
    assert (status.get("sync") or {}).get("status") == "Synced", json.dumps(status)[:2000]
    # The controller now monitors the cluster: its state turns Successful (refreshed every ~10 s).
    state = ""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and state != "Successful":
        found = client.get_cluster(harness.workload_server) or {}
        state = ((found.get("info") or {}).get("connectionState") or {}).get("status", "")
        time.sleep(2)
    assert state == "Successful"
    synced = harness.kubectl(
        WORKLOAD, "-n", "default", "get", "configmap", "synced-by-argocd", "-o", "json"
    )
    assert json.loads(synced.stdout)["data"] == {"from": "gitops"}


# --------------------------------------------------------------------------- credentials


def test_no_credentials_says_what_to_provide(harness: Harness) -> None:
    env = harness.env()
    env["ARGOCD_INITIAL_SECRET_FROM"] = "context"
    (harness.sites / SITE / "argocd/repositories.toml").unlink()
    _edit_cluster_name(harness)  # a change: the command must log in
    result = run(
        "local", "argocd/cluster/add", SITE, env=dict(env, ARGOCD_PASSWORD="wrong-password-once")
    )
    assert result.code == 1
    assert "refused the password of user admin from ARGOCD_PASSWORD" in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1, errors


def _edit_cluster_name(harness: Harness) -> None:
    """A change to register, so that the next command must log in."""
    harness.kubectl(
        MANAGEMENT, "-n", NAMESPACE, "patch", "secret", _cluster_secret_name(harness),
        "--type=merge", "-p", json.dumps({"stringData": {"name": "edited-by-hand"}}),
    )  # fmt: skip


def test_the_initial_secret_logs_in_when_nothing_else_is_given(harness: Harness) -> None:
    _edit_cluster_name(harness)
    result = run("local", "argocd/cluster/add", SITE, env=harness.env())
    assert _connected(result.stdout), result.output
    assert result.code == 0, result.output
    _clean(harness, result)


def test_an_auth_token_is_used_as_is(harness: Harness) -> None:
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or "", "test")
    token = str(client._token)
    _edit_cluster_name(harness)
    result = run("local", "argocd/cluster/add", SITE, env=harness.env(ARGOCD_AUTH_TOKEN=token))
    assert result.code == 0, result.output
    assert _connected(result.stdout), result.output
    _clean(harness, result, [*_canaries(harness), token])


# --------------------------------------------------------------------------- doctor and phase


def test_phase_dry_lists_per_object_and_a_second_run_changes_nothing(harness: Harness) -> None:
    env = _admin_env(harness, **SECRET_ENV)
    dry = run("local", "local/phase", SITE, "--dry", env=env)
    assert dry.code == 0, dry.output
    assert f"cluster {CLUSTER_NAME}: unchanged Argo CD cluster" in dry.stdout
    assert (
        "secret: unchanged Secret argocd/argocd-image-updater-ghcr-pull key .dockerconfigjson"
        in dry.stdout
    )
    applied = run("local", "local/phase", SITE, env=env)
    assert applied.code == 0, applied.output
    assert not [
        line for line in applied.stdout.splitlines() if " create " in line or " update " in line
    ]
    for result in (dry, applied):
        _clean(harness, result)


def test_doctor_reports_each_check(harness: Harness) -> None:
    result = run("local", "argocd/doctor", SITE, env=_admin_env(harness))
    assert (
        f"ok    cluster {CLUSTER_NAME}: {harness.workload_server}: Successful" in result.stdout
    ), result.output
    assert "ok    Argo CD API" in result.stdout
    assert "ok    Secret argocd/argocd-image-updater-ghcr-pull" in result.stdout
    # No kubelet runs on the loopback control planes: no node, no running Pod. Reported, with fixes.
    assert "FAIL  management nodes: 0/1 Ready" in result.stdout
    assert "make k3s/status SITE=loop" in result.stdout
    assert result.code == 1
    _clean(harness, result)


# --------------------------------------------------------------------------- password (last)


def test_password_show_prints_the_initial_password_on_request(harness: Harness) -> None:
    initial = harness.initial_password()
    result = run("local", "argocd/password", SITE, env=harness.env())
    assert result.code == 0 and result.stdout.strip() == initial


def test_password_update_changes_proves_and_deletes_the_initial_secret(harness: Harness) -> None:
    initial = harness.initial_password()
    assert initial
    old = Client(harness.url)
    old.login("admin", initial, "test")
    canaries = [*_canaries(harness), initial]
    result = run(
        "local",
        "argocd/password/update",
        SITE,
        "--yes",
        env=harness.env(ARGOCD_NEW_PASSWORD=NEW_PASSWORD),
    )
    assert result.code == 0, result.output
    assert "password of admin changed; a login with the new one works" in result.stdout
    assert "deleted argocd-initial-admin-secret" in result.stdout
    _clean(harness, result, canaries)
    assert harness.initial_password() is None
    with pytest.raises(LoginFailed):
        Client(harness.url).login("admin", initial, "the old password")
    assert not old.userinfo().get("loggedIn")  # the old token stopped working
    shown = run("local", "argocd/password", SITE, env=harness.env())
    assert shown.code == 1 and "no longer exists" in shown.stderr


def test_without_credentials_one_line_says_what_to_provide(harness: Harness) -> None:
    _edit_cluster_name(harness)  # a change: the command must log in
    result = run("local", "argocd/cluster/add", SITE, env=harness.env())
    assert result.code == 1
    assert result.stderr.splitlines()[-1] == (
        "no Argo CD credentials for admin (argocd-initial-admin-secret no longer exists): set "
        "ARGOCD_PASSWORD or ARGOCD_AUTH_TOKEN, or run from a terminal with --prompts-enabled in "
        "argocd.login_args / ARGOCD_LOGIN_ARGS"
    )


def test_a_site_that_declares_nothing_skips_the_phase_in_one_line(harness: Harness) -> None:
    site = harness.sites / SITE / "argocd"
    for name in ("secrets.toml", "repositories.toml"):
        (site / name).unlink(missing_ok=True)
    (site / "clusters.toml").write_text("clusters = []\n")
    result = run("local", "local/phase", SITE, env=harness.env())
    assert result.code == 0, result.output
    assert result.stdout == (
        f"local phase: site {SITE} declares no cluster, repository or Secret: skipped\n"
    )
