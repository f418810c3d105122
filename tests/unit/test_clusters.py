"""Workload clusters: the profile's cluster, the list form of clusters.toml (read by the site
model), and the kubeconfig checks of tirosh.clusters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tirosh.clusters import (
    ContextProblem,
    WorkloadCluster,
    is_loopback_url,
    resolve_server,
)
from tirosh.site import SiteError
from tirosh.site.clusters_file import read_clusters
from tirosh.site.reader import read_alone

FILE = "argocd/clusters.toml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def load_clusters(
    site: Path, context: str, name: str, environ: dict[str, str]
) -> list[WorkloadCluster]:
    """The clusters the site model reads from ``site`` (``sites/<name>`` under a root)."""
    path = site / FILE
    found = read_alone(
        lambda r, p: read_clusters(r, p, context, name), path, site.parents[1], environ
    )
    return list(found)


def _site(tmp_path: Path, text: str | None) -> Path:
    site = tmp_path / "sites/s"
    (site / "argocd").mkdir(parents=True, exist_ok=True)
    if text is not None:
        (site / FILE).write_text(text)
    return site


def test_without_the_file_the_profile_declares_one(tmp_path: Path) -> None:
    assert load_clusters(_site(tmp_path, None), "s/rke2/gpu", "s-gpu", {}) == [
        WorkloadCluster("s/rke2/gpu", "s-gpu")
    ]


def test_cluster_kubectx_overrides_the_single_context(tmp_path: Path) -> None:
    clusters = load_clusters(_site(tmp_path, None), "a", "s-gpu", {"CLUSTER_KUBECTX": "b"})
    assert clusters == [WorkloadCluster("b", "s-gpu")]


def test_the_list_form_replaces_the_profile(tmp_path: Path) -> None:
    text = """
[[clusters]]
context = "c1"
name = "one"
server = "https://10.0.0.2:6443"
namespaces = ["apps", "web"]

[[clusters]]
context = "c2"
name = "two"
"""
    assert load_clusters(_site(tmp_path, text), "p", "pn", {}) == [
        WorkloadCluster("c1", "one", "https://10.0.0.2:6443", ("apps", "web")),
        WorkloadCluster("c2", "two"),
    ]


def test_an_empty_list_declares_none(tmp_path: Path) -> None:
    assert load_clusters(_site(tmp_path, "clusters = []\n"), "p", "pn", {}) == []


def test_every_problem_is_reported_with_file_and_key(tmp_path: Path) -> None:
    text = """
[[clusters]]
context = "c1"
name = "a/b"
server = "http://x"
namespaces = ["Bad_NS"]
colour = "red"

