"""Registered Secrets: secrets.toml as the site model reads it, .env, values, and a plan that never shows a value."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tirosh.secrets_registry import (
    DOCKERCONFIGJSON,
    MissingVariables,
    RegistrySecret,
    desired_data,
    key_change,
    parse_dotenv,
    plan,
    values,
)
from tirosh.site import SiteError
from tirosh.site.reader import read_alone
from tirosh.site.secrets_file import read_secrets

REPO_ROOT = Path(__file__).resolve().parents[2]
WRITEBACK = RegistrySecret(
    "argocd-image-updater-gitops-writeback",
    "argocd",
    "Opaque",
    (("username", "GITOPS_WRITEBACK_USERNAME"), ("password", "GITOPS_WRITEBACK_TOKEN")),
)
GHCR = RegistrySecret(
    "argocd-image-updater-ghcr-pull",
    "argocd",
    DOCKERCONFIGJSON,
    (),
    "ghcr.io",
    "GHCR_USERNAME",
    "GHCR_PULL_TOKEN",
)
ENV = {
    "GITOPS_WRITEBACK_USERNAME": "bot",
    "GITOPS_WRITEBACK_TOKEN": "canary-writeback-token",
    "GHCR_USERNAME": "puller",
    "GHCR_PULL_TOKEN": "canary-ghcr-token",
}


def load_secrets(site: Path) -> list[RegistrySecret]:
    """What the site model reads from ``site``'s secrets.toml."""
    return list(read_alone(read_secrets, site / "argocd/secrets.toml", site.parents[1]))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_tirosh_home_ships_the_runbooks_two_secrets() -> None:
    assert load_secrets(REPO_ROOT / "sites/tirosh-home") == [WRITEBACK, GHCR]


def test_problems_with_file_and_key(tmp_path: Path) -> None:
    site = tmp_path / "sites/s"
    (site / "argocd").mkdir(parents=True)
    (site / "argocd/secrets.toml").write_text("""
[[secrets]]
name = "Bad_Name"
namespace = "argocd"
type = "kubernetes.io/tls"
registry = "ghcr.io"
[secrets.keys]
token = "not-a-var"

[[secrets]]
name = "pull"
namespace = "argocd"
type = "kubernetes.io/dockerconfigjson"
registry = "ghcr.io/org"
""")
    with pytest.raises(SiteError) as error:
        load_secrets(site)
    out = str(error.value)
    prefix = "sites/s/argocd/secrets.toml: "
    assert prefix + "secrets[0].name: must be a Kubernetes name" in out
    assert prefix + "secrets[0].type: must be Opaque or kubernetes.io/dockerconfigjson" in out
    assert prefix + "secrets[0].registry: only for type kubernetes.io/dockerconfigjson" in out
    assert prefix + "secrets[0].keys.token: must name an environment variable" in out
    assert prefix + "secrets[1].registry: must be a registry host such as ghcr.io" in out
    assert prefix + "secrets[1].username_env: required key is missing" in out


def test_dotenv_forms() -> None:
    text = "# c\nexport A=1\nB = 'two words'\nC=\"x#y\"\nD=plain # comment\nnot a line\n9X=bad\n"
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "x#y", "D": "plain"}


def test_environment_wins_and_missing_variables_are_all_named() -> None:
    found = values(
        [WRITEBACK],
        {"GITOPS_WRITEBACK_USERNAME": "env"},
        {"GITOPS_WRITEBACK_USERNAME": "dot", "GITOPS_WRITEBACK_TOKEN": "t"},
    )
    assert found == {"GITOPS_WRITEBACK_USERNAME": "env", "GITOPS_WRITEBACK_TOKEN": "t"}
    with pytest.raises(MissingVariables) as error:
        values([WRITEBACK, GHCR], {"GHCR_USERNAME": "u"}, {})
    assert str(error.value) == (
        "not set in the environment or .env: GITOPS_WRITEBACK_USERNAME (Secret "
        "argocd-image-updater-gitops-writeback), GITOPS_WRITEBACK_TOKEN (Secret "
        "argocd-image-updater-gitops-writeback), GHCR_PULL_TOKEN (Secret "
        "argocd-image-updater-ghcr-pull); nothing was applied"
    )


def test_dockerconfigjson_has_the_auth_field_image_updater_needs() -> None:
    data = desired_data(GHCR, ENV)
    config = json.loads(data[".dockerconfigjson"])
    auth = config["auths"]["ghcr.io"]["auth"]
    assert base64.b64decode(auth).decode() == "puller:canary-ghcr-token"


def test_plan_create_update_unchanged_never_shows_a_value() -> None:
    wanted = desired_data(WRITEBACK, ENV)
    ref = "argocd/argocd-image-updater-gitops-writeback"
    assert plan(WRITEBACK, wanted, None) == [
        key_change(ref, "", "create"),
        key_change(ref, "username", "create"),
        key_change(ref, "password", "create"),
    ]
    existing = {
        "type": "Opaque",
        "data": {"username": _b64("bot"), "password": _b64("old"), "extra": _b64("x")},
    }
    changes = plan(WRITEBACK, wanted, existing)
    assert [(c.what, c.action) for c in changes] == [
        (f"Secret {ref} key username", "unchanged"),
        (f"Secret {ref} key password", "update"),
    ]
    text = "\n".join(str(c) for c in changes)
    assert "update    Secret argocd/argocd-image-updater-gitops-writeback key password" in text
    for value in ENV.values():
        assert value not in text


