"""local.argocd.status and local.kube.port_forward against a real kube-apiserver on 127.0.0.1.

The loopback control plane (lab/loopback.py) gets Argo CD v3.5.8's real install manifest,
server-side applied as the deploy does. No kubelet runs there, so Pods are stored but never
start: every Argo CD workload stays at 0 ready, which is exactly the unhealthy rollout the
status has to explain. Tests run in file order; the ones that change the argocd namespace come
last, the others that need objects of their own use namespaces of their own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from lab.config import REPO_ROOT
from local.argocd.status import (
    ARGOCD_CRDS,
    SERVER_INSECURE_ANNOTATION,
    Status,
    check_api,
    read_status,
    summary,
    wait_for_rollout,
)
from local.kube.port_forward import (
    SERVER_SELECTOR,
    NoServerPod,
    argocd_server,
    port_forward_command,
    serving_server_pods,
)

pytestmark = pytest.mark.lab

KUBECTL = str(Path(sys.executable).with_name("kubectl"))
MANIFEST = REPO_ROOT / "manifests" / "argocd" / "install-v3.5.8.yaml"
CONTEXT = "default"  # what the stand-in (like k3s) names its context
NAMESPACE = "argocd"


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), "--context", CONTEXT, *args],
        text=True,
        capture_output=True,
        timeout=180,
    )
    assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
    return result


def _manifest_workloads() -> dict[tuple[str, str], int]:
    """(kind, name) -> desired replicas of every workload in the manifest (API default: 1)."""
    # 1.9 MB: libyaml's loader reads it in a fraction of the pure-Python one's time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [doc for doc in yaml.load_all(MANIFEST.read_text(), Loader=loader) if doc]
    return {
        (doc["kind"], doc["metadata"]["name"]): doc["spec"].get("replicas", 1)
        for doc in docs
        if doc["kind"] in ("Deployment", "StatefulSet")
    }


@pytest.fixture(scope="module")
def api(loopback_kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(
        config_file=str(loopback_kubeconfig), context=CONTEXT, persist_config=False
    )
    try:
        yield api_client
    finally:
        api_client.close()


@pytest.fixture(scope="module")
def argocd(loopback_kubeconfig: Path, api: client.ApiClient) -> Path:
    """Argo CD's install manifest applied as the deploy applies it; its CRDs Established."""
    started = time.monotonic()
    _kubectl(loopback_kubeconfig, "create", "namespace", NAMESPACE)
    _kubectl(
        loopback_kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-n",
        NAMESPACE,
        "-f",
        str(MANIFEST),
    )
    crds = [f"crd/{name}" for name in ARGOCD_CRDS]
    _kubectl(loopback_kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *crds)
    print(f"\nArgo CD manifest applied, CRDs Established in {time.monotonic() - started:.1f}s")
    return loopback_kubeconfig


@pytest.fixture()
def own_namespace(api: client.ApiClient) -> Iterator[str]:
    """A namespace for this test alone, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def _port_forward_processes(kubeconfig: Path) -> list[str]:
    """Command lines of running `port-forward` processes that use this kubeconfig, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(arg.decode(errors="replace") for arg in argv if arg)
        if "port-forward" in line and str(kubeconfig) in line:
            found.append(f"{entry.name}: {line}")
    return found


# --------------------------------------------------------------------------- read_status


def test_read_status_lists_every_argocd_workload_at_0_ready(
    argocd: Path, api: client.ApiClient
) -> None:
    """Every Deployment and the StatefulSet of the manifest, with its desired count; 0 ready
    because no kubelet runs, so none is healthy. The CRDs are Established."""
    started = time.monotonic()
    status = read_status(api, NAMESPACE)
    print(f"\nread_status took {time.monotonic() - started:.2f}s")
    expected = _manifest_workloads()
    assert sum(kind == "Deployment" for kind, _ in expected) == 6
    assert sum(kind == "StatefulSet" for kind, _ in expected) == 1
    assert {(w.kind, w.name): (w.ready, w.desired) for w in status.workloads} == {
        key: (0, desired) for key, desired in expected.items()
    }
    assert not any(w.healthy for w in status.workloads)
    assert status.namespace_exists
    assert status.missing_workloads == []
    assert status.crds == dict.fromkeys(ARGOCD_CRDS, True)
    assert status.ingress_hosts == []
    assert (status.api, status.api_ok) == ("not checked", None)
    assert not status.healthy


