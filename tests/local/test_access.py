"""Accounts, RBAC and admin retirement (argocd/access.toml) against a real Argo CD v3.5.8
(lab/argocd_harness.py), run as an operator runs them: subprocesses with the environment as
their only input. A harness of this module's own: retiring admin must not reach other tests.

Tests run in file order: the plan, the apply and its re-run, the roles answered by Argo CD and
by pycasbin, tokens, the check command, the doctor, then admin's retirement and its return.
Canaries (passwords, the client secret, tokens) are looked for in every output, in ``ps``
samples and child environments taken during each run, and in files written outside 0600.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from lab.argocd_harness import NAMESPACE, SITE, Harness, argocd_harness
from local.argocd.accounts import can_i
from local.argocd.api import ArgoCDError, Client
from tests.local.conftest import MANAGEMENT
from tests.local.operator import Run, leaks, run
from tirosh import rbac
from tirosh.rbac_eval import Evaluator

pytestmark = pytest.mark.lab

OPS_PASSWORD = "canary-ops-pass-8c1f2e"
DEV_PASSWORD = "canary-dev-pass-4b7a9d"
VIEWER_PASSWORD = "canary-viewer-pass-2e6c"
AUDIT_PASSWORD = "canary-audit-pass-9a4f"
CLIENT_SECRET = "canary-oidc-secret-5d3b1a"
PASSWORDS = {
    "ARGOCD_OPS_PASSWORD": OPS_PASSWORD,
    "ARGOCD_DEV_PASSWORD": DEV_PASSWORD,
    "ARGOCD_VIEWER_PASSWORD": VIEWER_PASSWORD,
    "ARGOCD_AUDIT_PASSWORD": AUDIT_PASSWORD,
}
ACCOUNTS = """
[[accounts]]
name = "ops"
capabilities = ["login"]
password_env = "ARGOCD_OPS_PASSWORD"

[[accounts]]
name = "dev"
capabilities = ["login"]
password_env = "ARGOCD_DEV_PASSWORD"

[[accounts]]
name = "viewer"
capabilities = ["login"]
password_env = "ARGOCD_VIEWER_PASSWORD"

[[accounts]]
name = "audit"
capabilities = ["login"]
password_env = "ARGOCD_AUDIT_PASSWORD"

[[accounts]]
name = "ci"
capabilities = ["apiKey"]
"""
ROLES = """
[[rbac.roles]]
name = "deployer"
permissions = [
  "applications, get, prod/*",
  "applications, sync, prod/*",
  "applications, sync, prod/frozen, deny",
  "projects, get, prod",
  "logs, get, prod/*",
  "repositories, get, *",
  'applications, override, "{prod,stage}/*"',
]

[[rbac.roles]]
name = "auditor"
permissions = ["*, get, *", "accounts, get, *, deny"]

[[rbac.bindings]]
role = "deployer"
groups = ["ops-team"]
accounts = ["dev", "ci"]

[[rbac.bindings]]
role = "readonly"
accounts = ["viewer"]

[[rbac.bindings]]
role = "auditor"
groups = ["auditors"]
accounts = ["audit"]

