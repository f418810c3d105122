"""Second-round refusals (issue 17, item 7): each class refused in one line before any connection.

Deep TOML, huge values, API server URLs with odd ports or a path, bare and zoned IPv6, cluster
names with '/', look-alike context names, KUBECONFIG as kubectl reads it, ARGOCD_SERVER, and
the workload context equal to the management one (test_values.py).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.site.helpers import (
    ENV,
    INVENTORY,
    K3S,
    PROFILE,
    append,
    edit,
    only_problem,
    problems,
    refused,
    rel,
)
from tirosh import kubeconfig
from tirosh.argocd_login import LoginArgsError
from tirosh.argocd_login import settings as login_settings
from tirosh.site import load_site, main
from tirosh.site.values import https_url_problem

API = 'api_server = "https://k3s.lab.example:6443"'
SERVER = 'server = "gitops.lab.example"'


def validate(repo: Path, environ: dict[str, str] | None = None) -> tuple[int, str]:
    """``python -m tirosh.site validate lab`` in process: exit code and stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update({**ENV, "TIROSH_SITES_DIR": str(repo / "sites"), **(environ or {})})
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["validate", "lab"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, err.getvalue()


# --------------------------------------------------------------------------- deep TOML


@pytest.mark.parametrize("depth", [33, 400, 5000, 100_000])
@pytest.mark.parametrize("kind", ["array", "inline table"])
@pytest.mark.parametrize("name", [PROFILE, INVENTORY])
def test_deeply_nested_toml_is_one_line_not_a_traceback(
    repo: Path, depth: int, kind: str, name: str
) -> None:
    value = "[" * depth + "]" * depth if kind == "array" else "{a=" * depth + "1" + "}" * depth
    append(repo, name, f"\n[deep]\nx = {value}\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), "-")
    assert "nested deeper than 32 levels" in problem.message
    code, stderr = validate(repo)
    assert code != 0
    assert "Traceback" not in stderr
    assert len(stderr) < 300


@pytest.mark.parametrize("name", ["clusters.toml", "repositories.toml", "secrets.toml"])
@pytest.mark.parametrize("depth", [33, 100_000])
def test_deep_toml_in_the_local_phase_files_is_one_line(repo: Path, name: str, depth: int) -> None:
    path = repo / "sites" / "lab" / "argocd" / name
    path.write_text("x = " + "[" * depth + "]" * depth + "\n")
    found = problems(repo)
    assert [(p.file, p.key) for p in found] == [(rel(f"argocd/{name}"), "-")], found
    assert "nested deeper than 32 levels" in found[0].message


def test_toml_within_the_depth_is_read(repo: Path) -> None:
    append(repo, PROFILE, "\n[deep]\nx = " + "[" * 29 + "]" * 29 + "\n")
    problem = only_problem(repo)
    assert (problem.key, problem.message.startswith("unknown key")) == ("deep", True)


# --------------------------------------------------------------------------- huge values


@pytest.mark.parametrize(
    ("name", "old", "template", "key"),
    [
        (PROFILE, SERVER, 'server = "{}"', "argocd.server"),
        (PROFILE, API, 'api_server = "https://{}:6443"', "k3s.api_server"),
        (PROFILE, 'argocd = "lab/k3s"', 'argocd = " {}"', "kube.contexts.argocd"),
        (PROFILE, 'cluster_name = "lab-rke2-gpu"', 'cluster_name = "{}/x"', "argocd.cluster_name"),
        (INVENTORY, 'ansible_host = "10.0.0.10"', 'ansible_host = "{}"', "vms.argocd.ansible_host"),
        (INVENTORY, 'ansible_user = "ops"', 'ansible_user = "{}"', "vms.argocd.ansible_user"),
        (K3S, 'k3s_version: "v1.34.3+k3s1"', 'k3s_version: "{}"', "k3s_version"),
    ],
)
def test_a_refusal_repeats_only_an_excerpt_of_a_huge_value(
    repo: Path, name: str, old: str, template: str, key: str
) -> None:
    huge = "a;" * 2_500_000  # 5 MB
    problems_seen = refused(repo, name, old, template.format(huge), key)
    assert len(problems_seen.message) < 500
    code, stderr = validate(repo)
    assert code != 0
    assert len(stderr) < 1000, len(stderr)


# --------------------------------------------------------------------------- API server URLs

BAD_API = [
    "https://k3s.lab.example:0",
    "https://k3s.lab.example:",
    "https://k3s.lab.example:65536",
    "https://k3s.lab.example:6443/",
    "https://k3s.lab.example:6443/api",
    "https://k3s.lab.example/k8s/clusters/c-1",
    "https://k3s.lab.example:6443?x=1",
    "https://k3s.lab.example:6443?",
    "https://k3s.lab.example:6443#frag",
    "https://k3s.lab.example#",
    "https://[fe80::1%25eth0]:6443",
    "https://[fe80::1]:6443",
]


@pytest.mark.parametrize("url", BAD_API)
@pytest.mark.parametrize("section", ["k3s", "rke2"])
def test_api_server_is_scheme_host_and_port_only(repo: Path, url: str, section: str) -> None:
    if section == "rke2":
        edit(repo, PROFILE, "[k3s]\n", f'[rke2]\napi_server = "{url}"\n\n[k3s]\n')
    else:
        edit(repo, PROFILE, API, f'api_server = "{url}"')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), f"{section}.api_server")