def test_summary_names_the_workloads_that_are_not_ready(
    argocd: Path, api: client.ApiClient
) -> None:
    """No kubelet runs: argocd-server and the application controller stay NOT READY."""
    lines = summary(read_status(api, NAMESPACE)).splitlines()
    assert lines[0] == "namespace argocd: present"
    assert "Deployment argocd-server: 0/1 ready  NOT READY" in lines
    assert "StatefulSet argocd-application-controller: 0/1 ready  NOT READY" in lines
    assert "CRD applicationsets.argoproj.io: Established" in lines
    verdict = next(line for line in lines if line.startswith("not healthy: "))
    names = verdict.removeprefix("not healthy: ").split(", ")
    assert "argocd-server" in names
    assert "argocd-application-controller" in names
    assert not any(name.startswith("CRD ") for name in names)


def test_events_explain_the_unready_workloads(argocd: Path, api: client.ApiClient) -> None:
    """kube-controller-manager reports scaling argocd-server's ReplicaSet (its Pods are created
    but, with no kubelet, never run); those Events come with the status, one line each."""
    deadline = time.monotonic() + 60
    while True:
        status = read_status(api, NAMESPACE)
        if any(
            e.startswith("Deployment/argocd-server: ScalingReplicaSet: ") for e in status.events
        ):
            break
        assert time.monotonic() < deadline, f"no ScalingReplicaSet event: {status.events}"
        time.sleep(1)
    for event in status.events:
        kind, _, rest = event.partition("/")
        assert kind in ("Deployment", "StatefulSet", "ReplicaSet", "Pod"), event
        name, reason, message = rest.split(": ", 2)
        assert name.startswith("argocd-") and reason and message, event
    per_workload: dict[str, int] = {}
    for workload in status.workloads:
        per_workload[workload.name] = sum(
            event.split(": ")[0].split("/")[1].startswith(workload.name) for event in status.events
        )
    assert max(per_workload.values()) <= 5
    assert "recent events of what is not ready:" in summary(status).splitlines()


def test_wait_for_rollout_returns_the_unhealthy_status_after_its_timeout(
    argocd: Path, api: client.ApiClient
) -> None:
    """Pods never start here, so the wait runs out; it returns instead of raising."""
    started = time.monotonic()
    status = wait_for_rollout(api, NAMESPACE, timeout=3, interval=1)
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 15
    assert not status.healthy
    assert [(w.name, w.ready) for w in status.workloads] == [
        (w.name, w.ready) for w in read_status(api, NAMESPACE).workloads
    ]


def test_a_missing_namespace_is_a_result_not_an_error(argocd: Path, api: client.ApiClient) -> None:
    status = read_status(api, "argocd-nowhere")
    assert status == Status(
        namespace="argocd-nowhere",
        namespace_exists=False,
        workloads=[],
        crds=dict.fromkeys(ARGOCD_CRDS, True),  # cluster-scoped: installed all the same
        ingress_hosts=[],
        server_insecure_configured=None,
        server_insecure_running=None,
        api="not checked",
        api_ok=None,
        events=[],
    )
    assert not status.healthy
    assert status.problems == ["namespace argocd-nowhere"]
    assert summary(status).splitlines()[0] == "namespace argocd-nowhere: missing"


