"""local.remote: the initial admin Secret read and deleted with the deploy's own command path.

pyinfra's ``@local`` connector stands in for the SSH session (the nspawn lab belongs to the lab
tests): the command is the one the VM runs (``sudo ... k3s kubectl ...``), with ``sudo`` and
``k3s`` as small wrappers in PATH around this machine's kubectl and the management cluster.
Runs after test_commands.py (file order), once the original Secret is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyinfra.api import Config, Host, Inventory, State, StringCommand

from facts.util import kubectl as kubectl_command
from local import remote
from tests.local.conftest import KUBECTL, NAMESPACE, SITE, Harness
from tirosh.site import load_site

pytestmark = pytest.mark.lab

CANARY = "canary-initial-4a7e2c9b"


@pytest.fixture()
def local_host(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sudo").write_text(
        '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n'
    )
    (shims / "k3s").write_text(
        f'#!/bin/sh\n[ "$1" = kubectl ] && shift\n'
        f'exec {KUBECTL} --kubeconfig {harness.management_admin} "$@"\n'
    )
    for shim in shims.iterdir():
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}:{os.environ['PATH']}")
    # The deploy's kubectl is /usr/local/bin/k3s kubectl: here the k3s shim in PATH.
    monkeypatch.setattr(kubectl_command, "KUBECTL", StringCommand("k3s", "kubectl"))
    inventory = Inventory((["@local"], {}))
    State(inventory, Config())
    host = inventory.get_host("@local")
    host.connect(raise_exceptions=True)
    yield host
    host.disconnect()


def _put_initial_secret(harness: Harness) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": remote.INITIAL_SECRET, "namespace": NAMESPACE},
        "stringData": {"password": CANARY},
    }
    subprocess.run(
        [KUBECTL, "--kubeconfig", str(harness.management_admin), "apply", "-f", "-"],
        input=json.dumps(secret),
        text=True,
        check=True,
        capture_output=True,
    )


def test_read_and_delete_print_nothing(
    harness: Harness, local_host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    site = load_site(SITE, environ=harness.env())
    _put_initial_secret(harness)
    assert remote.read_initial_password(site, local_host) == CANARY
    remote.delete_initial_secret(site, local_host)
    assert remote.read_initial_password(site, local_host) is None
    captured = capsys.readouterr()
    assert CANARY not in captured.out + captured.err


def test_a_failing_command_names_the_host_and_the_reason(
    harness: Harness, local_host: Host, tmp_path: Path
) -> None:
    (tmp_path / "bin" / "k3s").unlink()  # a VM without k3s: the command fails
    site = load_site(SITE, environ=harness.env())
    with pytest.raises(
        remote.RemoteError, match=f"cannot read {remote.INITIAL_SECRET}: @local: .*k3s"
    ):
        remote.read_initial_password(site, local_host)
