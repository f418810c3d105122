"""Plan-only runs of the real deploy for a real site, on pyinfra's @fake connector.

Nothing here connects anywhere: tirosh-home's addresses are never contacted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))


def plan(
    home: Path, *arguments: str, deploy: str = "deploy.py", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    environ.update(HOME=str(home), PYINFRA_FAKE_DELAY="0", **env)
    return subprocess.run(
        [PYINFRA, "tests/inventories/fake.py", *arguments, deploy, "--dry", "--json"],
        cwd=REPO,
        env=environ,
        text=True,
        capture_output=True,
        timeout=120,
    )


def test_tirosh_home_plan_on_a_fresh_vm(tmp_path: Path) -> None:
    result = plan(tmp_path, FAKE_SITE="tirosh-home")
    assert result.returncode == 0, result.stderr
    ops = {op["name"].split(" | ", 1)[1]: op for op in json.loads(result.stdout)["plan"]}
    assert list(ops) == [
        "Install k3s v1.34.3+k3s1",
        "Create /etc/rancher/k3s",
        "Render /etc/rancher/k3s/config.yaml",
        "Install the k3s systemd unit /etc/systemd/system/k3s.service",
        "Restart k3s after a change",
        "Keep k3s running and enabled at boot",
        "Merge kubeconfig context tirosh-home/k3s",
        "Install Argo CD v3.5.8 (server-side apply)",
        "argocd-server runs with server.insecure=true",
        "Argo CD Ingress gitops.internal.tirosh.ai",
        "Local phase: clusters, repositories, Secrets",
    ]
    assert ops["Install k3s v1.34.3+k3s1"]["hosts_with_change"] == ["@fake/argocd"]
    # A restart only when something before it changed, decided at execute time.
    assert ops["Restart k3s after a change"]["hosts_with_conditional_change"] == ["@fake/argocd"]
    # No Argo CD and no kubeconfig yet: the local phase is planned to run after the remote one.
    assert ops["Local phase: clusters, repositories, Secrets"]["hosts_with_change"] == [
        "@fake/argocd"
    ]
    # The plan wrote nothing on the operator's side.
    assert not (tmp_path / ".kube").exists()


def test_invalid_site_stops_before_connecting(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(REPO / "sites", sites)
    vars_file = sites / "tirosh-home" / "k3s" / "vars.yml"
    vars_file.write_text(vars_file.read_text().replace('"0644"', "0644"))
    result = plan(tmp_path, FAKE_SITE="tirosh-home", TIROSH_SITES_DIR=str(sites))
    assert result.returncode != 0
    assert (
        "sites/tirosh-home/k3s/vars.yml: k3s_config.write-kubeconfig-mode: "
        'must be a quoted octal string such as "0644"'
    ) in result.stderr
    assert "Connected" not in result.stderr + result.stdout


def test_a_part_run_alone_picks_hosts_by_their_group(tmp_path: Path) -> None:
    # The lab site has an rke2 host: `--limit rke2` (make rke2/kubeconfig/merge) plans its
    # context only, on that host only.
    result = plan(tmp_path, "--limit", "rke2", deploy="deploys/kubeconfig.py", FAKE_SITE="lab")
    assert result.returncode == 0, result.stderr
    ((op),) = json.loads(result.stdout)["plan"]
    assert op["name"] == "kubeconfig | Merge kubeconfig context lab/rke2/gpu"
    assert op["hosts_with_change"] == ["@fake/rke2-gpu"]


def test_a_site_that_fetches_pins_v3_6_2_by_url_and_sha256(tmp_path: Path) -> None:
    """tirosh-home raised to the 3.6 line (README, Argo CD versions): the site validates and the
    plan installs that release from the pinned download (the VM would fetch it)."""
    sites = tmp_path / "sites"
    shutil.copytree(REPO / "sites", sites)
    vars_file = sites / "tirosh-home" / "argocd" / "vars.yml"
    text = vars_file.read_text()
    text = text.replace("argocd_version: v3.5.8", "argocd_version: v3.6.2").replace(
        "948e7e3a70b03130f70e4c02ee2357c1cc97fb766674b6bddaed0f537cd5a00f",
        "c948064d38294d857712ef78444768749a14293613098932f8533e37d067a2a2",
    )
    vars_file.write_text(text)
    result = plan(
        tmp_path, FAKE_SITE="tirosh-home", TIROSH_SITES_DIR=str(sites), deploy="deploys/argocd.py"
    )
    assert result.returncode == 0, result.stderr
    names = [op["name"].split(" | ", 1)[-1] for op in json.loads(result.stdout)["plan"]]
    assert "Install Argo CD v3.6.2 (server-side apply)" in names
