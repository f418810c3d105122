"""Shared by the tests of tirosh.site: a valid site (BASE) and ways to break it one mistake at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tirosh.site import Problem, SiteError, load_site

# The checkout: the nearest folder above holding sites/.
REPO = next(p for p in Path(__file__).resolve().parents if (p / "sites").is_dir())
PROFILE = "profile.toml"
INVENTORY = "inventory.toml"
K3S = "k3s/vars.yml"
ARGOCD = "argocd/vars.yml"
HOME = "/home/op"
ENV = {"HOME": HOME}

BASE = {
    PROFILE: """\
[kube]
kubeconfig = "~/.kube/config"

[kube.contexts]
argocd = "lab/k3s"
rke2_gpu = "lab/rke2/gpu"

[argocd]
target_name = "argocd"
server = "gitops.lab.example"
login_args = "--grpc-web"
auto_port_forward = false
cluster_context = "lab/rke2/gpu"
cluster_name = "lab-rke2-gpu"

[k3s]
api_server = "https://k3s.lab.example:6443"
""",
    INVENTORY: """\
[vms.argocd]
ansible_host = "10.0.0.10"
ansible_user = "ops"
ansible_become_user = "root"
proxmox_vm_name = "argocd"
workloads = ["k3s", "argocd"]

[vms.gpu]
ansible_host = "10.0.0.20"
ansible_user = "ops"
ansible_become_user = "root"
proxmox_vm_name = "gpu"
workloads = ["rke2"]
ssh_port = 2222
ssh_key = "keys/lab_ed25519"
""",
    K3S: """\
k3s_version: "v1.34.3+k3s1"
k3s_install_source: release
k3s_config:
  write-kubeconfig-mode: "0600"
  tls-san:
    - k3s.lab.example
    - 10.0.0.10
  node-ip: 10.0.0.10
  disable:
    - servicelb
  some-future-flag: [1, two]
""",
    ARGOCD: """\
argocd_ingress_enabled: true
argocd_ingress_class_name: traefik
argocd_ingress_host: gitops.lab.example
argocd_ingress_service_port: 80
argocd_server_insecure: true
argocd_ingress_tls_enabled: false
""",
}


def site_file(repo: Path, name: str) -> Path:
    return repo / "sites" / "lab" / name


def edit(repo: Path, name: str, old: str, new: str) -> None:
    path = site_file(repo, name)
    text = path.read_text()
    assert old in text, f"test bug: {old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))


def append(repo: Path, name: str, text: str) -> None:
    path = site_file(repo, name)
    path.write_text(path.read_text() + text)


def problems(repo: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(SiteError) as info:
        load_site("lab", repo, ENV if environ is None else {**ENV, **environ})
    return info.value.problems


def only_problem(repo: Path, environ: dict[str, str] | None = None) -> Problem:
    found = problems(repo, environ)
    # Exactly one: a mistake must not cascade into unrelated follow-up problems.
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def rel(name: str) -> str:
    return f"sites/lab/{name}"


def refused(repo: Path, name: str, old: str, new: str, key: str) -> Problem:
    """The one problem of site file ``name`` edited from ``old`` to ``new``, reported at key."""
    edit(repo, name, old, new)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), key)
    return problem


def write_manifest(path: Path, text: str = "kind: ServiceAccount\nmetadata: {name: a}\n") -> None:
    # The loader reads a manifest file when there is no sha256 pin (issue 8).
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
