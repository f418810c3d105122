"""A secret-bearing fact read at pyinfra's highest verbosity: its output never reaches the log.

The real pyinfra CLI on its ``@local`` connector (no network): ``kubeconfig.pulled`` reads a
k3s-shaped kubeconfig through ``secret_fact``; the same fact read with a plain
``host.get_fact`` shows that ``-vvv`` does print fact output otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: default
  cluster: {{certificate-authority-data: RkFLRS1DQQ==, server: "https://127.0.0.1:6443"}}
users:
- name: default
  user: {{client-certificate-data: RkFLRS1DRVJU, client-key-data: {key}}}
contexts:
- name: default
  context: {{cluster: default, user: default}}
current-context: default
"""

DEPLOY = """\
from pyinfra import host

from facts.kubeconfig import KubeconfigFile
from operations import kubeconfig

host.get_fact(KubeconfigFile, path={plain!r})
kubeconfig.pulled(
    name="Pull the kubeconfig",
    remote_path={secret!r},
    context="t/k3s",
    server="https://127.0.0.1:6443",
    site_file={site!r},
)
"""


def test_secret_fact_output_stays_out_of_the_log_at_vvv(tmp_path: Path) -> None:
    secret, plain = tmp_path / "k3s.yaml", tmp_path / "plain.yaml"
    secret.write_text(KUBECONFIG.format(key="U0VDUkVULWNhbmFyeQ=="))
    plain.write_text(KUBECONFIG.format(key="UExBSU4tY2FuYXJ5"))
    deploy = tmp_path / "pull.py"
    site = tmp_path / "site.yml"
    deploy.write_text(DEPLOY.format(plain=str(plain), secret=str(secret), site=str(site)))
    result = subprocess.run(
        [PYINFRA, "--dry", "-vvv", "@local", str(deploy)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "UExBSU4tY2FuYXJ5" in output  # -vvv prints a fact's output...
    assert "U0VDUkVULWNhbmFyeQ==" not in output  # ...but not a secret fact's
    assert "Loaded fact facts.kubeconfig.KubeconfigFile" in output
    assert not site.exists()  # --dry wrote nothing