[[rbac.bindings]]
role = "admin"
accounts = ["ops"]
"""
ACCESS = f'[admin]\nenabled = true\n{ACCOUNTS}\n[rbac]\ndefault = ""\n{ROLES}'
RETIRED = ACCESS.replace("[admin]\nenabled = true", "[admin]\nenabled = false")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with argocd_harness(tmp_path_factory.mktemp("access")) as running:
        # This site registers no cluster: only its access is under test here.
        (running.sites / SITE / "argocd/clusters.toml").write_text("clusters = []\n")
        yield running


def _write(harness: Harness, text: str) -> None:
    (harness.sites / SITE / "argocd/access.toml").write_text(text)


def _env(harness: Harness, **extra: str) -> dict[str, str]:
    password = harness.initial_password()
    assert password
    return harness.env(ARGOCD_PASSWORD=password, **PASSWORDS, **extra)


def _as_ops(harness: Harness, **extra: str) -> dict[str, str]:
    login = "--plaintext --grpc-web --username ops"
    return harness.env(ARGOCD_LOGIN_ARGS=login, ARGOCD_PASSWORD=OPS_PASSWORD, **PASSWORDS, **extra)


TOKENS: list[str] = []


def _clean(harness: Harness, result: Run) -> None:
    assert any(" ".join(result.argv[1:]) in line for line in result.command_lines)
    canaries = [*PASSWORDS.values(), CLIENT_SECRET, *TOKENS, harness.initial_password() or ""]
    found = leaks(result, [c for c in canaries if c], [harness.home, harness.sites])
    assert not found, found


def _phase(harness: Harness, env: dict[str, str], dry: bool = False) -> Run:
    result = run("local", "local/phase", SITE, *(["--dry"] if dry else []), env=env)
    _clean(harness, result)
    return result


def _data(harness: Harness, kind: str, name: str) -> dict[str, str]:
    found = json.loads(
        harness.kubectl(MANAGEMENT, "-n", NAMESPACE, "get", kind, name, "-o", "json").stdout
    )
    data = found.get("data") or {}
    if kind == "secret":
        return {k: base64.b64decode(v).decode() for k, v in data.items()}
    return dict(data)


def _client(harness: Harness, user: str, password: str) -> Client:
    client = Client(harness.url)
    client.login(user, password, "test")
    return client


def _access_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("access: ")]


# --------------------------------------------------------------------------- validation


def test_a_policy_typo_is_refused_before_any_connection(harness: Harness) -> None:
    _write(harness, ACCESS.replace("applications, sync, prod/*", "applications, synch, prod/*"))
    # A server nobody listens on: had the command connected, it would fail otherwise.
    result = run(
        "local", "local/phase", SITE, "--dry", env=_env(harness, ARGOCD_SERVER="127.0.0.1:9")
    )
    assert result.code == 2, result.output
    assert (
        f"sites/{SITE}/argocd/access.toml: rbac.roles[0].permissions[1]: unknown action "
        "'synch' for applications" in result.stderr
    )
    assert _access_lines(result.stdout) == []


def test_retiring_admin_without_another_way_in_is_refused_before_any_connection(
    harness: Harness,
) -> None:
    _write(
        harness,
        RETIRED.replace('role = "admin"\naccounts = ["ops"]', 'role = "admin"\naccounts = ["ci"]'),
    )
    result = run("local", "local/phase", SITE, "--dry", env=_env(harness))
    assert result.code == 2, result.output
    assert f"sites/{SITE}/argocd/access.toml: admin.enabled: false would lock everyone out" in (
        result.stderr
    )


# --------------------------------------------------------------------------- converge


def test_the_plan_lists_each_key_and_changes_nothing(harness: Harness) -> None:
    _write(harness, ACCESS)
    before = _data(harness, "configmap", "argocd-cm")
    result = _phase(harness, _env(harness), dry=True)
    assert result.code == 0, result.output
    lines = _access_lines(result.stdout)
    assert "access: create    ConfigMap argocd/argocd-cm key accounts.ci" in lines
    assert "access: create    ConfigMap argocd/argocd-rbac-cm key policy.csv" in lines
    assert "access: create    password of account ops" in lines
    assert _data(harness, "configmap", "argocd-cm") == before


def test_apply_converges_and_keeps_argocds_own_keys(harness: Harness) -> None:
    secret_before = _data(harness, "secret", "argocd-secret")
    result = _phase(harness, _env(harness))
    assert result.code == 0, result.output
    cm = _data(harness, "configmap", "argocd-cm")
    assert cm["accounts.ci"] == "apiKey" and cm["accounts.ops"] == "login"
    assert "resource.exclusions" in cm  # the manifest's keys are still there
    secret = _data(harness, "secret", "argocd-secret")
    assert secret["server.secretkey"] == secret_before["server.secretkey"]
    assert secret["admin.password"] == secret_before["admin.password"]
    for user, password in (("ops", OPS_PASSWORD), ("dev", DEV_PASSWORD)):
        assert _client(harness, user, password).userinfo()["username"] == user
    rbac_cm = _data(harness, "configmap", "argocd-rbac-cm")
    assert "g, dev, role:deployer" in rbac_cm["policy.csv"]


def test_a_rerun_changes_nothing(harness: Harness) -> None:
    for dry in (True, False):
        result = _phase(harness, _env(harness), dry=dry)
        assert result.code == 0, result.output
        lines = _access_lines(result.stdout)
        assert lines and all(" unchanged " in line for line in lines), lines


# --------------------------------------------------------------------------- answers


def _grid() -> list[tuple[str, str, str]]:
    objects = {"*": ("*", "prod", "stage"), "scoped": ("prod/web", "prod/frozen", "stage/web")}
    return [
        (resource, action, obj)
        for resource, (actions, _) in rbac.RESOURCES.items()
        for action in actions
        for obj in objects["scoped" if resource in rbac.PROJECT_SCOPED else "*"]
    ]


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("ops", OPS_PASSWORD),
        ("dev", DEV_PASSWORD),
        ("viewer", VIEWER_PASSWORD),
        ("audit", AUDIT_PASSWORD),
    ],
)
def test_argocd_and_pycasbin_give_the_same_answers(
    harness: Harness, user: str, password: str
) -> None:
    """Every declared role (admin, deployer, readonly, auditor: each bound to a login account),
    over every resource and action Argo CD has."""
    client = _client(harness, user, password)
    evaluator = Evaluator(_data(harness, "configmap", "argocd-rbac-cm")["policy.csv"])
    differ = []
    allowed = 0
    for request in _grid():
        theirs = can_i(client, *request)
        ours = evaluator.allowed(user, *request)
        allowed += theirs
        if theirs != ours:
            differ.append((request, theirs, ours))
    assert not differ, differ
    assert allowed  # each of these may do something: the grid asked real questions


def test_the_check_command_answers_with_argocd(harness: Harness) -> None:
    env = _env(harness, ACCOUNT="dev", RESOURCE="applications", ACTION="sync", OBJECT="prod/frozen")
    result = run("local", "argocd/access/check", SITE, env=env)
    assert result.code == 0, result.output
    assert result.stdout.strip() == (
        "account dev: sync applications prod/frozen: no (declared policy), no (Argo CD)"
    )
    _clean(harness, result)
    group = run("local", "argocd/access/check", SITE, env=_env(harness, GROUP="auditors"))
    assert group.code == 0, group.output
    assert "group auditors: get clusters *: yes (declared policy)" in group.stdout
    assert "accounts" not in group.stdout  # denied, so not in the grid of what it may do


# --------------------------------------------------------------------------- tokens


def _token_status(harness: Harness, token: str, path: str) -> int:
    request = urllib.request.Request(
        f"{harness.url}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_token_is_written_0600_and_does_what_its_role_allows(harness: Harness) -> None:
    path = harness.home / "ci.token"
    env = _env(harness, ACCOUNT="ci", EXPIRES="1h", TOKEN_FILE=str(path))
    result = run("local", "argocd/account/token", SITE, env=env)
    assert result.code == 0, result.output
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    TOKENS.append(token)
    _clean(harness, result)
    ci = Client(harness.url)
    ci.use_token(token)
    assert can_i(ci, "applications", "sync", "prod/web")
    assert not can_i(ci, "applications", "sync", "stage/web")
    assert _token_status(harness, token, "/api/v1/applications") == 200
    assert _token_status(harness, token, "/api/v1/clusters/x") in (403, 404)
    again = run("local", "argocd/account/token", SITE, env=env)
    assert again.code == 1 and "exists: not replaced" in again.stderr


def test_tokens_are_listed_and_a_revoked_one_gets_401(harness: Harness) -> None:
    listed = run("local", "argocd/account/tokens", SITE, env=_env(harness))
    assert listed.code == 0, listed.output
    ids = [line.split()[3] for line in listed.stdout.splitlines() if "account ci: token" in line]
    assert len(ids) == 1 and "expires never" not in listed.stdout
    revoke = run(
        "local",
        "argocd/account/token/revoke",
        SITE,
        env=_env(harness, ACCOUNT="ci", TOKEN_ID=ids[0]),
    )
    assert revoke.code == 0, revoke.output
    assert _token_status(harness, TOKENS[0], "/api/v1/applications") == 401


def test_an_expired_token_gets_401(harness: Harness) -> None:
    env = _env(harness, ACCOUNT="ci", EXPIRES="2", TOKEN_STDOUT="yes")
    result = run("local", "argocd/account/token", SITE, env=env)
    assert result.code == 0, result.output
    token = result.stdout.strip()
    TOKENS.append(token)
    assert _token_status(harness, token, "/api/v1/applications") == 200
    time.sleep(3)
    assert _token_status(harness, token, "/api/v1/applications") == 401


def test_the_doctor_reports_admin_and_tokens_without_expiry(harness: Harness) -> None:
    admin = _client(harness, "admin", harness.initial_password() or "")
    forever = admin.request_object(
        "POST", "/api/v1/account/ci/token", {"name": "ci", "id": "forever"}
    )
    TOKENS.append(str(forever["token"]))
    result = run("local", "argocd/doctor", SITE, env=_env(harness))
    _clean(harness, result)
    assert "FAIL  admin account: enabled" in result.stdout, result.stdout
    assert "FAIL  API tokens: without expiry: ci/forever" in result.stdout, result.stdout
    admin.request("DELETE", "/api/v1/account/ci/token/forever")


def test_a_policy_argocd_refuses_fails_the_run_with_its_message(harness: Harness) -> None:
    """Someone else's overlay key with a line Argo CD's loader refuses: Argo CD says why."""
    bad = json.dumps({"data": {"policy.extra.csv": "p, role:x, applications, get\n"}})
    harness.kubectl(MANAGEMENT, "-n", NAMESPACE, "patch", "cm", "argocd-rbac-cm", "-p", bad)
    try:
        result = _phase(harness, _env(harness))
        assert result.code == 1, result.output
        assert (
            "Argo CD refuses the RBAC policy: Argo CD failed GET /api/v1/account/can-i/"
            "applications/get/%2A%2F%2A (500): error creating casbin enforcer: error loading "
            "policy line: invalid RBAC policy: p, role:x, applications, get"
        ) in result.stderr, result.stderr
    finally:
        gone = json.dumps({"data": {"policy.extra.csv": None}})
        harness.kubectl(MANAGEMENT, "-n", NAMESPACE, "patch", "cm", "argocd-rbac-cm", "-p", gone)
    deadline = time.monotonic() + 30
    admin = _client(harness, "admin", harness.initial_password() or "")
    while True:  # Argo CD answers again once its informer has the fixed policy
        try:
            can_i(admin, "applications", "get", "*/*")
            break
        except ArgoCDError:
            assert time.monotonic() < deadline
            time.sleep(0.5)


# --------------------------------------------------------------------------- admin


def test_retiring_admin_is_refused_when_the_other_way_in_is_not_admin(harness: Harness) -> None:
    """ops is bound to role:admin, but a deny takes account updates away: not proven."""
    lockout = RETIRED + (
        '\n[[rbac.roles]]\nname = "lockout"\npermissions = ["accounts, update, *, deny"]\n'
        '[[rbac.bindings]]\nrole = "lockout"\naccounts = ["ops"]\n'
    )
    _write(harness, lockout)
    result = _phase(harness, _env(harness))
    assert result.code == 1, result.output
    assert "admin.enabled stays true: no other way in with admin rights was proven" in result.stderr
    assert "account ops may not update accounts" in result.stderr
    assert _data(harness, "configmap", "argocd-cm").get("admin.enabled") == "true"
    assert _client(harness, "admin", harness.initial_password() or "").logged_in


def test_admin_is_retired_once_another_way_in_is_proven(harness: Harness) -> None:
    _write(harness, RETIRED)
    result = _phase(harness, _env(harness))
    assert result.code == 0, result.output
    assert "access: update    ConfigMap argocd/argocd-cm key admin.enabled" in result.stdout
    assert _data(harness, "configmap", "argocd-cm")["admin.enabled"] == "false"
    deadline = time.monotonic() + 30
    while True:
        try:
            _client(harness, "admin", harness.initial_password() or "")
        except ArgoCDError as exc:
            assert exc.status in (401, 403), exc
            break
        assert time.monotonic() < deadline, "admin still logs in"
        time.sleep(0.5)
    ops = _client(harness, "ops", OPS_PASSWORD)
    assert can_i(ops, "accounts", "update", "*")
    again = _phase(harness, _as_ops(harness))
    assert again.code == 0, again.output
    assert all(" unchanged " in line for line in _access_lines(again.stdout)), again.stdout


def test_admin_comes_back_with_one_site_change(harness: Harness) -> None:
    _write(harness, ACCESS)
    result = _phase(harness, _as_ops(harness))
    assert result.code == 0, result.output
    deadline = time.monotonic() + 30
    while True:
        try:
            _client(harness, "admin", harness.initial_password() or "")
            break
        except ArgoCDError:
            assert time.monotonic() < deadline, "admin does not log in again"
            time.sleep(0.5)
