"""URL and single-value checks (tirosh.urls, tirosh.inputs), and the site loader's use of them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.unit.site.helpers import (
    ARGOCD,
    ENV,
    K3S,
    PROFILE,
    append,
    only_problem,
    refused,
    rel,
)
from tirosh.argocd import parse_manifest
from tirosh.inputs import ascii_match, text_problem
from tirosh.site import SiteError, load_site
from tirosh.urls import url_problem

PIN = "a" * 64


@pytest.mark.parametrize(
    ("url", "https_only", "pinned", "message"),
    [
        ("https://user:pw@github.com/k3s", False, True, "credentials"),
        ("https://user@github.com/k3s", False, True, "credentials"),
        ("https://user%40x:pw@github.com/k3s", False, True, "credentials"),
        ("https://github.com\\@evil.example/k3s", False, True, "ASCII URL"),
        ("https://github.com/a b", False, True, "ASCII URL"),
        ("https://github.com/a\nb", False, True, "ASCII URL"),
        ("https://github.com/\u0430", False, True, "ASCII URL"),
        ('https://github.com/"x', False, True, "ASCII URL"),
        ("http://mirror.lab.example/k3s", False, False, "plain http://"),
        ("http://mirror.lab.example/k3s", True, True, "https://"),
        ("ftp://mirror.lab.example/k3s", False, True, "http:// or https://"),
        ("https:///k3s", False, True, "no valid host"),
        ("https://h:99999/", False, True, "not a valid URL"),
        ("file:///etc/passwd", False, True, "http"),
    ],
)
def test_url_refusals(url: str, https_only: bool, pinned: bool, message: str) -> None:
    problem = url_problem(url, https_only=https_only, pinned=pinned)
    assert problem is not None and message in problem
    assert "pw" not in problem


@pytest.mark.parametrize(
    ("url", "pinned"),
    [
        ("https://github.com/k3s-io/k3s/releases/download", False),
        ("http://mirror.lab.example/k3s", True),
        ("https://[fd00::1]:8443/k3s", False),
        ("https://mirror.lab.example/a;b$(c)'d", False),  # legal URL characters; quoted on use
    ],
)
def test_url_accepted(url: str, pinned: bool) -> None:
    assert url_problem(url, pinned=pinned) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\0b", "a NUL byte"),
        ("a\nb", "U+000A"),
        ("a\u2028b", "U+2028"),
        ("a\u202eb", "U+202E"),
        ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"),
    ],
)
def test_text_problem(value: str, message: str) -> None:
    assert message in (text_problem(value) or "")


def test_ascii_match_refuses_other_digits() -> None:
    pattern = re.compile(r"v\d+\.\d+\.\d+")
    assert ascii_match(pattern, "v1.34.3")
    assert not ascii_match(pattern, "v\u0661.34.3") and pattern.fullmatch("v\u0661.34.3")


# --------------------------------------------------------------------------- in the site loader


@pytest.mark.parametrize(
    ("name", "old", "new", "key", "message"),
    [
        (
            K3S,
            'k3s_version: "v1.34.3+k3s1"',
            'k3s_version: "v1.\u0663\u0664.3+k3s1"',
            "k3s_version",
            "must look like",
        ),
        (
            K3S,
            'k3s_version: "v1.34.3+k3s1"',
            'k3s_version: "v1.34.3+k3s\uff11"',
            "k3s_version",
            "must look like",
        ),
        (
            ARGOCD,
            "argocd_ingress_enabled",
            "argocd_version: v3.\u0665.1\nargocd_ingress_enabled",
            "argocd_version",
            "must look like",
        ),
        (
            PROFILE,
            'server = "gitops.lab.example"',
            'server = "gitops.lab.example:\u0668\u0660"',
            "argocd.server",
            "invalid port",
        ),
        (
            PROFILE,
            'kubeconfig = "~/.kube/config"',
            'kubeconfig = "~/.kube/con\\u0000fig"',
            "kube.kubeconfig",
            "a NUL byte",
        ),
        (
            K3S,
            "k3s_install_source: release",
            'k3s_install_source: release\nk3s_airgap_dir: "a\\0b"',
            "k3s_airgap_dir",
            "a NUL byte",
        ),
        (
            K3S,
            "k3s_install_source: release",
            "k3s_install_source: release\nk3s_release_url: https://u:hunter2@mirror.lab.example/k3s",
            "k3s_release_url",
            "credentials",
        ),
        (
            K3S,
            "k3s_install_source: release",
            "k3s_install_source: release\nk3s_release_url: http://mirror.lab.example/k3s",
            "k3s_release_url",
            "plain http://",
        ),
        (
            ARGOCD,
            "argocd_ingress_enabled",
            "argocd_manifest_url: https://u:hunter2@mirror.lab.example/{version}/install.yaml\nargocd_ingress_enabled",
            "argocd_manifest_url",
            "credentials",
        ),
        (
            ARGOCD,
            "argocd_ingress_enabled",
            "argocd_manifest_url: http://mirror.lab.example/{version}/install.yaml\nargocd_ingress_enabled",
            "argocd_manifest_url",
            "plain http://",
        ),
        (
            PROFILE,
            "https://k3s.lab.example:6443",
            "https://admin:hunter2@k3s.lab.example:6443",
            "k3s.api_server",
            "credentials",
        ),
        (
            K3S,
            "  node-ip: 10.0.0.10\n",
            '  node-ip: 10.0.0.10\n  node-label: ["a=b\\nc"]\n',
            "k3s_config.node-label[0]",
            "U+000A",
        ),
    ],
)
def test_the_loader_refuses(
    repo: Path, name: str, old: str, new: str, key: str, message: str
) -> None:
    problem = refused(repo, name, old, new, key)
    assert message in problem.message and "hunter2" not in problem.message


def test_plain_http_downloads_pass_with_a_pin(repo: Path) -> None:
    append(repo, K3S, f"k3s_release_url: http://mirror.lab.example/k3s\nk3s_sha256: {PIN}\n")
    append(
        repo,
        ARGOCD,
        f"argocd_manifest_url: http://m.lab.example/install.yaml\nargocd_manifest_sha256: {PIN}\n",
    )
    site = load_site("lab", repo, ENV)
    assert site.k3s.release_url.startswith("http://")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: ServiceAccount\nmetadata: {name: [\n", "invalid YAML at line 3"),
        ("- just\n- a list\n", "not a Kubernetes object"),
        ("kind: ServiceAccount\nmetadata: {}\n", "no metadata.name"),
        ("kind: Pod\nmetadata: {name: x}\n", "does not manage"),
        ("a: &x 1\nb: *x\n", "not a Kubernetes object"),
    ],
)
def test_a_malformed_manifest_file_is_a_problem_of_that_file(
    repo: Path,
    text: str,
    message: str,
) -> None:
    manifest = repo / "manifests" / "install.yaml"
    manifest.parent.mkdir()
    manifest.write_text(text)
    append(repo, ARGOCD, "argocd_manifest_file: manifests/install.yaml\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(ARGOCD), "argocd_manifest_file")
    assert problem.message.startswith("'manifests/install.yaml': ") and message in problem.message


def test_a_pinned_manifest_is_checked_against_its_pin(repo: Path) -> None:
    manifest = repo / "install.yaml"
    manifest.write_text("kind: ServiceAccount\nmetadata: {name: a}\n")
    append(repo, ARGOCD, f"argocd_manifest_file: install.yaml\nargocd_manifest_sha256: {PIN}\n")
    problem = only_problem(repo)
    assert problem.key == "argocd_manifest_file" and f"is not the pinned {PIN}" in problem.message


def test_a_broken_pinned_manifest_fails_the_deploy_in_one_line() -> None:
    with pytest.raises(ValueError, match="invalid YAML at line 2, column 1"):
        parse_manifest(b"kind: [\n")


def test_the_operator_commands_check_the_pin_without_parsing_the_manifest(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    manifest = repo / "install.yaml"
    manifest.write_text("kind: ServiceAccount\nmetadata: {name: [\n")  # not even YAML
    append(repo, ARGOCD, "argocd_manifest_file: install.yaml\n")
    # The operator commands never install it: not parsed, and nothing cached for it.
    load_site("lab", repo, ENV, parse_manifest=False)
    assert not cache.exists() or not any(cache.rglob("*.json"))
    # A pin still holds them to the file's content.
    append(repo, ARGOCD, f"argocd_manifest_sha256: {PIN}\n")
    with pytest.raises(SiteError, match=f"is not the pinned {PIN}"):
        load_site("lab", repo, ENV, parse_manifest=False)
