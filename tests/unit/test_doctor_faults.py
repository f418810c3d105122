"""make argocd/doctor in the states it exists for: each prerequisite missing in turn.

No cluster is needed to be missing one: the kubeconfig is absent, names no management context,
points at a loopback port where nothing listens, or the Argo CD API does not answer. The doctor
must report each as a failed check with its fix, go on with the next, and never crash.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRETS = (
    '[[secrets]]\nname = "writeback"\nnamespace = "argocd"\n'
    '[secrets.keys]\npassword = "WRITEBACK_TOKEN"\n'
)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the block ends


def _kubeconfig(contexts: dict[str, int]) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "insecure-skip-tls-verify": True,
                },
            }
            for name, port in contexts.items()
        ],
        "users": [{"name": "u", "user": {"token": "canary-doctor-token"}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": "u"}} for name in contexts
        ],
    }


CASES = {
    "no kubeconfig at all": None,
    "no management context": {"lab/rke2/gpu": 0},
    "management API not answering": {"lab/k3s": 0, "lab/rke2/gpu": 0},
    "workload context missing": {"lab/k3s": 0},
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_doctor_reports_each_missing_prerequisite(case: str, tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(REPO / "sites/lab", sites / "lab")
    (sites / "lab/argocd/clusters.toml").write_text(
        '[[clusters]]\ncontext = "lab/rke2/gpu"\nname = "gpu"\nserver = "https://198.51.100.11:6443"\n'
    )
    (sites / "lab/argocd/secrets.toml").write_text(SECRETS)
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    contexts = CASES[case]
    if contexts is not None:
        document = _kubeconfig({name: _closed_port() for name in contexts})
        (home / ".kube/config").write_text(yaml.safe_dump(document))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    environ.update(
        HOME=str(home),
        TIROSH_SITES_DIR=str(sites),
        ARGOCD_SERVER=f"127.0.0.1:{_closed_port()}",
        ARGOCD_LOGIN_ARGS="--plaintext",
        ARGOCD_AUTO_PORT_FORWARD="false",
        ARGOCD_PASSWORD="canary-doctor-password",
    )
    result = subprocess.run(
        [sys.executable, "-m", "local", "argocd/doctor", "lab"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert "canary-doctor" not in output
    lines = result.stdout.splitlines()
    failed = [i for i, line in enumerate(lines) if line.startswith("FAIL")]
    assert failed, output
    for index in failed:  # every failure says how to fix it
        assert lines[index + 1].strip().startswith("fix: "), output
    # Each section ran: the management context, the API, the workload context, the Secrets.
    for what in ("management context", "Argo CD API", "workload (gpu)", "Secret"):
        assert what in result.stdout, output
    assert lines[-1] == "some checks failed (fixes above)"