def test_ingress_hosts_of_the_namespace_are_listed(
    api: client.ApiClient, own_namespace: str
) -> None:
    rule = {"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _backend()}]}}
    for name, host in (("a", "gitops.internal.tirosh.ai"), ("b", "argocd.lab.test")):
        body = {"metadata": {"name": name}, "spec": {"rules": [{"host": host, **rule}]}}
        client.NetworkingV1Api(api).create_namespaced_ingress(own_namespace, body)
    status = read_status(api, own_namespace)
    assert status.ingress_hosts == ["argocd.lab.test", "gitops.internal.tirosh.ai"]
    assert "Ingress: gitops.internal.tirosh.ai" in summary(status).splitlines()


def _backend() -> dict[str, Any]:
    return {"service": {"name": "argocd-server", "port": {"number": 80}}}


# --------------------------------------------------------------------------- port-forward


def test_port_forward_needs_a_running_server_pod(argocd: Path, api: client.ApiClient) -> None:
    """argocd-server's Pod exists but stays Pending (no kubelet): no port-forward starts."""
    pods = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=SERVER_SELECTOR)
    deadline = time.monotonic() + 60
    while not pods.items:  # the ReplicaSet controller creates it shortly after the apply
        assert time.monotonic() < deadline, "argocd-server's ReplicaSet created no Pod"
        time.sleep(1)
        pods = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=SERVER_SELECTOR)
    assert {pod.status.phase for pod in pods.items} == {"Pending"}
    assert serving_server_pods(api, NAMESPACE) == []
    with (
        pytest.raises(NoServerPod) as raised,
        argocd_server(argocd, CONTEXT, NAMESPACE, local_port=_free_port()),
    ):
        pytest.fail("port-forward started without a running argocd-server pod")
    assert str(raised.value) == (
        "no argocd-server pod is running in namespace argocd (context default); "
        "port-forward needs one: check make argocd/status"
    )
    assert _port_forward_processes(argocd) == []


