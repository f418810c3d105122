"""local.cli: one frame for every operator command (arguments, the site once, one line per
expected failure and its exit code)."""

from __future__ import annotations

import pytest
from kubernetes import client

from local import cli
from local.cli import COMMANDS
from local.commands import main
from tirosh.errors import OperatorError
from tirosh.site import Problem, SiteError

MAKE_TARGETS = (
    "argocd/status",
    "argocd/port-forward",
    "argocd/password",
    "argocd/password/update",
    "argocd/cluster/add",
    "argocd/cluster/rotate",
    "argocd/repo/add",
    "argocd/repo/list",
    "argocd/doctor",
    "kubernetes/secret/plan",
    "kubernetes/secret/apply",
    "local/phase",
)


def test_every_local_make_target_is_a_command_of_that_name() -> None:
    assert set(MAKE_TARGETS) <= set(COMMANDS)


def test_an_unknown_site_is_exit_2_with_its_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["argocd/doctor", "no-such-site"]) == 2
    assert "site directory not found" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["argocd/nope", "lab"])
    assert exited.value.code == 2


def _raises(error: BaseException):
    def body() -> int:
        raise error

    return body


def test_expected_failures_become_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(_raises(OperatorError("do this")), "local phase: ") == 1
    assert capsys.readouterr().err == "local phase: do this\n"
    site_error = SiteError([Problem("sites/x/profile.toml", "kube", "missing")])
    assert cli.run(_raises(site_error)) == 2
    assert capsys.readouterr().err == "sites/x/profile.toml: kube: missing\n"
    api_error = client.ApiException(status=403, reason="Forbidden")
    api_error.body = '{"message": "secret value in a body"}'
    assert cli.run(_raises(api_error), context="lab/k3s") == 1
    assert capsys.readouterr().err == "Kubernetes API (context lab/k3s): 403 Forbidden\n"


def test_anything_else_is_a_bug_and_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        cli.run(_raises(ZeroDivisionError()))
