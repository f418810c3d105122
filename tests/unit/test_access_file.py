"""access.toml as the site model reads it: accounts, RBAC in Argo CD's grammar, SSO, admin."""

from __future__ import annotations

from pathlib import Path

import pytest

from tirosh import rbac
from tirosh.access import Access
from tirosh.site import SiteError
from tirosh.site.access_file import read_access
from tirosh.site.reader import Report, read_alone

FILE = "sites/s/argocd/access.toml"

GOOD = """
[admin]
enabled = false

[[accounts]]
name = "ops"
capabilities = ["login"]
password_env = "ARGOCD_OPS_PASSWORD"

[[accounts]]
name = "ci"
capabilities = ["apiKey"]

[rbac]
default = "role:readonly"
scopes = ["groups", "email"]

[[rbac.roles]]
name = "deployer"
permissions = ["applications, get, prod/*", "applications, sync, prod/*", "logs, get, prod/*, deny"]

[[rbac.bindings]]
role = "deployer"
groups = ["ops-team"]
accounts = ["ci"]

[[rbac.bindings]]
role = "admin"
accounts = ["ops"]

[sso]
issuer = "https://idp.example/realms/ops"
client_id = "argocd"
client_secret_env = "ARGOCD_OIDC_CLIENT_SECRET"
groups_claim = "roles"
"""


def _read(tmp_path: Path, text: str) -> tuple[Access, list[str]]:
    site = tmp_path / "sites/s/argocd"
    site.mkdir(parents=True, exist_ok=True)
    (site / "access.toml").write_text(text)
    report = Report(tmp_path, {})
    access = read_access(report, site / "access.toml", "argocd.example")
    if report.problems:
        raise SiteError(report.problems)
    return access, report.warnings


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SiteError) as caught:
        _read(tmp_path, text)
    return [str(p) for p in caught.value.problems]


def test_a_whole_file_is_read(tmp_path: Path) -> None:
    access, warnings = _read(tmp_path, GOOD)
    assert access.admin_enabled is False
    assert [(a.name, a.capabilities, a.password_env) for a in access.accounts] == [
        ("ops", ("login",), "ARGOCD_OPS_PASSWORD"),
        ("ci", ("apiKey",), None),
    ]
    assert access.roles[0].subject == "role:deployer"
    assert access.roles[0].permissions[2] == rbac.Permission("logs", "get", "prod/*", "deny")
    assert [(b.role, b.groups, b.accounts) for b in access.bindings] == [
        ("role:deployer", ("ops-team",), ("ci",)),
        ("role:admin", (), ("ops",)),
    ]
    assert access.policy_default == "role:readonly"
    assert access.sso is not None and access.sso.url == "https://argocd.example"
    assert access.sso.groups_claim == "roles"
    assert warnings == []


def test_an_absent_file_declares_nothing(tmp_path: Path) -> None:
    report = Report(tmp_path, {})
    access = read_access(report, tmp_path / "access.toml")
    assert not access.declares_anything and not report.problems


