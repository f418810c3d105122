"""Tests of local.argocd.status's pure parts: the model, the summary, Event selection, the
Argo CD API check (against a stand-in HTTP server on 127.0.0.1) and the CLI's argument and site
handling. Reading a real cluster is tested in tests/lab/test_argocd_status.py."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from local.argocd.status import (
    ARGOCD_CRDS,
    EXPECTED_WORKLOADS,
    Status,
    Workload,
    check_api,
    summary,
    workload_events,
)
from local.commands import main
from local.phase import _api_not_ready

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _healthy() -> Status:
    return Status(
        namespace="argocd",
        namespace_exists=True,
        workloads=[Workload(kind, name, 1, 1) for kind, name in EXPECTED_WORKLOADS],
        crds=dict.fromkeys(ARGOCD_CRDS, True),
        ingress_hosts=["gitops.internal.tirosh.ai"],
        server_insecure_configured="true",
        server_insecure_running="true",
        api="answers at https://gitops.internal.tirosh.ai/api/version: v3.5.1+abc",
        api_ok=True,
        events=[],
    )


def _with_workload(status: Status, name: str, ready: int, desired: int) -> Status:
    workloads = [
        dataclasses.replace(w, ready=ready, desired=desired) if w.name == name else w
        for w in status.workloads
    ]
    return dataclasses.replace(status, workloads=workloads)


# --------------------------------------------------------------------------- model


@pytest.mark.parametrize(
    ("ready", "desired", "healthy", "state"),
    [
        (1, 1, True, "ready"),
        (2, 1, True, "ready"),
        (0, 1, False, "NOT READY"),
        (1, 2, False, "NOT READY"),
        (0, 0, False, "scaled to 0"),
    ],
)
def test_workload_is_healthy_when_ready_reaches_a_nonzero_desired(
    ready: int, desired: int, healthy: bool, state: str
) -> None:
    workload = Workload("Deployment", "argocd-server", ready, desired)
    assert (workload.healthy, workload.state) == (healthy, state)


def test_a_fully_ready_argocd_is_healthy_and_says_so() -> None:
    status = _healthy()
    assert status.problems == []
    assert status.healthy
    assert summary(status).splitlines()[-1] == "healthy"


def test_an_unchecked_api_does_not_make_argocd_unhealthy() -> None:
    assert dataclasses.replace(_healthy(), api="not checked", api_ok=None).healthy


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        (lambda s: dataclasses.replace(s, namespace_exists=False), ["namespace argocd"]),
        (lambda s: _with_workload(s, "argocd-server", 0, 1), ["argocd-server"]),
        (lambda s: _with_workload(s, "argocd-dex-server", 0, 0), ["argocd-dex-server"]),
        (
            lambda s: dataclasses.replace(
                s, workloads=[w for w in s.workloads if w.name != "argocd-redis"]
            ),
            ["argocd-redis"],
        ),
        (
            lambda s: dataclasses.replace(s, crds={**s.crds, "appprojects.argoproj.io": False}),
            ["CRD appprojects.argoproj.io"],
        ),
        (
            lambda s: dataclasses.replace(s, crds={}),
            [f"CRD {name}" for name in ARGOCD_CRDS],
        ),
        (
            lambda s: dataclasses.replace(s, server_insecure_running="false"),
            ["argocd-server restart pending (server.insecure)"],
        ),
        (
            lambda s: dataclasses.replace(s, server_insecure_running=None),
            ["argocd-server restart pending (server.insecure)"],
        ),
        (lambda s: dataclasses.replace(s, api_ok=False), ["API"]),
        (
            lambda s: dataclasses.replace(
                s, workloads=[*s.workloads, Workload("Deployment", "extra", 0, 1)]
            ),
            ["extra"],
        ),
    ],
)
def test_each_problem_makes_argocd_unhealthy_and_is_named(
    change: Callable[[Status], Status], problems: list[str]
) -> None:
    status = change(_healthy())
    assert status.problems == problems
    assert not status.healthy
    assert summary(status).splitlines()[-1] == "not healthy: " + ", ".join(problems)


def test_restart_is_pending_only_when_the_values_differ() -> None:
    assert not _healthy().restart_pending
    both_unset = dataclasses.replace(
        _healthy(), server_insecure_configured=None, server_insecure_running=None
    )
    assert not both_unset.restart_pending
    assert dataclasses.replace(_healthy(), server_insecure_configured="false").restart_pending


# --------------------------------------------------------------------------- summary


def test_summary_shows_one_line_per_item_in_order() -> None:
    status = dataclasses.replace(
        _with_workload(_healthy(), "argocd-server", 0, 1),
        server_insecure_running="false",
        events=["Deployment/argocd-server: ScalingReplicaSet: Scaled up replica set x to 1"],
    )
    lines = summary(status).splitlines()
    assert lines[0] == "namespace argocd: present"
    assert lines[1] == "Deployment argocd-applicationset-controller: 1/1 ready  ready"
    assert "Deployment argocd-server: 0/1 ready  NOT READY" in lines
    assert "StatefulSet argocd-application-controller: 1/1 ready  ready" in lines
    assert "CRD applicationsets.argoproj.io: Established" in lines
    assert "Ingress: gitops.internal.tirosh.ai" in lines
    assert "server.insecure: configured true, running false (restart pending)" in lines
    assert lines[-4].startswith("API: answers at https://gitops.internal.tirosh.ai/api/version")
    assert lines[-3] == (
        "not healthy: argocd-server, argocd-server restart pending (server.insecure)"
    )
    assert lines[-2:] == [
        "recent events of what is not ready:",
        "  Deployment/argocd-server: ScalingReplicaSet: Scaled up replica set x to 1",
    ]


def test_summary_of_an_unchanged_setting_has_no_restart_note() -> None:
    assert "server.insecure: configured true, running true" in summary(_healthy()).splitlines()


def test_summary_of_a_missing_namespace_lists_no_workloads() -> None:
    status = Status(
        "argocd", False, crds=dict.fromkeys(ARGOCD_CRDS, False), api="not checked", api_ok=None
    )
    assert summary(status).splitlines() == [
        "namespace argocd: missing",
        "CRD applications.argoproj.io: not Established",
        "CRD applicationsets.argoproj.io: not Established",
        "CRD appprojects.argoproj.io: not Established",
        "API: not checked",
        "not healthy: namespace argocd, " + ", ".join(f"CRD {name}" for name in ARGOCD_CRDS),
    ]


def test_summary_names_missing_workloads_and_absent_settings() -> None:
    status = dataclasses.replace(
        _healthy(),
        workloads=[w for w in _healthy().workloads if w.kind == "Deployment"],
        ingress_hosts=[],
        server_insecure_configured=None,
        server_insecure_running=None,
    )
    lines = summary(status).splitlines()
    assert "StatefulSet argocd-application-controller: missing" in lines
    assert "Ingress: none" in lines
    assert "server.insecure: configured not set, running not set" in lines
    assert lines[-1] == "not healthy: argocd-application-controller"


# --------------------------------------------------------------------------- events


def _event(
    kind: str, name: str, reason: str, minute: int, *, legacy: bool = True, version: str = "1"
) -> object:
    when = T0 + timedelta(minutes=minute)
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(
            name=f"{name}.{minute}", namespace="argocd", resource_version=version
        ),
        involved_object=client.V1ObjectReference(kind=kind, name=name, namespace="argocd"),
        reason=reason,
        message=f"{reason} at\n minute {minute}",
        # events.k8s.io writers set event_time only; the legacy API sets last_timestamp.
        last_timestamp=when if legacy else None,
        event_time=None if legacy else when,
    )


def test_events_of_a_workload_include_its_replicasets_and_pods_only() -> None:
    events = [
        _event("Pod", "argocd-server-5d9f-abcde", "FailedScheduling", 3),
        _event("Deployment", "argocd-server", "ScalingReplicaSet", 1),
        _event("ReplicaSet", "argocd-server-5d9f", "SuccessfulCreate", 2, legacy=False),
        _event("Service", "argocd-server-metrics", "Unrelated", 4),
        _event("Deployment", "argocd-repo-server", "ScalingReplicaSet", 5),
        _event("Pod", "argocd-applicationset-controller-7c-xyz", "Other", 6),
    ]
    server = Workload("Deployment", "argocd-server", 0, 1)
    controller = Workload("StatefulSet", "argocd-application-controller", 0, 1)
    assert workload_events(events, [server, controller]) == [
        "Deployment/argocd-server: ScalingReplicaSet: ScalingReplicaSet at minute 1",
        "ReplicaSet/argocd-server-5d9f: SuccessfulCreate: SuccessfulCreate at minute 2",
        "Pod/argocd-server-5d9f-abcde: FailedScheduling: FailedScheduling at minute 3",
    ]


def test_events_of_the_same_second_keep_the_order_they_were_written_in() -> None:
    events = [
        _event("ReplicaSet", "argocd-server-5d9f", "SuccessfulCreate", 1, version="1042"),
        _event("Deployment", "argocd-server", "ScalingReplicaSet", 1, version="998"),
    ]
    lines = workload_events(events, [Workload("Deployment", "argocd-server", 0, 1)])
    assert [line.split(": ")[1] for line in lines] == ["ScalingReplicaSet", "SuccessfulCreate"]


def test_only_the_latest_five_events_of_a_workload_are_kept_oldest_first() -> None:
    events = [_event("Pod", "argocd-redis-1-a", f"R{m}", m) for m in (7, 1, 5, 3, 2, 6, 4)]
    lines = workload_events(events, [Workload("Deployment", "argocd-redis", 0, 1)])
    assert [line.split(": ")[1] for line in lines] == ["R3", "R4", "R5", "R6", "R7"]


# --------------------------------------------------------------------------- API check


class _ArgoCDVersionStandIn(BaseHTTPRequestHandler):
    """Stand-in for argocd-server's HTTP API: only its anonymous GET /api/version."""

    paths: list[str] = []
    answer: tuple[int, bytes] = (200, b"{}")

    def do_GET(self) -> None:
        self.paths.append(self.path)
        code, body = self.answer
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest's output clean