_KUBECTL_STAND_IN = '''#!{python}
"""Stand-in for `kubectl port-forward` (no kubelet runs, so the real one has no pod to reach):
records its arguments and pid, then serves argocd-server's /api/version where kubectl would
listen."""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

args = sys.argv[1:]
address = args[args.index("--address") + 1]
local_port = int(args[-1].split(":")[0])
Path({record!r}).write_text(json.dumps({{"args": args, "pid": __import__("os").getpid()}}))


class Version(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"Version": "v3.5.8+kubectl-stand-in"}}).encode()
        self.send_response(200 if self.path == "/api/version" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


HTTPServer((address, local_port), Version).serve_forever()
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _running_server_pod(api: client.ApiClient, namespace: str) -> str:
    """An argocd-server Pod whose status says Running and Ready. No kubelet runs here, so the
    test writes that status itself, as a kubelet would."""
    core = client.CoreV1Api(api)
    pod = {
        "metadata": {
            "name": "argocd-server-0",
            "labels": {"app.kubernetes.io/name": "argocd-server"},
        },
        "spec": {
            "nodeName": "loopback",
            "automountServiceAccountToken": False,
            "containers": [{"name": "argocd-server", "image": "quay.io/argoproj/argocd:v3.5.8"}],
        },
    }
    deadline = time.monotonic() + 30
    while True:  # the namespace's default ServiceAccount appears shortly after the namespace
        try:
            core.create_namespaced_pod(namespace, pod)
            break
        except client.ApiException as exc:
            if exc.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    ready = {"type": "Ready", "status": "True"}
    status = {"status": {"phase": "Running", "conditions": [ready]}}
    core.patch_namespaced_pod_status("argocd-server-0", namespace, status)
    return "argocd-server-0"


def test_port_forward_runs_kubectl_until_the_block_ends(
    loopback_kubeconfig: Path, api: client.ApiClient, own_namespace: str, tmp_path: Path
) -> None:
    """With a Running argocd-server pod, argocd_server() starts kubectl port-forward (here a
    stand-in for kubectl: the real one would need a kubelet), waits until it listens, yields its
    URL, and afterwards leaves no process behind."""
    assert serving_server_pods(api, own_namespace) == []
    pod = _running_server_pod(api, own_namespace)
    assert serving_server_pods(api, own_namespace) == [pod]
    record = tmp_path / "kubectl-args.json"
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(_KUBECTL_STAND_IN.format(python=sys.executable, record=str(record)))
    kubectl.chmod(0o755)
    port = _free_port()
    with argocd_server(
        loopback_kubeconfig, CONTEXT, own_namespace, local_port=port, kubectl=str(kubectl)
    ) as url:
        assert url == f"http://127.0.0.1:{port}"
        assert check_api("gitops.lab.test", url) == (
            True,
            f"answers at {url}/api/version: v3.5.8+kubectl-stand-in",
        )
        started = json.loads(record.read_text())
        assert Path(f"/proc/{started['pid']}").exists()
    expected = port_forward_command(
        str(kubectl), loopback_kubeconfig, CONTEXT, own_namespace, port, pod
    )
    assert started["args"] == expected[1:]
    # Reaped, not a zombie: the pid is gone from /proc altogether.
    assert not Path(f"/proc/{started['pid']}").exists()
    assert check_api("gitops.lab.test", url)[0] is False


# --------------------------------------------------------------------------- CLI


def test_cli_waits_then_reports_the_unready_rollout_and_exits_1(
    argocd: Path, tmp_path: Path
) -> None:
    """`python -m local argocd/status lab --wait 2` with the operator overrides pointing at the
    loopback cluster (KUBECONFIG, KUBECTX): the lab site port-forwards for the API check, and
    with no running argocd-server pod the API line says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    env.update(HOME=str(tmp_path), KUBECONFIG=str(argocd), KUBECTX=CONTEXT)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "local", "argocd/status", "lab", "--wait", "2"],
        cwd=REPO_ROOT,
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - started >= 2
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        f"site lab: context {CONTEXT}, kubeconfig {argocd}",
        "waiting up to 2 s for the Argo CD rollout...",
    ]
    assert "Deployment argocd-server: 0/1 ready  NOT READY" in lines
    assert (
        "API: not checked: no argocd-server pod is running in namespace argocd to port-forward to"
    ) in lines
    verdict = next(line for line in lines if line.startswith("not healthy: "))
    names = verdict.removeprefix("not healthy: ").split(", ")
    assert "argocd-server" in names
    assert names[-1] == "API"


# --------------------------------------------------------------------------- server.insecure


def _set_insecure(api: client.ApiClient, configured: str, running: str) -> Status:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.patch_namespaced_config_map(
        "argocd-cmd-params-cm", NAMESPACE, {"data": {"server.insecure": configured}}
    )
    template = {"metadata": {"annotations": {SERVER_INSECURE_ANNOTATION: running}}}
    apps.patch_namespaced_deployment("argocd-server", NAMESPACE, {"spec": {"template": template}})
    return read_status(api, NAMESPACE)


def test_a_changed_server_insecure_shows_a_pending_restart(
    argocd: Path, api: client.ApiClient
) -> None:
    """argocd-cmd-params-cm says true, argocd-server's pods were started with false."""
    status = _set_insecure(api, configured="true", running="false")
    assert (status.server_insecure_configured, status.server_insecure_running) == ("true", "false")
    assert status.restart_pending
    assert "argocd-server restart pending (server.insecure)" in status.problems
    assert "server.insecure: configured true, running false (restart pending)" in (
        summary(status).splitlines()
    )


def test_an_applied_server_insecure_shows_no_pending_restart(
    argocd: Path, api: client.ApiClient
) -> None:
    status = _set_insecure(api, configured="true", running="true")
    assert not status.restart_pending
    assert not any("restart pending" in problem for problem in status.problems)
    assert "server.insecure: configured true, running true" in summary(status).splitlines()