@pytest.mark.parametrize(
    ("permission", "problem"),
    [
        ("application, get, */*", "unknown resource 'application'"),
        ("applications, synch, */*", "unknown action 'synch' for applications"),
        ("clusters, sync, *", "unknown action 'sync' for clusters"),
        ("applications, sync/x, */*", "action sync of applications takes no path"),
        ("applications, get, prod", "applications objects are <project>/<name>"),
        ("applications, get, prod/[a", "malformed pattern 'prod/[a': '[' is not closed"),
        ("applications, get, prod/{a,b", "'{' is not closed by '}'"),
        ("repositories, get, *, maybe", "effect must be allow or deny"),
        ("applications, get", "must be 'resource, action, object[, allow|deny]'"),
    ],
)
def test_a_permission_outside_argocds_grammar_is_refused(
    tmp_path: Path, permission: str, problem: str
) -> None:
    text = f'[rbac]\n[[rbac.roles]]\nname = "r"\npermissions = ["{permission}"]\n'
    problems = _problems(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith(f"{FILE}: rbac.roles[0].permissions[0]: "), problems
    assert problem in problems[0]


def test_a_binding_to_an_undeclared_role_is_refused(tmp_path: Path) -> None:
    text = '[rbac]\n[[rbac.bindings]]\nrole = "deployr"\ngroups = ["g"]\n'
    assert _problems(tmp_path, text) == [
        f"{FILE}: rbac.bindings[0].role: role 'deployr' is not declared (declared: admin, readonly)"
    ]


def test_a_binding_to_an_undeclared_account_is_refused(tmp_path: Path) -> None:
    text = '[rbac]\n[[rbac.bindings]]\nrole = "readonly"\naccounts = ["nobody"]\n'
    problems = _problems(tmp_path, text)
    assert problems == [
        f"{FILE}: rbac.bindings[0].accounts[0]: account 'nobody' is not declared in [[accounts]]"
    ]


def test_a_wide_default_is_a_warning_that_names_it(tmp_path: Path) -> None:
    _, warnings = _read(tmp_path, '[rbac]\ndefault = "role:admin"\n')
    assert len(warnings) == 1
    assert "rbac.default = 'role:admin' is broader than role:readonly" in warnings[0]
    _, quiet = _read(tmp_path, '[rbac]\ndefault = "role:readonly"\n')
    assert quiet == []


def test_retiring_admin_without_another_admin_way_in_is_refused(tmp_path: Path) -> None:
    text = (
        '[admin]\nenabled = false\n[[accounts]]\nname = "ci"\ncapabilities = ["apiKey"]\n'
        '[rbac]\n[[rbac.bindings]]\nrole = "admin"\naccounts = ["ci"]\n'
    )
    problems = _problems(tmp_path, text)
    assert len(problems) == 1 and problems[0].startswith(f"{FILE}: admin.enabled: false would lock")


def test_an_sso_group_bound_to_admin_is_another_way_in(tmp_path: Path) -> None:
    text = (
        '[admin]\nenabled = false\n[rbac]\n[[rbac.bindings]]\nrole = "admin"\n'
        'groups = ["argocd-admins"]\n[sso]\nissuer = "https://idp.example"\n'
        'client_id = "argocd"\nclient_secret_env = "S"\n'
    )
    access, _ = _read(tmp_path, text)
    assert access.admin_enabled is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[[accounts]]\nname = "admin"\ncapabilities = ["login"]\n',
            "accounts[0].name: admin is built in",
        ),
        (
            '[[accounts]]\nname = "Ops!"\ncapabilities = ["login"]\n',
            "accounts[0].name: must be lowercase",
        ),
        (
            '[[accounts]]\nname = "ci"\ncapabilities = ["token"]\n',
            "accounts[0].capabilities: must be some of",
        ),
        (
            '[[accounts]]\nname = "ops"\ncapabilities = ["login"]\n',
            "accounts[0].password_env: a login account needs",
        ),
        (
            '[[accounts]]\nname = "ci"\ncapabilities = ["apiKey"]\npassword_env = "P"\n',
            "only a login account",
        ),
        (
            '[[accounts]]\nname = "ci"\ncapabilities = ["apiKey"]\nenabeld = true\n',
            'accounts[0].enabeld: unknown key (did you mean "enabled"?)',
        ),
        (
            '[rbac]\n[[rbac.roles]]\nname = "admin"\npermissions = ["clusters, get, *"]\n',
            "role:admin is built into Argo CD",
        ),
        (
            '[sso]\nissuer = "http://idp.example"\nclient_id = "a"\nclient_secret_env = "S"\n',
            "sso.issuer: an OIDC issuer is https://",
        ),
        (
            '[sso]\nissuer = "https://idp.example"\nclient_id = "a"\nclient_secret = "plain"\n',
            "sso.client_secret: unknown key",
        ),
        (
            '[sso]\nissuer = "https://idp.example"\nclient_id = "a"\nclient_secret_env = "S"\nscopes = ["groups"]\n',
            "sso.scopes: an OIDC login requests the openid scope",
        ),
        ("[admins]\nenabled = true\n", "admins: unknown key"),
    ],
)
def test_mistakes_are_named_by_key(tmp_path: Path, text: str, problem: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(p.startswith(f"{FILE}: ") and problem in p for p in problems), problems


def test_read_alone_reports_relative_names(tmp_path: Path) -> None:
    site = tmp_path / "sites/s/argocd"
    site.mkdir(parents=True)
    (site / "access.toml").write_text('[admin]\nenabled = "no"\n')
    with pytest.raises(SiteError) as caught:
        read_alone(read_access, site / "access.toml", tmp_path)
    assert str(caught.value) == f'{FILE}: admin.enabled: must be true or false, got string "no"'


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("*", "prod/app", True),  # no separators: * crosses /
        ("prod/*", "prod/a/b", True),
        ("prod/*", "production/a", False),
        ("prod-?/x", "prod-1/x", True),
        ("[a-c]*", "bob", True),
        ("[!a-c]*", "bob", False),
        ("{prod,stage}/*", "stage/x", True),
        ("{prod,stage}/*", "dev/x", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("app.x", "appyx", False),
    ],
)
def test_patterns_match_as_argocds_glob(pattern: str, text: str, matches: bool) -> None:
    assert bool(rbac.glob_regex(pattern).fullmatch(text)) is matches


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ("p, role:x, applications, get, */*, allow", False),
        ("g, team, role:x", False),
        ("# a comment", False),
        ("p, role:x, applications, get, */*", True),
        ("g, team", True),
        ('p, "role:x, applications, get, */*, allow', True),
        ("q, a, b", True),
    ],
)
def test_policy_lines_are_read_as_argocds_loader_reads_them(line: str, refused: bool) -> None:
    assert (rbac.policy_line_problem(line) is not None) is refused


DEX = """
[dex]
url = "https://argocd.example"
[[dex.connectors]]
type = "ldap"
id = "ldap"
name = "LDAP"
[dex.connectors.config]
host = "ldap.example:636"
bindDN = "cn=dex,dc=example"
bindPW = "$dex.ldap.bindPW"
[dex.secrets]
"dex.ldap.bindPW" = "LDAP_BIND_PASSWORD"
"""


def test_dex_connectors_render_into_dex_config_with_secrets_by_reference(tmp_path: Path) -> None:
    from tirosh.access import rendered

    access, _ = _read(tmp_path, DEX)
    keys = rendered(access, {"LDAP_BIND_PASSWORD": "canary-bind-1c2d"})
    assert keys.argocd_cm["url"] == "https://argocd.example"
    assert "bindPW: $dex.ldap.bindPW" in keys.argocd_cm["dex.config"]
    assert "canary-bind-1c2d" not in keys.argocd_cm["dex.config"]
    assert keys.secret == {"dex.ldap.bindPW": "canary-bind-1c2d"}


def test_a_dex_secret_written_in_the_file_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, DEX.replace('"$dex.ldap.bindPW"', '"plain-password"'))
    assert problems == [
        f"{FILE}: dex.connectors[0].config.bindPW: a secret here is a $reference to "
        "argocd-secret ([dex.secrets])"
    ]


def test_sso_and_dex_together_are_refused(tmp_path: Path) -> None:
    text = DEX + '[sso]\nissuer = "https://idp.example"\nclient_id = "a"\nclient_secret_env = "S"\n'
    assert any("declare [sso] or [dex], not both" in p for p in _problems(tmp_path, text))