def test_dockerconfigjson_compares_by_meaning_and_type_changes_show() -> None:
    wanted = desired_data(GHCR, ENV)
    reordered = json.dumps(json.loads(wanted[".dockerconfigjson"]), indent=2)
    existing = {"type": DOCKERCONFIGJSON, "data": {".dockerconfigjson": _b64(reordered)}}
    assert [c.action for c in plan(GHCR, wanted, existing)] == ["unchanged"]
    opaque = {"type": "Opaque", "data": {".dockerconfigjson": _b64(reordered)}}
    ref = "argocd/argocd-image-updater-ghcr-pull"
    assert [(c.what, c.action) for c in plan(GHCR, wanted, opaque)] == [
        (f"Secret {ref}", "update"),
        (f"Secret {ref} key .dockerconfigjson", "unchanged"),
    ]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ('"a/b"', "is not a Secret key"),
        ('""', "is not a Secret key"),
        ('".."', "is not a Secret key"),
        ('"a\\u001b[31m"', "contains the control character U+001B"),
        ('"caf\\u00e9"', "is not a Secret key"),
    ],
)
def test_secret_keys_follow_kubernetes_grammar(tmp_path: Path, key: str, problem: str) -> None:
    site = tmp_path / "sites/s"
    (site / "argocd").mkdir(parents=True)
    (site / "argocd/secrets.toml").write_text(
        f'[[secrets]]\nname = "x"\nnamespace = "argocd"\n[secrets.keys]\n{key} = "VAR"\n'
    )
    with pytest.raises(SiteError) as error:
        load_secrets(site)
    [line] = str(error.value).splitlines()
    assert line.startswith("sites/s/argocd/secrets.toml: secrets[0].keys.")
    assert problem in line
    assert "\x1b" not in line  # an escape is shown escaped, never sent to the terminal


def test_valid_secret_keys_pass(tmp_path: Path) -> None:
    site = tmp_path / "sites/s"
    (site / "argocd").mkdir(parents=True)
    (site / "argocd/secrets.toml").write_text(
        '[[secrets]]\nname = "x"\nnamespace = "argocd"\n[secrets.keys]\n'
        '".dockerconfigjson" = "A"\n"tls.crt" = "B"\nuser_name-1 = "C"\n'
    )
    [secret] = load_secrets(site)
    assert [key for key, _ in secret.keys] == [".dockerconfigjson", "tls.crt", "user_name-1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('T="quoted" # a comment\n', {"T": "quoted"}),
        ('T="line one\nline two"\n', {"T": "line one\nline two"}),
        ("\ufeffT=after-a-bom\n", {"T": "after-a-bom"}),
        ("export\tT=after-a-tab\n", {"T": "after-a-tab"}),
        ('T="a\\nb"\n', {"T": "a\nb"}),
        ("T='a\\nb'\n", {"T": "a\\nb"}),
        ("T=pa$word${HOME}\n", {"T": "pa$word${HOME}"}),
    ],
)
def test_dotenv_values_are_read_as_the_ecosystem_reads_them(
    text: str, expected: dict[str, str]
) -> None:
    assert parse_dotenv(text) == expected


class _Core:
    """Fault injection, named as such: a CoreV1Api stand-in whose apply of the replacement
    fails after the old Secret was deleted (a real API server down at that moment)."""

    def __init__(self) -> None:
        from kubernetes import client

        self.calls: list[str] = []
        self.stored = client.V1Secret(
            metadata=client.V1ObjectMeta(name="pull", namespace="argocd", labels={"a": "b"}),
            type="Opaque",
            data={".dockerconfigjson": _b64("{}")},
        )

    def patch_namespaced_secret(self, name: str, namespace: str, body: dict, **kw: object) -> None:
        self.calls.append(f"apply {name}" + (" (dry run)" if kw.get("dry_run") else ""))
        if not kw.get("dry_run"):
            raise ConnectionError("the API server went away")

    def read_namespaced_secret(self, name: str, namespace: str) -> object:
        return self.stored

    def delete_namespaced_secret(self, name: str, namespace: str) -> None:
        self.calls.append(f"delete {name}")

    def create_namespaced_secret(self, namespace: str, body: dict) -> None:
        self.calls.append(f"create {body['metadata']['name']}")
        self.restored = body


def test_a_failed_type_change_puts_the_old_secret_back() -> None:
    from local.kube.secrets import PlannedSecret, apply_secrets

    core = _Core()
    wanted = desired_data(GHCR, ENV)
    planned = PlannedSecret(GHCR, wanted, plan(GHCR, wanted, {"type": "Opaque", "data": {}}), True)
    with pytest.raises(ConnectionError):
        apply_secrets(core, [planned])
    name = "argocd-image-updater-ghcr-pull"
    assert core.calls == [
        f"apply {name}-tirosh-check (dry run)",
        f"delete {name}",
        f"apply {name}",
        "create pull",
    ]
    assert core.restored["type"] == "Opaque"
    assert core.restored["metadata"]["labels"] == {"a": "b"}
    assert core.restored["data"] == {".dockerconfigjson": _b64("{}")}
