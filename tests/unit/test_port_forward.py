"""Tests of local.kube.port_forward's pure parts: the kubectl command line, the message when no
argocd-server pod runs, and the CLI's site handling. The pod check and the process handling run
against a real API server in tests/lab/test_argocd_status.py."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from local.commands import main
from local.kube.port_forward import (
    DEFAULT_KUBECTL,
    no_server_pod_message,
    port_forward_command,
    serving_pods,
)


def test_port_forward_listens_on_loopback_only_and_targets_the_chosen_server_pod() -> None:
    command = port_forward_command(
        "/usr/bin/kubectl",
        Path("/home/op/.kube/config"),
        "lab/k3s",
        "argocd",
        8080,
        "argocd-server-7d9f-abcde",
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
        "pod/argocd-server-7d9f-abcde",
        "8080:8080",
    ]


def test_no_server_pod_message_names_namespace_context_and_what_to_check() -> None:
    assert no_server_pod_message("argocd", "lab/k3s") == (
        "no argocd-server pod is running in namespace argocd (context lab/k3s); "
        "port-forward needs one: check make argocd/status"
    )


def test_the_default_kubectl_is_the_projects_own() -> None:
    assert Path(DEFAULT_KUBECTL) == Path(sys.executable).with_name("kubectl")


def test_main_returns_2_for_an_unknown_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["argocd/port-forward", "no-such-site"]) == 2
    assert "site directory not found" in capsys.readouterr().err


def _pod(
    name: str, minute: int, phase: str = "Running", ready: bool = True, deleting: bool = False
):
    created = datetime(2026, 12, 3, 10, minute, tzinfo=UTC)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name=name, creation_timestamp=created, deletion_timestamp=created if deleting else None
        ),
        status=client.V1PodStatus(
            phase=phase,
            conditions=[client.V1PodCondition(type="Ready", status="True" if ready else "False")],
        ),
    )


def test_the_forward_goes_to_the_newest_serving_pod_never_a_terminating_one() -> None:
    # Right after argocd-server restarts for server.insecure: the old pod is still Running and
    # Ready while it terminates; a new one may still be starting.
    pods = [
        _pod("old", 1, deleting=True),
        _pod("starting", 3, ready=False),
        _pod("new", 2),
        _pod("pending", 4, phase="Pending", ready=False),
        _pod("older-spare", 0),
    ]
    assert serving_pods(pods) == ["new", "older-spare"]
    assert serving_pods([_pod("old", 1, deleting=True)]) == []
