"""Argo CD's Casbin model and built-in policy in pycasbin: the enforce wrapper's order."""

from __future__ import annotations

import pytest

from local.access_commands import expiry_seconds
from tirosh.errors import OperatorError
from tirosh.rbac_eval import Evaluator, builtin_policy

POLICY = """\
p, role:deployer, applications, get, prod/*, allow
p, role:deployer, applications, sync, prod/*, allow
p, role:deployer, applications, sync, prod/frozen, deny
g, ci, role:deployer
g, ops-team, role:deployer
g, argocd-admins, role:admin
"""


def test_the_builtin_policy_is_argocds() -> None:
    text = builtin_policy()
    assert "g, role:admin, role:readonly" in text and "g, admin, role:admin" in text


@pytest.mark.parametrize(
    ("subject", "groups", "request_", "allowed"),
    [
        ("ci", (), ("applications", "sync", "prod/web"), True),
        ("ci", (), ("applications", "sync", "stage/web"), False),
        ("ci", (), ("applications", "sync", "prod/frozen"), False),  # deny wins
        ("ci", (), ("clusters", "get", "*"), False),  # no default role
        ("admin", (), ("clusters", "create", "*"), True),  # built in: g, admin, role:admin
        ("", ("ops-team",), ("applications", "get", "prod/x"), True),
        ("", ("argocd-admins",), ("accounts", "update", "*"), True),
        ("", ("strangers",), ("applications", "get", "prod/x"), False),
        ("nobody", (), ("applications", "get", "prod/x"), False),
    ],
)
def test_answers(
    subject: str, groups: tuple[str, ...], request_: tuple[str, str, str], allowed: bool
) -> None:
    assert Evaluator(POLICY).allowed(subject, *request_, groups=groups) is allowed


def test_the_default_role_is_tried_first() -> None:
    evaluator = Evaluator(POLICY, "role:readonly")
    assert evaluator.allowed("nobody", "clusters", "get", "*")
    assert not evaluator.allowed("nobody", "clusters", "create", "*")


def test_a_policy_argocd_refuses_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid RBAC policy"):
        Evaluator("p, role:x, applications, get\n")


@pytest.mark.parametrize(
    ("text", "seconds"), [("3600", 3600), ("90m", 5400), ("24h", 86400), ("30d", 2592000)]
)
def test_token_expiry(text: str, seconds: int) -> None:
    assert expiry_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0", "never", "-1", "1w", "", "24 h"])
def test_a_token_always_expires(text: str) -> None:
    with pytest.raises(OperatorError, match="EXPIRES"):
        expiry_seconds(text)


def test_a_pattern_with_a_comma_is_quoted_in_the_policy_line() -> None:
    from tirosh import rbac

    permission, problem = rbac.parse_permission('applications, sync, "{prod,stage}/*"')
    assert problem is None and permission is not None
    line = permission.line("role:x")
    assert line == 'p, role:x, applications, sync, "{prod,stage}/*", allow'
    assert rbac.policy_line_problem(line) is None
    evaluator = Evaluator(line + "\ng, ci, role:x\n")
    assert evaluator.allowed("ci", "applications", "sync", "stage/web")
    assert not evaluator.allowed("ci", "applications", "sync", "dev/web")
