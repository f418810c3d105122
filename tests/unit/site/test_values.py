"""tirosh.site: addresses, the target VM, k3s_config, API servers and contexts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.site.helpers import (
    ARGOCD,
    ENV,
    HOME,
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
from tirosh.site import (
    Problem,
    SiteError,
    is_dns_name,
    is_host,
    is_ip_address,
    load_site,
)

# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("name", "old", "new", "key", "message"),
    [
        (K3S, "    - 10.0.0.10\n", "    - bad_name\n", "k3s_config.tls-san[1]", "bad_name"),
        (K3S, "    - 10.0.0.10\n", "    - -k3s.lab\n", "k3s_config.tls-san[1]", "DNS name"),
        (K3S, "node-ip: 10.0.0.10", "node-ip: 10.0.0.300", "k3s_config.node-ip[0]", "an IP"),
        (
            K3S,
            "node-ip: 10.0.0.10",
            "node-ip: 10.0.0.10\n  advertise-address: k3s.lab.example",
            "k3s_config.advertise-address",
            "must be an IP address",
        ),
        (
            K3S,
            "node-ip: 10.0.0.10",
            "node-ip: 10.0.0.10\n  node-external-ip: [192.0.2.1, nope]",
            "k3s_config.node-external-ip[1]",
            "must be an IP address",
        ),
        (
            INVENTORY,
            '"10.0.0.20"',
            '"-gpu-.lab.example"',
            "vms.gpu.ansible_host",
            "must be an IP address or DNS name",
        ),
        (
            INVENTORY,
            '"10.0.0.20"',
            '"gpu lab"',
            "vms.gpu.ansible_host",
            "must be an IP address or DNS name",
        ),
    ],
)
def test_invalid_addresses(
    repo: Path, name: str, old: str, new: str, key: str, message: str
) -> None:
    assert message in refused(repo, name, old, new, key).message


def test_comma_separated_tls_san_is_split_and_checked(repo: Path) -> None:
    san = "  tls-san:\n    - k3s.lab.example\n    - 10.0.0.10\n"
    edit(repo, K3S, san, "  tls-san: k3s.lab.example,bad..\n")
    assert only_problem(repo).key == "k3s_config.tls-san[1]"


def test_valid_address_forms_are_accepted(repo: Path) -> None:
    edit(repo, INVENTORY, '"10.0.0.20"', '"fd00::20"')
    edit(repo, K3S, "node-ip: 10.0.0.10", "node-ip: 10.0.0.10,fd00::10")
    edit(repo, K3S, "    - 10.0.0.10\n", "    - 10.0.0.10\n    - localhost\n    - fd00::10\n")
    site = load_site("lab", repo, ENV)
    assert site.vms["gpu"].ansible_host == "fd00::20"
    # IPv6 hosts need brackets in URLs.
    assert site.rke2.api_server == "https://[fd00::20]:6443"


@pytest.mark.parametrize(
    "name",
    ["localhost", "k3s", "a.b.c", "k3s.internal.tirosh.ai", "x" * 63 + ".example", "a-b.c-d"],
)
def test_dns_names_accepted(name: str) -> None:
    assert is_dns_name(name)
    assert is_host(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "-a.example",
        "a-.example",
        "a..b",
        ".a",
        "a.",
        "a_b.example",
        "x" * 64 + ".example",
        ".".join(["a" * 63] * 4) + "x",  # 256 characters
        "10.0.0.300",
        "1234",
        "caf\u00e9.example",
        "a b",
        "host\n",
    ],
)
def test_dns_names_rejected(name: str) -> None:
    assert not is_dns_name(name)


def test_ip_addresses() -> None:
    assert is_ip_address("172.31.0.10")
    assert is_ip_address("fd00::1")
    assert not is_ip_address("172.31.0.256")
    assert not is_ip_address("k3s.lab")
    assert is_host("::1")


_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@given(st.lists(_LABEL, min_size=1, max_size=4), st.sampled_from(["io", "example", "ai"]))
def test_property_rfc1123_names_are_accepted(labels: list[str], tld: str) -> None:
    assert is_dns_name(".".join([*labels, tld]))


@given(st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["-.", ".-", "_", " ", "..", "*"]))
def test_property_names_with_bad_characters_are_rejected(labels: list[str], bad: str) -> None:
    assert not is_dns_name(".".join(labels) + bad + "x.example")


@given(st.lists(_LABEL, min_size=1, max_size=12))
def test_property_length_limit(labels: list[str]) -> None:
    name = ".".join([*labels, "example"])
    assert is_dns_name(name) == (len(name) <= 253)


# --------------------------------------------------------------------------- target VM


def test_target_name_missing_from_inventory(repo: Path) -> None:
    edit(repo, PROFILE, 'target_name = "argocd"', 'target_name = "k3s"')
    assert only_problem(repo) == Problem(
        rel(PROFILE),
        "argocd.target_name",
        f"'k3s' is not a VM in {rel(INVENTORY)} (VMs: argocd, gpu)",
    )


def test_target_override_naming_unknown_alias(repo: Path) -> None:
    problem = only_problem(repo, {"K3S_TARGET_NAME": "nope"})
    assert (problem.file, problem.key) == ("environment", "K3S_TARGET_NAME")
    assert "'nope' is not a VM" in problem.message


def test_argocd_target_override_is_validated_too(repo: Path) -> None:
    problem = only_problem(repo, {"ARGOCD_TARGET_NAME": "nope"})
    assert (problem.file, problem.key) == ("environment", "ARGOCD_TARGET_NAME")


def _add_second_k3s_vm(repo: Path) -> None:
    append(
        repo,
        INVENTORY,
        '\n[vms.argocd2]\nansible_host = "10.0.0.11"\nansible_user = "ops"\n'
        'ansible_become_user = "root"\nproxmox_vm_name = "argocd2"\nworkloads = ["k3s", "argocd"]\n',
    )


def test_k3s_target_override_wins_over_argocd_one(repo: Path) -> None:
    _add_second_k3s_vm(repo)
    site = load_site("lab", repo, {"K3S_TARGET_NAME": "argocd2", "ARGOCD_TARGET_NAME": "nope"})
    assert site.target.alias == "argocd2"
    assert site.argocd.target_name == "argocd2"
    site = load_site("lab", repo, {"ARGOCD_TARGET_NAME": "argocd2"})
    assert site.target.alias == "argocd2"


def test_target_without_k3s_workload(repo: Path) -> None:
    edit(repo, INVENTORY, 'workloads = ["k3s", "argocd"]', 'workloads = ["argocd"]')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(INVENTORY), "vms.argocd.workloads")
    assert 'must include "k3s"' in problem.message


def test_target_override_without_k3s_workload(repo: Path) -> None:
    problem = only_problem(repo, {"K3S_TARGET_NAME": "gpu"})
    assert problem.key == "vms.gpu.workloads"
    assert "K3S_TARGET_NAME" in problem.message


# --------------------------------------------------------------------------- k3s_config checks


def test_unquoted_write_kubeconfig_mode_is_read_as_int_and_rejected(repo: Path) -> None:
    edit(repo, K3S, 'write-kubeconfig-mode: "0600"', "write-kubeconfig-mode: 0644")
    assert str(only_problem(repo)) == (
        "sites/lab/k3s/vars.yml: k3s_config.write-kubeconfig-mode: "
        'must be a quoted octal string such as "0644"'
    )


@pytest.mark.parametrize("mode", ['"0999"', '"64"', '"rw-r--r--"', '"00644"', "true"])
def test_bad_write_kubeconfig_mode(repo: Path, mode: str) -> None:
    edit(repo, K3S, '"0600"', mode)
    assert only_problem(repo).key == "k3s_config.write-kubeconfig-mode"


@pytest.mark.parametrize("mode", ['"644"', '"0600"', "'0640'"])
def test_good_write_kubeconfig_mode(repo: Path, mode: str) -> None:
    edit(repo, K3S, '"0600"', mode)
    assert load_site("lab", repo, ENV).k3s.config["write-kubeconfig-mode"] == mode.strip("\"'")


@pytest.mark.parametrize(
    "disable", ["traefik", "[servicelb, traefik]", "servicelb,traefik", '"traefik"']
)
def test_traefik_ingress_while_k3s_disables_traefik(repo: Path, disable: str) -> None:
    edit(repo, K3S, "  disable:\n    - servicelb\n", f"  disable: {disable}\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(ARGOCD), "argocd_ingress_class_name")
    assert "k3s_config.disable" in problem.message


def test_disabled_traefik_is_fine_with_another_ingress_class(repo: Path) -> None:
    edit(repo, K3S, "  disable:\n    - servicelb\n", "  disable: [traefik]\n")
    edit(repo, ARGOCD, "argocd_ingress_class_name: traefik", "argocd_ingress_class_name: nginx")
    assert load_site("lab", repo, ENV).argocd.ingress_class_name == "nginx"


def test_disabled_traefik_is_fine_without_ingress(repo: Path) -> None:
    edit(repo, K3S, "  disable:\n    - servicelb\n", "  disable: [traefik]\n")
    edit(repo, ARGOCD, "argocd_ingress_enabled: true", "argocd_ingress_enabled: false")
    assert load_site("lab", repo, ENV).argocd.ingress_enabled is False


def test_disable_of_wrong_type(repo: Path) -> None:
    edit(repo, K3S, "  disable:\n    - servicelb\n", "  disable: {traefik: true}\n")
    problem = only_problem(repo)
    assert problem.key == "k3s_config.disable"
    assert "not a mapping" in problem.message


# --------------------------------------------------------------------------- api servers


def test_api_server_host_not_in_certificate(repo: Path) -> None:
    edit(repo, PROFILE, "https://k3s.lab.example:6443", "https://other.lab.example:6443")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), "k3s.api_server")
    assert "'other.lab.example' is not in the k3s certificate" in problem.message
    assert "k3s_config.tls-san" in problem.message


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.10:6443",  # the target's ansible_host (and node-ip)
        "https://K3S.LAB.EXAMPLE:6443",  # host names compare case-insensitively
        "https://k3s.lab.example",
    ],
)
def test_api_server_hosts_that_k3s_certifies(repo: Path, url: str) -> None:
    edit(repo, PROFILE, "https://k3s.lab.example:6443", url)
    assert load_site("lab", repo, ENV).k3s.api_server == url


def test_api_server_on_advertise_address(repo: Path) -> None:
    edit(repo, PROFILE, "https://k3s.lab.example:6443", "https://[fd00::5]:6443")
    with pytest.raises(SiteError):
        load_site("lab", repo, ENV)
    append(repo, K3S, "  advertise-address: fd00:0::5\n")
    assert load_site("lab", repo, ENV).k3s.api_server == "https://[fd00::5]:6443"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://k3s.lab.example:6443", "must be an https:// URL"),
        ("k3s.lab.example:6443", "must be an https:// URL"),
        ("https://:6443", "no valid host"),
        ("https://k3s.lab.example:port", "not a valid URL"),
    ],
)
def test_api_server_must_be_https_url(repo: Path, url: str, message: str) -> None:
    edit(repo, PROFILE, "https://k3s.lab.example:6443", url)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), "k3s.api_server")
    assert message in problem.message


def test_api_server_defaults_to_target_host(repo: Path) -> None:
    edit(repo, PROFILE, 'api_server = "https://k3s.lab.example:6443"\n', "")
    assert load_site("lab", repo, ENV).k3s.api_server == "https://10.0.0.10:6443"


def test_rke2_table(repo: Path) -> None:
    append(repo, PROFILE, '\n[rke2]\napi_server = "http://gpu.lab.example:6443"\n')
    assert only_problem(repo).key == "rke2.api_server"
    edit(repo, PROFILE, "http://gpu", "https://gpu")
    append(repo, PROFILE, 'kubeconfig_path = "~/.kube/gpu.yml"\n')
    site = load_site("lab", repo, ENV)
    assert site.rke2.api_server == "https://gpu.lab.example:6443"
    assert site.rke2.kubeconfig_path == Path(HOME, ".kube/gpu.yml")


# --------------------------------------------------------------------------- contexts


def test_same_context_for_argocd_and_rke2(repo: Path) -> None:
    edit(repo, PROFILE, 'rke2_gpu = "lab/rke2/gpu"', 'rke2_gpu = "lab/k3s"')
    edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', 'cluster_context = "lab/k3s"')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), "kube.contexts.argocd")
    assert "use distinct names" in problem.message


def test_kubectx_override_equal_to_rke2_context(repo: Path) -> None:
    problem = only_problem(repo, {"KUBECTX": "lab/rke2/gpu"})
    assert (problem.file, problem.key) == ("environment", "KUBECTX")


def test_cluster_context_must_be_one_of_the_contexts(repo: Path) -> None:
    edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', 'cluster_context = "lab/gpu"')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), "argocd.cluster_context")
    assert "kube.contexts.rke2_gpu ('lab/rke2/gpu')" in problem.message


def test_cluster_context_must_not_be_the_management_context(repo: Path) -> None:
    # The runbook's warning: the management cluster registered as its own workload cluster.
    problem = refused(
        repo,
        PROFILE,
        'cluster_context = "lab/rke2/gpu"',
        'cluster_context = "lab/k3s"',
        "argocd.cluster_context",
    )
    assert "is the management context (kube.contexts.argocd)" in problem.message


@pytest.mark.parametrize(
    ("environ", "file", "key", "source"),
    [
        # KUBECTX makes the workload context the management one.
        ({"KUBECTX": "lab/gpu-mgmt"}, "profile.toml", "argocd.cluster_context", "KUBECTX"),
        # CLUSTER_KUBECTX names the management context as the workload cluster's.
        ({"CLUSTER_KUBECTX": "lab/k3s"}, "environment", "CLUSTER_KUBECTX", "kube.contexts.argocd"),
    ],
)
def test_an_override_equal_to_the_management_context_is_refused(
    repo: Path, environ: dict[str, str], file: str, key: str, source: str
) -> None:
    if "KUBECTX" in environ:
        edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', 'cluster_context = "lab/gpu-mgmt"')
        edit(repo, PROFILE, 'rke2_gpu = "lab/rke2/gpu"', 'rke2_gpu = "lab/gpu-mgmt2"')
    found = problems(repo, environ)
    mine = [p for p in found if p.key == key]
    assert len(mine) == 1, found
    assert mine[0].file == (rel(PROFILE) if file == "profile.toml" else file)
    assert f"is the management context ({source})" in mine[0].message


# --------------------------------------------------------------------------- context names


@pytest.mark.parametrize(
    ("key", "old", "value", "message"),
    [
        ("kube.contexts.argocd", 'argocd = "lab/k3s"', r"lab/k3s\n", "U+000A"),
        ("kube.contexts.argocd", 'argocd = "lab/k3s"', r"lab\u0000k3s", "NUL byte"),
        ("kube.contexts.rke2_gpu", 'rke2_gpu = "lab/rke2/gpu"', " lab/rke2/gpu", "whitespace"),
        ("argocd.cluster_context", 'cluster_context = "lab/rke2/gpu"', "x" * 300, "longer"),
    ],
)
def test_context_names_are_checked(
    repo: Path, key: str, old: str, value: str, message: str
) -> None:
    edit(repo, PROFILE, old, f'{old.split(" = ")[0]} = "{value}"')
    found = [p for p in problems(repo) if p.key == key]
    assert len(found) == 1 and message in found[0].message
    assert found[0].file == rel(PROFILE)


def test_a_context_name_from_kubectx_is_checked(repo: Path) -> None:
    problem = only_problem(repo, {"KUBECTX": "lab/k3s\r"})
    assert (problem.file, problem.key) == ("environment", "KUBECTX")


# --------------------------------------------------------------------------- k3s_config as k3s reads it


def test_tls_san_written_with_append_counts_for_the_certificate(repo: Path) -> None:
    edit(repo, K3S, "  tls-san:\n", "  tls-san+:\n")
    assert load_site("lab", repo, ENV).k3s.config["tls-san+"] == ["k3s.lab.example", "10.0.0.10"]
    edit(repo, PROFILE, "https://k3s.lab.example:6443", "https://other.lab.example:6443")
    assert "not in the k3s certificate" in only_problem(repo).message


def test_node_ip_under_its_alias_is_a_certified_address(repo: Path) -> None:
    edit(repo, K3S, "  node-ip: 10.0.0.10\n", "  i: 192.0.2.7\n")
    edit(repo, PROFILE, "https://k3s.lab.example:6443", "https://192.0.2.7:6443")
    assert load_site("lab", repo, ENV).k3s.api_server == "https://192.0.2.7:6443"


@pytest.mark.parametrize("key", ["t", "token+", "--token", "agent-token+"])
def test_token_spellings_are_refused_by_the_loader(repo: Path, key: str) -> None:
    append(repo, K3S, f"  {key}: K10fake::server:s3cr3t\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(K3S), f"k3s_config.{key}")
    assert "secrets do not belong" in problem.message and "s3cr3t" not in problem.message
