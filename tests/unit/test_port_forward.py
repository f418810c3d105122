"""Tests of local.port_forward's pure parts: the kubectl command line, the message when no
argocd-server pod runs, and the CLI's site handling. The pod check and the process handling run
against a real API server in tests/lab/test_argocd_status.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from local.port_forward import (
    DEFAULT_KUBECTL,
    main,
    no_server_pod_message,
    port_forward_command,
)


def test_port_forward_listens_on_loopback_only_and_targets_the_server_service() -> None:
    command = port_forward_command(
        "/usr/bin/kubectl", Path("/home/op/.kube/config"), "lab/k3s", "argocd", 8080
    )
    assert command == [
        "/usr/bin/kubectl",
        "--kubeconfig",
        "/home/op/.kube/config",
        "--context",
        "lab/k3s",
        "-n",
        "argocd",
        "port-forward",
        "--address",
        "127.0.0.1",
        "svc/argocd-server",
        "8080:80",
    ]


def test_no_server_pod_message_names_namespace_context_and_what_to_check() -> None:
    assert no_server_pod_message("argocd", "lab/k3s") == (
        "no argocd-server pod is running in namespace argocd (context lab/k3s); "
        "port-forward needs one: check make argocd/status"
    )


def test_the_default_kubectl_is_the_projects_own() -> None:
    assert Path(DEFAULT_KUBECTL) == Path(sys.executable).with_name("kubectl")


def test_main_returns_2_for_an_unknown_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-site"]) == 2
    assert "site directory not found" in capsys.readouterr().err
