"""The keys access.toml renders into argocd-cm / argocd-rbac-cm / argocd-secret, and their plan."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from tirosh import rbac
from tirosh.access import Access, policy_csv, rendered
from tirosh.access_plan import ACCESS_MANAGER, Live, Target, apply_body, key_changes, owned_keys
from tirosh.site.access_file import read_access
from tirosh.site.reader import Report

SECRET = "canary-oidc-secret-3f1d"
TEXT = """
[admin]
enabled = true
[[accounts]]
name = "ops"
capabilities = ["login", "apiKey"]
password_env = "OPS_PASSWORD"
[[accounts]]
name = "ci"
capabilities = ["apiKey"]
enabled = false
[rbac]
default = ""
scopes = ["groups"]
[[rbac.roles]]
name = "deployer"
permissions = ["applications, sync, prod/*", "applications, get, prod/*"]
[[rbac.bindings]]
role = "deployer"
groups = ["ops-team"]
accounts = ["ci"]
[sso]
issuer = "https://idp.example/"
client_id = "argocd"
client_secret_env = "OIDC_SECRET"
groups_claim = "roles"
url = "https://argocd.example/"
"""


def _access(tmp_path: Path, text: str = TEXT) -> Access:
    (tmp_path / "access.toml").write_text(text)
    report = Report(tmp_path, {})
    access = read_access(report, tmp_path / "access.toml")
    assert not report.problems, report.problems
    return access


def test_the_keys_of_each_object(tmp_path: Path) -> None:
    keys = rendered(_access(tmp_path), {"OIDC_SECRET": SECRET})
    assert keys.argocd_cm["admin.enabled"] == "true"
    assert keys.argocd_cm["accounts.ops"] == "login, apiKey"
    assert keys.argocd_cm["accounts.ops.enabled"] == "true"
    assert keys.argocd_cm["accounts.ci.enabled"] == "false"
    assert keys.argocd_cm["url"] == "https://argocd.example"
    assert keys.rbac_cm == {
        "policy.csv": "p, role:deployer, applications, sync, prod/*, allow\n"
        "p, role:deployer, applications, get, prod/*, allow\n"
        "g, ops-team, role:deployer\n"
        "g, ci, role:deployer\n",
        "policy.default": "",
        "scopes": "[groups, roles]",  # the SSO groups claim is a subject too
    }
    assert keys.secret == {"oidc.clientSecret": SECRET}


def test_the_client_secret_is_only_referenced_in_argocd_cm(tmp_path: Path) -> None:
    keys = rendered(_access(tmp_path), {"OIDC_SECRET": SECRET})
    assert SECRET not in "".join(keys.argocd_cm.values()) + "".join(keys.rbac_cm.values())
    config = yaml.safe_load(keys.argocd_cm["oidc.config"])
    assert config["clientSecret"] == "$oidc.clientSecret"
    assert config["issuer"] == "https://idp.example/"
    assert config["requestedIDTokenClaims"] == {"roles": {"essential": True}}


def test_every_rendered_policy_line_is_one_argocd_loads(tmp_path: Path) -> None:
    lines = policy_csv(_access(tmp_path)).splitlines()
    assert lines and all(rbac.policy_line_problem(line) is None for line in lines)


def test_nothing_declared_renders_nothing() -> None:
    keys = rendered(Access(), {})
    assert (keys.argocd_cm, keys.rbac_cm, keys.secret) == ({}, {}, {})


def test_owned_keys_come_from_the_managers_apply_entry() -> None:
    fields = [
        {
            "manager": ACCESS_MANAGER,
            "operation": "Apply",
            "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}},
        },
        {"manager": ACCESS_MANAGER, "operation": "Update", "fieldsV1": {"f:data": {"f:c": {}}}},
        {"manager": "argocd-server", "operation": "Update", "fieldsV1": {"f:data": {"f:d": {}}}},
    ]
    assert owned_keys(fields) == {"a", "b"}


def test_the_plan_per_key() -> None:
    target = Target("ConfigMap", "argocd-cm", {"a": "1", "b": "2", "c": "3", "d": "4"})
    live = Live(
        {"a": "1", "b": "x", "d": "4", "old": "z", "server.x": "y"}, frozenset({"a", "b", "old"})
    )
    lines = [str(c) for c in key_changes("argocd", target, live)]
    assert lines == [
        "access: unchanged ConfigMap argocd/argocd-cm key a",
        "access: update    ConfigMap argocd/argocd-cm key b",
        "access: create    ConfigMap argocd/argocd-cm key c",
        "access: update    ConfigMap argocd/argocd-cm key d",  # someone else's: taken over
        "access: delete    ConfigMap argocd/argocd-cm key old",
    ]


def test_a_secret_key_is_compared_but_never_shown() -> None:
    target = Target("Secret", "argocd-secret", {"oidc.clientSecret": SECRET})
    same = Live({"oidc.clientSecret": SECRET}, frozenset({"oidc.clientSecret"}))
    other = Live({"oidc.clientSecret": "old"}, frozenset({"oidc.clientSecret"}))
    assert [c.action for c in key_changes("argocd", target, same)] == ["unchanged"]
    changes = key_changes("argocd", target, other)
    assert [c.action for c in changes] == ["update"]
    assert SECRET not in str(changes) and "old" not in changes[0].what.split("key")[0]
    body = apply_body("argocd", target)
    assert base64.b64decode(body["data"]["oidc.clientSecret"]).decode() == SECRET
    assert set(body) == {"apiVersion", "kind", "metadata", "data"}


def test_tokens_without_expiry_are_found_in_argocd_secret() -> None:
    from local.argocd.access_doctor import tokens_without_expiry

    data = {
        "accounts.ci.tokens": '[{"id":"a","iat":1,"exp":2},{"id":"b","iat":1}]',
        "accounts.bot.tokens": '[{"id":"c","iat":1,"exp":0}]',
        "accounts.ops.password": "$2a$10$x",
        "server.secretkey": "x",
    }
    assert tokens_without_expiry(data) == ["bot/c", "ci/b"]