@pytest.fixture()
def version_server() -> Iterator[tuple[str, type[_ArgoCDVersionStandIn]]]:
    """A stand-in for argocd-server's HTTP API on 127.0.0.1 (never anything else)."""

    class Handler(_ArgoCDVersionStandIn):
        paths: list[str] = []  # this test's requests only

    handler = Handler
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but not
    listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_check_api_reports_the_version_the_argocd_server_stand_in_answers(
    version_server: tuple[str, type[_ArgoCDVersionStandIn]],
) -> None:
    """The stand-in for argocd-server's HTTP API answers /api/version like Argo CD v3.5.1."""
    url, handler = version_server
    handler.answer = (200, json.dumps({"Version": "v3.5.1+8f9a1e2", "GoVersion": "go1"}).encode())
    assert check_api("gitops.lab.test", url) == (
        True,
        f"answers at {url}/api/version: v3.5.1+8f9a1e2",
    )
    assert handler.paths == ["/api/version"]


def test_check_api_ignores_proxies_for_a_local_port_forward(
    version_server: tuple[str, type[_ArgoCDVersionStandIn]],
    refused_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a (dead, local) proxy in the environment, the port-forward is still asked directly:
    the stand-in for argocd-server's HTTP API answers."""
    url, handler = version_server
    handler.answer = (200, b'{"Version": "v3.5.1"}')
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{refused_port}")
    assert check_api("gitops.lab.test", url)[0] is True
    assert handler.paths == ["/api/version"]


def test_check_api_reports_a_refused_connection(refused_port: int) -> None:
    """Where the stand-in for argocd-server's HTTP API would be, nothing listens."""
    url = f"http://127.0.0.1:{refused_port}"
    ok, line = check_api("gitops.lab.test", url)
    assert ok is False
    assert line.startswith(f"no answer at {url}/api/version: ")
    assert "refused" in line.lower()
    assert "\n" not in line


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ((503, b"upstream down"), "error answer at {url}/api/version: HTTP 503"),
        ((200, b"<html>not argo</html>"), "unexpected answer at {url}/api/version: "),
        ((200, b'{"Version": ""}'), "unexpected answer at {url}/api/version: "),
    ],
)
def test_check_api_fails_on_answers_that_are_not_an_argocd_version(
    version_server: tuple[str, type[_ArgoCDVersionStandIn]],
    answer: tuple[int, bytes],
    expected: str,
) -> None:
    """The stand-in for argocd-server's HTTP API answers something else than a version."""
    url, handler = version_server
    handler.answer = answer
    ok, line = check_api("gitops.lab.test", url)
    assert ok is False
    assert line.startswith(expected.format(url=url))