@pytest.mark.parametrize(
    "url", ["https://10.0.0.20:6443", "https://10.0.0.20", "https://[fd00::20]:6443"]
)
def test_ordinary_api_servers_pass(repo: Path, url: str) -> None:
    edit(repo, PROFILE, "[k3s]\n", f'[rke2]\napi_server = "{url}"\n\n[k3s]\n')
    assert load_site("lab", repo, ENV).rke2.api_server == url


@settings(max_examples=60, deadline=None)
@given(
    port=st.one_of(st.just(""), st.integers(0, 70000).map(str), st.text("0123456789x", max_size=6)),
    tail=st.sampled_from(["", "/", "/api", "?", "?a=b", "#", "#x", "/#", "//"]),
)
def test_api_server_ports_and_tails(port: str, tail: str) -> None:
    url = f"https://10.0.0.20:{port}{tail}"
    ok = port.isdigit() and 1 <= int(port) <= 65535 and tail == ""
    assert (https_url_problem(url) is None) == ok, url


# --------------------------------------------------------------------------- argocd.server


@pytest.mark.parametrize(
    "server",
    [
        "::1",
        "fd00::1",
        "::1:8080",
        "fe80::1",
        "[fe80::1%eth0]:443",
        "[fe80::1]",
        "fe80::1%eth0",
        "[10.0.0.1]",
        "[::1",
        "gitops.lab.example:",
        "gitops.lab.example:0",
        "gitops.lab.example:65536",
        "gitops.lab.example#x",
        "gitops.lab.example?x",
        "gitops.lab.example/x",
    ],
)
def test_argocd_server_refusals(repo: Path, server: str) -> None:
    refused(repo, PROFILE, SERVER, f'server = "{server}"', "argocd.server")


@pytest.mark.parametrize("server", ["[::1]", "[::1]:8080", "[fd00::1]:443", "10.0.0.1:8443", "h"])
def test_argocd_server_accepted(repo: Path, server: str) -> None:
    edit(repo, PROFILE, SERVER, f'server = "{server}"')
    assert load_site("lab", repo, ENV).argocd.server == server


@pytest.mark.parametrize("host", ["fe80::1%eth0", "fe80::1", "fe80::abcd%25"])
def test_a_link_local_ansible_host_is_refused(repo: Path, host: str) -> None:
    problem = refused(
        repo,
        INVENTORY,
        'ansible_host = "10.0.0.20"',
        f'ansible_host = "{host}"',
        "vms.gpu.ansible_host",
    )
    assert "link-local" in problem.message


# --------------------------------------------------------------------------- cluster_name


@pytest.mark.parametrize(
    "name", ["lab/rke2", "/x", "x/", "-x", ".x", "a b", "ä", "a\u00a0b", "a:b"]
)
def test_cluster_name_is_an_argo_cd_cluster_name(repo: Path, name: str) -> None:
    refused(
        repo,
        PROFILE,
        'cluster_name = "lab-rke2-gpu"',
        f'cluster_name = "{name}"',
        "argocd.cluster_name",
    )


# --------------------------------------------------------------------------- context names

LOOKALIKE = [
    "lab/rke2\u00a0gpu",  # no-break space
    "lab/rke2\u2009gpu",  # thin space
    "lab/rke2\u3000gpu",  # ideographic space
    "\uff4c\uff41\uff42/k3s",  # fullwidth lab
    "lab/\ufb01x",  # the fi ligature
    "l\u0430b/k3s",  # Cyrillic a among Latin letters
    "lab/k3\u0455",  # Cyrillic dze
    "lab/\u03bfps",  # Greek omicron
    "cafe\u0301/k3s",  # e + combining acute: NFKC composes it
    "\u0430/k3s",  # a word of one Cyrillic a: reads as the Latin "a"
    "\u0440\u043e\u0441/k3s",  # Cyrillic "poc", every letter drawn as a Latin one
]


