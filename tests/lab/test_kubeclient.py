"""local.kube.client against a real kube-apiserver: key material never lands in a file.

The loopback cluster's admin kubeconfig authenticates with a client certificate and key
(``client-key-data``), the case in which the ``kubernetes`` package writes the key to the temp
directory and leaves it there when the process is killed.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from kubernetes.client import CoreV1Api

from local.kube import client as kubeclient

pytestmark = pytest.mark.lab
CONTEXT = "default"


def client_key(kubeconfig: Path) -> bytes:
    (user,) = yaml.safe_load(kubeconfig.read_text())["users"]
    return base64.b64decode(user["user"]["client-key-data"])


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_a_client_reads_the_api_with_its_key_in_memory_only(
    loopback_kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    api = kubeclient.api_client(loopback_kubeconfig, CONTEXT)
    try:
        namespaces = CoreV1Api(api).list_namespace()
        assert "kube-system" in [item.metadata.name for item in namespaces.items]
        assert list(tmp_path.iterdir()) == []
        assert os.path.realpath(api.configuration.key_file).startswith("/memfd:")
    finally:
        api.close()


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from {module} import {loader}
    api = ({call})(Path(sys.argv[1]), "default")
    from kubernetes.client import VersionApi
    VersionApi(api).get_code()
    print("ready", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize(
    ("module", "loader", "call", "leaves_key"),
    [
        ("local.kube", "client", "client.api_client", False),
        # The fault this module exists for, shown on the kubernetes package's own loader.
        ("kubernetes", "config", "lambda f, c: config.new_client_from_config(str(f), c)", True),
    ],
)
def test_a_killed_command_leaves_no_key_in_the_temp_directory(
    loopback_kubeconfig: Path,
    tmp_path: Path,
    module: str,
    loader: str,
    call: str,
    leaves_key: bool,
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT.format(module=module, loader=loader, call=call),
            str(loopback_kubeconfig),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    leftovers = files_holding(tmp, client_key(loopback_kubeconfig))
    assert bool(leftovers) == leaves_key


EXEC_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from local.kube.port_forward import NoServerPod, server_pod
    try:
        server_pod(Path(sys.argv[1]), "default", "kube-system")
    except NoServerPod:
        pass
    print("ready", flush=True)
    os.execvp("sleep", ["sleep", "60"])  # as port-forward execs kubectl
    """
)


def test_port_forward_leaves_no_key_when_it_execs_and_is_killed(
    loopback_kubeconfig: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", EXEC_SCRIPT, str(loopback_kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert files_holding(tmp, client_key(loopback_kubeconfig)) == []