# --------------------------------------------------------------------------- CLI


def test_main_accepts_wait_and_returns_2_for_an_unknown_site(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["argocd/status", "no-such-site", "--wait", "5"]) == 2
    err = capsys.readouterr().err
    assert "site directory not found" in err
    assert "no-such-site" in err


@pytest.mark.parametrize("wait", ["soon", "-1", "nan"])
def test_main_rejects_a_wait_that_is_not_seconds(wait: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["argocd/status", "lab", "--wait", wait])
    assert exc.value.code == 2


def test_main_returns_2_when_the_context_is_not_in_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("KUBECTX", "nowhere/k3s")
    assert main(["argocd/status", "lab"]) == 2
    err = capsys.readouterr().err
    assert f"kubeconfig {kubeconfig}, context nowhere/k3s: " in err


def test_the_status_reads_the_annotation_the_deploy_writes() -> None:
    from local.argocd import status as argocd_status
    from tirosh import argocd

    assert argocd_status.SERVER_INSECURE_ANNOTATION == argocd.SERVER_INSECURE_ANNOTATION


# --------------------------------------------------------------------------- the local phase's wait


@pytest.mark.parametrize(
    ("change", "waiting_for"),
    [
        (lambda s: s, []),
        # Dex scaled to 0 (no SSO) or a controller still starting: the API does not need them.
        (lambda s: _with_workload(s, "argocd-dex-server", 0, 0), []),
        (lambda s: _with_workload(s, "argocd-application-controller", 0, 1), []),
        (lambda s: dataclasses.replace(s, api_ok=False, api="refused"), []),
        (lambda s: _with_workload(s, "argocd-server", 0, 1), ["argocd-server"]),
        (lambda s: _with_workload(s, "argocd-repo-server", 0, 0), ["argocd-repo-server"]),
        (
            lambda s: dataclasses.replace(
                s, workloads=[w for w in s.workloads if w.name != "argocd-redis"]
            ),
            ["argocd-redis"],
        ),
        (lambda s: dataclasses.replace(s, namespace_exists=False), ["namespace argocd missing"]),
    ],
)
def test_the_local_phase_waits_for_what_the_api_needs_only(
    change: Callable[[Status], Status], waiting_for: list[str]
) -> None:
    assert _api_not_ready(change(_healthy())) == waiting_for


def test_a_deployment_mid_rollout_is_not_ready_while_an_old_pod_is_left() -> None:
    """The old ReplicaSet's Pod is ready during a restart: a port-forward could reach it."""
    from types import SimpleNamespace

    from local.argocd.status import _workloads

    def deployment(replicas: int, updated: int, generation: int, observed: int) -> object:
        return SimpleNamespace(
            metadata=SimpleNamespace(name="argocd-server", generation=generation),
            spec=SimpleNamespace(replicas=1),
            status=SimpleNamespace(
                ready_replicas=1,
                replicas=replicas,
                updated_replicas=updated,
                observed_generation=observed,
            ),
        )

    def listed(*items: object) -> object:
        return SimpleNamespace(items=list(items))

    for item, healthy in (
        (deployment(2, 1, 2, 2), False),  # the new Pod and the old one
        (deployment(1, 1, 3, 2), False),  # the controller has not seen the change yet
        (deployment(1, 1, 2, 2), True),
    ):
        apps = SimpleNamespace(
            list_namespaced_deployment=lambda _ns, item=item: listed(item),
            list_namespaced_stateful_set=lambda _ns: listed(),
        )
        [workload], _ = _workloads(apps, "argocd")
        assert workload.healthy is healthy