[[clusters]]
name = "two"
server = "https://127.0.0.1:6443"
"""
    with pytest.raises(SiteError) as error:
        load_clusters(_site(tmp_path, text), "p", "pn", {})
    lines = str(error.value).splitlines()
    prefix = "sites/s/argocd/clusters.toml: "
    assert (
        prefix + "clusters[0].colour: unknown key (known keys: context, name, server, namespaces)"
        in lines
    )
    assert any(line.startswith(prefix + "clusters[0].name: letters") for line in lines)
    assert prefix + "clusters[0].server: must be an https:// URL, got 'http://x'" in lines
    assert any(line.startswith(prefix + "clusters[0].namespaces: 'Bad_NS'") for line in lines)
    assert prefix + "clusters[1].context: required key is missing" in lines
    assert any(
        "clusters[1].server: cluster two: server https://127.0.0.1:6443 is this" in line
        for line in lines
    )


def test_duplicates_and_invalid_toml(tmp_path: Path) -> None:
    text = '[[clusters]]\ncontext = "c"\nname = "n"\n[[clusters]]\ncontext = "c"\nname = "n"\n'
    with pytest.raises(SiteError, match=r"clusters\[1\].name: 'n' is declared twice"):
        load_clusters(_site(tmp_path, text), "p", "pn", {})
    with pytest.raises(SiteError, match=r"invalid TOML"):
        load_clusters(_site(tmp_path, "clusters = [\n"), "p", "pn", {})


def test_kubectx_with_several_clusters_is_refused(tmp_path: Path) -> None:
    text = '[[clusters]]\ncontext = "a"\nname = "a"\n[[clusters]]\ncontext = "b"\nname = "b"\n'
    with pytest.raises(SiteError, match=r"CLUSTER_KUBECTX: overrides the context of one cluster"):
        load_clusters(_site(tmp_path, text), "p", "pn", {"CLUSTER_KUBECTX": "x"})


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("https://127.0.0.1:6443", True),
        ("https://localhost:6443", True),
        ("https://LOCALHOST.:6443", True),
        ("https://[::1]:6443", True),
        ("https://127.0.0.2:6443", False),
        ("https://10.0.0.2:6443", False),
        ("https://k8s.example:6443", False),
    ],
)
def test_loopback_urls(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


KUBECONFIG = {
    "clusters": [
        {"name": "mgmt", "cluster": {"server": "https://10.0.0.1:6443"}},
        {"name": "gpu", "cluster": {"server": "https://10.0.0.2:6443/"}},
        {"name": "k3s-default", "cluster": {"server": "https://127.0.0.1:6443"}},
        {"name": "mgmt-alias", "cluster": {"server": "https://10.0.0.1:6443"}},
    ],
    "contexts": [
        {"name": "s/k3s", "context": {"cluster": "mgmt", "user": "u"}},
        {"name": "s/rke2/gpu", "context": {"cluster": "gpu", "user": "u"}},
        {"name": "raw", "context": {"cluster": "k3s-default", "user": "u"}},
        {"name": "again", "context": {"cluster": "mgmt-alias", "user": "u"}},
    ],
}
FILE_PATH = Path("/home/op/.kube/config")


def test_the_contexts_own_server_or_the_declared_one() -> None:
    gpu = WorkloadCluster("s/rke2/gpu", "gpu")
    assert resolve_server(KUBECONFIG, FILE_PATH, gpu, "s/k3s") == "https://10.0.0.2:6443"
    declared = WorkloadCluster("raw", "gpu", "https://gpu.example:6443")
    assert resolve_server(KUBECONFIG, FILE_PATH, declared, "s/k3s") == "https://gpu.example:6443"


def test_a_missing_context_names_the_file_and_the_contexts_there() -> None:
    with pytest.raises(ContextProblem) as error:
        resolve_server(KUBECONFIG, FILE_PATH, WorkloadCluster("nope", "n"), "s/k3s")
    assert "context 'nope' is not in /home/op/.kube/config (contexts there: s/k3s," in str(
        error.value
    )


@pytest.mark.parametrize("context", ["s/k3s", "again"])
def test_the_management_cluster_is_refused(context: str) -> None:
    with pytest.raises(ContextProblem, match=r"is the management cluster"):
        resolve_server(KUBECONFIG, FILE_PATH, WorkloadCluster(context, "n"), "s/k3s")


def test_a_loopback_server_is_refused_with_a_hint() -> None:
    with pytest.raises(ContextProblem, match=r"loopback, which Argo CD .* cannot reach: declare"):
        resolve_server(KUBECONFIG, FILE_PATH, WorkloadCluster("raw", "n"), "s/k3s")


def test_the_management_context_is_refused_before_any_connection(tmp_path: Path) -> None:
    from tirosh.site import load_site

    repo = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "sites", repo / "sites")
    (repo / "sites/lab/argocd/clusters.toml").write_text(
        '[[clusters]]\ncontext = "lab/k3s"\nname = "self"\n'
    )
    with pytest.raises(SiteError) as error:
        load_site("lab", repo_root=repo, environ={"HOME": str(tmp_path)})
    assert (
        "sites/lab/argocd/clusters.toml: clusters[0].context: 'lab/k3s' is the management "
        "cluster's context" in str(error.value)
    )
    (repo / "sites/lab/argocd/clusters.toml").write_text(
        '[[clusters]]\ncontext = "w"\nname = "w"\n'
    )
    with pytest.raises(
        SiteError, match=r"environment: CLUSTER_KUBECTX: 'lab/k3s' is the management"
    ):
        load_site(
            "lab", repo_root=repo, environ={"HOME": str(tmp_path), "CLUSTER_KUBECTX": "lab/k3s"}
        )