@pytest.mark.parametrize("name", LOOKALIKE)
def test_look_alike_context_names_are_refused(repo: Path, name: str) -> None:
    edit(repo, PROFILE, 'rke2_gpu = "lab/rke2/gpu"', f'rke2_gpu = "{name}"')
    edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', f'cluster_context = "{name}"')
    found = [p.key for p in problems(repo)]
    assert found == ["kube.contexts.rke2_gpu", "argocd.cluster_context"]
    assert kubeconfig.name_problem(name) is not None


@pytest.mark.parametrize(
    "name", ["홈/k3s", "прод/k3s", "Ελλάδα/k3s", "lab/k3s", "lab k3s", "Lab_1.x/y:z"]
)
def test_ordinary_context_names_of_one_script_pass(name: str) -> None:
    assert kubeconfig.name_problem(name) is None


@pytest.mark.parametrize("variable", ["KUBECTX", "CLUSTER_KUBECTX"])
def test_look_alike_context_overrides_are_refused(repo: Path, variable: str) -> None:
    problem = only_problem(repo, {variable: "lab/rke2\u00a0gpu"})
    assert (problem.file, problem.key) == ("environment", variable)


# --------------------------------------------------------------------------- KUBECONFIG


@pytest.mark.parametrize(
    "value",
    [
        "~/x",
        "~",
        "~op/x",
        " ",
        "  \t",
        " /srv/a",
        "/srv/a ",
        "/srv/a:~/b",
        "/srv/a: ",
        "/srv/\u202ea",
    ],
)
def test_kubeconfig_entries_kubectl_reads_differently_are_refused(repo: Path, value: str) -> None:
    problem = only_problem(repo, {"KUBECONFIG": value})
    assert (problem.file, problem.key) == ("environment", "KUBECONFIG")


@pytest.mark.parametrize("value", ["/srv/a", "/srv/a:/srv/b", ":", "/srv/a::/srv/b", ""])
def test_ordinary_kubeconfig_lists_pass(repo: Path, value: str) -> None:
    load_site("lab", repo, {**ENV, "KUBECONFIG": value})


def test_kubectl_does_not_expand_a_tilde_in_kubeconfig(tmp_path: Path) -> None:
    # Why the refusal: the file under $HOME is not what kubectl reads.
    home = tmp_path / "home"
    home.mkdir()
    config = kubeconfig.merge(
        None, kubeconfig.rename(_single(), "here/k3s", "https://10.0.0.1:6443")
    )
    (home / "x").write_text(kubeconfig.dump(config))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("kubectl")), "config", "get-contexts", "-o", "name"],
        env={"HOME": str(home), "KUBECONFIG": "~/x", "PATH": os.environ["PATH"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert "here/k3s" not in result.stdout
    result = subprocess.run(
        [str(Path(sys.executable).with_name("kubectl")), "config", "get-contexts", "-o", "name"],
        env={"HOME": str(home), "KUBECONFIG": str(home / "x"), "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.split() == ["here/k3s"]


def _single() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        """
apiVersion: v1
clusters: [{name: default, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: default, user: {token: x}}]
contexts: [{name: default, context: {cluster: default, user: default}}]
"""
    )
    return loaded


# --------------------------------------------------------------------------- ARGOCD_SERVER

BAD_SERVERS = ["gitops.lab.example#x", "gitops.lab.example?x=1", "h/p", "::1", "h:0", "h:", "a b"]


@pytest.mark.parametrize("server", BAD_SERVERS)
def test_argocd_server_override_is_checked_like_the_profile(repo: Path, server: str) -> None:
    problem = only_problem(repo, {"ARGOCD_SERVER": server})
    assert (problem.file, problem.key) == ("environment", "ARGOCD_SERVER")
    with pytest.raises(LoginArgsError, match=r"^ARGOCD_SERVER: give HOST or HOST:PORT"):
        login_settings("gitops.lab.example", "", False, {"ARGOCD_SERVER": server}, "p")


@pytest.mark.parametrize("server", ["gitops.lab.example:8443", "[::1]:8080", "10.0.0.5"])
def test_ordinary_argocd_server_overrides_pass(repo: Path, server: str) -> None:
    load_site("lab", repo, {**ENV, "ARGOCD_SERVER": server})
    assert login_settings("x", "", False, {"ARGOCD_SERVER": server}, "p").server == server
