"""Tests of tirosh.site: a valid site is built in tmp_path, then broken one mistake at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tirosh.site import (
    Problem,
    SiteError,
    is_dns_name,
    is_host,
    is_ip_address,
    load_site,
    main,
    to_dict,
)

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


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in BASE.items():
        path = tmp_path / "sites" / "lab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


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


def write_manifest(path: Path, text: str = "kind: ServiceAccount\nmetadata: {name: a}\n") -> None:
    # The loader reads a manifest file when there is no sha256 pin (issue 8).
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- valid sites


def test_valid_site_resolves_values_and_defaults(repo: Path) -> None:
    site = load_site("lab", repo, ENV)
    assert site.name == "lab"
    assert site.root == repo / "sites" / "lab"
    assert site.repo_root == repo
    assert site.kubeconfig == Path(HOME, ".kube/config")
    assert (site.argocd_context, site.rke2_context) == ("lab/k3s", "lab/rke2/gpu")
    assert list(site.vms) == ["argocd", "gpu"]
    assert site.target.alias == "argocd"
    assert site.target.workloads == ("k3s", "argocd")
    assert site.target.ssh_port is None
    gpu = site.vms["gpu"]
    assert site.rke2_vm == gpu
    assert gpu.ssh_port == 2222
    assert gpu.ssh_key == repo / "keys/lab_ed25519"
    assert site.k3s.version == "v1.34.3+k3s1"
    assert site.k3s.install_source == "release"
    assert site.k3s.release_url == "https://github.com/k3s-io/k3s/releases/download"
    assert site.k3s.airgap_dir is None
    assert site.k3s.api_server == "https://k3s.lab.example:6443"
    assert site.k3s.kubeconfig_path == Path(HOME, ".kube/lab.yml")
    # k3s_config is free-form: unknown flags are passed through (nested mappings are refused).
    assert site.k3s.config["some-future-flag"] == [1, "two"]
    assert site.k3s.config["write-kubeconfig-mode"] == "0600"
    assert site.rke2.api_server == "https://10.0.0.20:6443"
    assert site.rke2.kubeconfig_path == Path(HOME, ".kube/lab-rke2.yml")
    argocd = site.argocd
    assert argocd.target_name == "argocd"
    assert argocd.server == "gitops.lab.example"
    assert argocd.auto_port_forward is False
    assert argocd.namespace == "argocd"
    assert argocd.version == "v3.5.1"
    assert argocd.manifest_url == (
        "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/install.yaml"
    )
    assert argocd.manifest_file is None
    assert argocd.manifest_sha256 is None
    assert argocd.rollout_timeout == 180
    assert argocd.allow_downgrade is False
    assert argocd.ingress_tls_secret_name == "argocd-server-tls"
    assert argocd.ingress_service_port == 80
    assert site.warnings == ()


def test_shipped_tirosh_home_site_is_valid() -> None:
    site = load_site("tirosh-home", environ=ENV)
    assert site.repo_root == Path(__file__).resolve().parents[2]
    assert site.kubeconfig == Path(HOME, ".kube/config")
    assert site.argocd_context == "tirosh-home/k3s"
    assert site.rke2_context == "tirosh-home/rke2/gpu"
    assert list(site.vms) == ["argocd"]
    target = site.target
    assert (target.ansible_host, target.ansible_user, target.ansible_become_user) == (
        "172.31.0.10",
        "tirosh",
        "root",
    )
    assert target.workloads == ("k3s", "argocd")
    assert site.rke2_vm is None
    assert site.rke2.api_server is None
    assert site.k3s.api_server == "https://k3s.internal.tirosh.ai:6443"
    assert site.k3s.kubeconfig_path == Path(HOME, ".kube/tirosh-home.yml")
    assert site.k3s.config["write-kubeconfig-mode"] == "0644"
    assert site.k3s.config["tls-san"] == [
        "internal.tirosh.ai",
        "k3s.internal.tirosh.ai",
        "172.31.0.10",
    ]
    assert site.k3s.config["node-label"] == ["role=gitops", "site=tirosh-home"]
    assert site.argocd.cluster_context == "tirosh-home/rke2/gpu"
    assert site.argocd.cluster_name == "tirosh-home-rke2-gpu"
    assert site.argocd.login_args == "--grpc-web --prompts-enabled"
    assert site.argocd.ingress_class_name == "traefik"
    assert site.argocd.ingress_host == "gitops.internal.tirosh.ai"
    assert site.argocd.server_insecure is True
    assert site.argocd.ingress_tls_enabled is False
    assert site.argocd.version == "v3.5.1"


# --------------------------------------------------------------------------- problem format


def test_problem_str_format() -> None:
    problem = Problem(
        "sites/lab/k3s/vars.yml",
        "k3s_config.write-kubeconfig-mode",
        'must be a quoted octal string such as "0644"',
    )
    assert str(problem) == (
        "sites/lab/k3s/vars.yml: k3s_config.write-kubeconfig-mode: "
        'must be a quoted octal string such as "0644"'
    )


def test_site_error_lists_one_problem_per_line() -> None:
    error = SiteError([Problem("a", "-", "one"), Problem("b", "x.y", "two")])
    assert str(error) == "a: -: one\nb: x.y: two"
    assert len(error.problems) == 2


def test_every_problem_in_every_file_is_collected(repo: Path) -> None:
    edit(repo, PROFILE, "auto_port_forward = false", 'auto_port_forward = "no"')
    edit(repo, INVENTORY, "ssh_port = 2222", 'ssh_port = "2222"')
    edit(repo, K3S, '"v1.34.3+k3s1"', '"1.34"')
    edit(repo, ARGOCD, "argocd_ingress_service_port: 80", "argocd_ingress_service_port: http")
    found = problems(repo)
    assert [(p.file, p.key) for p in found] == [
        (rel(PROFILE), "argocd.auto_port_forward"),
        (rel(INVENTORY), "vms.gpu.ssh_port"),
        (rel(K3S), "k3s_version"),
        (rel(ARGOCD), "argocd_ingress_service_port"),
    ]


# --------------------------------------------------------------------------- missing things


def test_unknown_site_names_the_missing_directory(repo: Path) -> None:
    with pytest.raises(SiteError) as info:
        load_site("nope", repo, ENV)
    (problem,) = info.value.problems
    assert problem.file == "sites/nope"
    assert problem.key == "-"
    assert str(repo / "sites" / "nope") in problem.message
    assert "known sites: lab" in problem.message


def test_site_name_with_path_separator_is_rejected(repo: Path) -> None:
    with pytest.raises(SiteError) as info:
        load_site("../lab", repo, ENV)
    assert "site name" in info.value.problems[0].message


@pytest.mark.parametrize("name", [PROFILE, INVENTORY, K3S, ARGOCD])
def test_missing_file(repo: Path, name: str) -> None:
    site_file(repo, name).unlink()
    found = problems(repo)
    assert Problem(rel(name), "-", "required file is missing") in found
    # A missing file must not be mistaken for a file whose keys are all wrong.
    assert all(p.file == rel(name) for p in found)


@pytest.mark.parametrize(
    ("name", "line", "key"),
    [
        (PROFILE, 'kubeconfig = "~/.kube/config"\n', "kube.kubeconfig"),
        (PROFILE, 'rke2_gpu = "lab/rke2/gpu"\n', "kube.contexts.rke2_gpu"),
        (PROFILE, 'cluster_name = "lab-rke2-gpu"\n', "argocd.cluster_name"),
        (INVENTORY, 'ansible_user = "ops"\n', "vms.argocd.ansible_user"),
        (INVENTORY, 'proxmox_vm_name = "gpu"\n', "vms.gpu.proxmox_vm_name"),
        (K3S, 'k3s_version: "v1.34.3+k3s1"\n', "k3s_version"),
        (ARGOCD, "argocd_ingress_host: gitops.lab.example\n", "argocd_ingress_host"),
        (ARGOCD, "argocd_server_insecure: true\n", "argocd_server_insecure"),
    ],
)
def test_missing_required_key(repo: Path, name: str, line: str, key: str) -> None:
    edit(repo, name, line, "")
    assert only_problem(repo) == Problem(rel(name), key, "required key is missing")


def test_missing_required_table(repo: Path) -> None:
    kube = BASE[PROFILE][: BASE[PROFILE].index("[argocd]")]
    edit(repo, PROFILE, kube, "")
    assert only_problem(repo) == Problem(rel(PROFILE), "kube", "required key is missing")


def test_misspelt_table_defined_through_a_subtable(repo: Path) -> None:
    # [kube.contexts] still defines kube, so only kube.kubeconfig is missing.
    edit(repo, PROFILE, "[kube]\n", "[kubernetes]\n")
    assert problems(repo) == [
        Problem(rel(PROFILE), "kubernetes", "unknown key (known keys: kube, argocd, k3s, rke2)"),
        Problem(rel(PROFILE), "kube.kubeconfig", "required key is missing"),
    ]


def test_empty_vars_file_reports_each_required_key(repo: Path) -> None:
    site_file(repo, ARGOCD).write_text("# nothing yet\n")
    found = problems(repo)
    assert {p.key for p in found} == {
        "argocd_ingress_enabled",
        "argocd_ingress_class_name",
        "argocd_ingress_host",
        "argocd_ingress_service_port",
        "argocd_server_insecure",
        "argocd_ingress_tls_enabled",
    }


def test_inventory_without_vms(repo: Path) -> None:
    site_file(repo, INVENTORY).write_text("[vms]\n")
    found = problems(repo)
    assert Problem(rel(INVENTORY), "vms", "must define at least one VM") in found
    assert any(p.key == "argocd.target_name" for p in found)


# --------------------------------------------------------------------------- malformed files


def test_malformed_toml_reports_line_and_column(repo: Path) -> None:
    edit(repo, PROFILE, 'server = "gitops.lab.example"', 'server = "gitops.lab.example')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(PROFILE), "-")
    assert problem.message.startswith("invalid TOML: ")
    assert "(at line 10, column 29)" in problem.message


def test_malformed_yaml_reports_line_and_column(repo: Path) -> None:
    edit(repo, K3S, "    - servicelb\n", "    - servicelb\n   bad: [\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(K3S), "-")
    assert problem.message.startswith("invalid YAML at line 11, column 4: ")
    assert "\n" not in problem.message


def test_yaml_that_is_not_a_mapping(repo: Path) -> None:
    site_file(repo, ARGOCD).write_text("- argocd_ingress_enabled\n")
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(ARGOCD), "-")
    assert "must be a mapping" in problem.message


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("name", "old", "new", "key"),
    [
        (PROFILE, "[kube]\n", "[extra]\nx = 1\n\n[kube]\n", "extra"),
        (PROFILE, "[kube]\n", '[kube]\ncontext = "x"\n', "kube.context"),
        (
            PROFILE,
            'rke2_gpu = "lab/rke2/gpu"',
            'rke2_gpu = "lab/rke2/gpu"\nrke2 = "x"',
            "kube.contexts.rke2",
        ),
        (PROFILE, "[argocd]\n", '[argocd]\ntarget_nme = "x"\n', "argocd.target_nme"),
        (PROFILE, "[k3s]\n", '[k3s]\napi = "x"\n', "k3s.api"),
        (INVENTORY, "ssh_port = 2222", "ssh_port = 2222\nssh_prot = 22", "vms.gpu.ssh_prot"),
        (INVENTORY, "[vms.argocd]", "[hosts]\nx = 1\n\n[vms.argocd]", "hosts"),
        (K3S, "k3s_install_source:", "k3s_verison: x\nk3s_install_source:", "k3s_verison"),
        (
            ARGOCD,
            "argocd_server_insecure:",
            "argocd_ingres_host: x\nargocd_server_insecure:",
            "argocd_ingres_host",
        ),
    ],
)
def test_unknown_keys(repo: Path, name: str, old: str, new: str, key: str) -> None:
    edit(repo, name, old, new)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), key)
    assert problem.message.startswith("unknown key")


def test_unknown_key_suggests_the_close_name(repo: Path) -> None:
    edit(repo, K3S, "k3s_install_source:", "k3s_instal_source: airgap\nk3s_install_source:")
    assert 'did you mean "k3s_install_source"?' in only_problem(repo).message


def test_keys_inside_k3s_config_are_free_form(repo: Path) -> None:
    append(repo, K3S, "  cluster-cidr: 10.42.0.0/16\n  kube-apiserver-arg: [a=b]\n")
    config = load_site("lab", repo, ENV).k3s.config
    assert config["cluster-cidr"] == "10.42.0.0/16"
    assert config["kube-apiserver-arg"] == ["a=b"]


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("name", "old", "new", "key", "message"),
    [
        (INVENTORY, "ssh_port = 2222", 'ssh_port = "22"', "vms.gpu.ssh_port", "must be an integer"),
        (INVENTORY, "ssh_port = 2222", "ssh_port = true", "vms.gpu.ssh_port", "boolean true"),
        (INVENTORY, "ssh_port = 2222", "ssh_port = 70000", "vms.gpu.ssh_port", "1 to 65535"),
        (INVENTORY, "ssh_port = 2222", "ssh_port = 0", "vms.gpu.ssh_port", "1 to 65535"),
        (
            PROFILE,
            "auto_port_forward = false",
            'auto_port_forward = "no"',
            "argocd.auto_port_forward",
            'must be true or false, got string "no"',
        ),
        (
            INVENTORY,
            'workloads = ["rke2"]',
            'workloads = "rke2"',
            "vms.gpu.workloads",
            "must be a list of strings",
        ),
        (
            INVENTORY,
            'workloads = ["rke2"]',
            "workloads = [1]",
            "vms.gpu.workloads[0]",
            "integer 1",
        ),
        (
            INVENTORY,
            'workloads = ["rke2"]',
            'workloads = ["k8s"]',
            "vms.gpu.workloads[0]",
            "must be one of k3s, argocd, rke2",
        ),
        (
            INVENTORY,
            'workloads = ["rke2"]',
            'workloads = ["rke2", "rke2"]',
            "vms.gpu.workloads[1]",
            "listed twice",
        ),
        (INVENTORY, 'ssh_key = "keys/lab_ed25519"', "ssh_key = 1", "vms.gpu.ssh_key", "string"),
        (PROFILE, 'server = "gitops.lab.example"', "server = 443", "argocd.server", "string"),
        (
            ARGOCD,
            "argocd_ingress_service_port: 80",
            'argocd_ingress_service_port: "80"',
            "argocd_ingress_service_port",
            "must be an integer",
        ),
        (
            ARGOCD,
            "argocd_server_insecure: true",
            'argocd_server_insecure: "yes"',
            "argocd_server_insecure",
            "must be true or false",
        ),
        (
            ARGOCD,
            "argocd_server_insecure: true",
            "argocd_server_insecure: true\nargocd_rollout_timeout: 0",
            "argocd_rollout_timeout",
            "at least 1",
        ),
        (
            ARGOCD,
            "argocd_server_insecure: true",
            "argocd_server_insecure: true\nargocd_allow_downgrade: maybe",
            "argocd_allow_downgrade",
            "must be true or false",
        ),
        (
            ARGOCD,
            "argocd_server_insecure: true",
            "argocd_server_insecure: true\nargocd_namespace: Argo_CD",
            "argocd_namespace",
            "Kubernetes name",
        ),
    ],
)
def test_wrong_types(repo: Path, name: str, old: str, new: str, key: str, message: str) -> None:
    edit(repo, name, old, new)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), key)
    assert message in problem.message


def test_empty_string_is_rejected(repo: Path) -> None:
    edit(repo, PROFILE, 'argocd = "lab/k3s"', 'argocd = " "')
    found = problems(repo)
    assert Problem(rel(PROFILE), "kube.contexts.argocd", "must not be empty") in found


def test_k3s_config_must_be_a_mapping(repo: Path) -> None:
    site_file(repo, K3S).write_text('k3s_version: "v1.34.3+k3s1"\nk3s_config: [tls-san]\n')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(K3S), "k3s_config")
    assert "must be a table/mapping, got a list" in problem.message


def test_argocd_server_may_carry_a_port(repo: Path) -> None:
    edit(repo, PROFILE, 'server = "gitops.lab.example"', 'server = "[fd00::1]:8443"')
    assert load_site("lab", repo, ENV).argocd.server == "[fd00::1]:8443"
    edit(repo, PROFILE, 'server = "[fd00::1]:8443"', 'server = "gitops.lab.example:99999"')
    assert "invalid port" in only_problem(repo).message


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
    edit(repo, name, old, new)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), key)
    assert message in problem.message


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
    assert "kube.contexts.argocd ('lab/k3s')" in problem.message


def test_cluster_context_may_be_the_argocd_context(repo: Path) -> None:
    edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', 'cluster_context = "lab/k3s"')
    assert load_site("lab", repo, ENV).argocd.cluster_context == "lab/k3s"


# --------------------------------------------------------------------------- k3s vars


@pytest.mark.parametrize(
    "version", ["1.34.3+k3s1", "v1.34.3", "v1.34+k3s1", "latest", "v1.34.3+rke2r1"]
)
def test_bad_k3s_version(repo: Path, version: str) -> None:
    edit(repo, K3S, "v1.34.3+k3s1", version)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(K3S), "k3s_version")
    assert "v1.34.3+k3s1" in problem.message


def test_k3s_version_must_be_a_string(repo: Path) -> None:
    edit(repo, K3S, '"v1.34.3+k3s1"', "1.34")
    assert "got number 1.34" in only_problem(repo).message


def test_release_candidate_k3s_version(repo: Path) -> None:
    edit(repo, K3S, "v1.34.3+k3s1", "v1.35.0-rc1+k3s1")
    assert load_site("lab", repo, ENV).k3s.version == "v1.35.0-rc1+k3s1"


def test_airgap_without_dir(repo: Path) -> None:
    edit(repo, K3S, "k3s_install_source: release", "k3s_install_source: airgap")
    assert only_problem(repo) == Problem(
        rel(K3S), "k3s_airgap_dir", "required when k3s_install_source is airgap"
    )


def test_airgap_dir_is_relative_to_repo_root(repo: Path) -> None:
    edit(
        repo,
        K3S,
        "k3s_install_source: release",
        "k3s_install_source: airgap\nk3s_airgap_dir: airgap/k3s",
    )
    site = load_site("lab", repo, ENV)
    assert site.k3s.install_source == "airgap"
    assert site.k3s.airgap_dir == repo / "airgap" / "k3s"


def test_unknown_install_source(repo: Path) -> None:
    edit(repo, K3S, "k3s_install_source: release", "k3s_install_source: tarball")
    assert only_problem(repo).key == "k3s_install_source"


def test_release_url_must_be_http(repo: Path) -> None:
    append(repo, K3S, "k3s_release_url: ftp://mirror/k3s\n")
    assert only_problem(repo).key == "k3s_release_url"


# --------------------------------------------------------------------------- argocd vars


@pytest.mark.parametrize("digest", ["A" * 64, "a" * 63, "g" * 64, "sha256:" + "a" * 64])
def test_bad_manifest_sha256(repo: Path, digest: str) -> None:
    append(repo, ARGOCD, f'argocd_manifest_sha256: "{digest}"\n')
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(ARGOCD), "argocd_manifest_sha256")
    assert "64 lowercase hex" in problem.message


def test_good_manifest_sha256(repo: Path) -> None:
    digest = "0123456789abcdef" * 4
    append(repo, ARGOCD, f"argocd_manifest_sha256: {digest}\n")
    assert load_site("lab", repo, ENV).argocd.manifest_sha256 == digest


def test_stable_version_is_allowed_with_a_warning(repo: Path) -> None:
    append(repo, ARGOCD, "argocd_version: stable\n")
    site = load_site("lab", repo, ENV)
    assert site.argocd.version == "stable"
    assert site.warnings == ("argocd_version: stable is a mutable pin",)
    assert "/argo-cd/stable/manifests/" in site.argocd.manifest_url


@pytest.mark.parametrize("version", ["3.5.1", "v3.5", "latest"])
def test_bad_argocd_version(repo: Path, version: str) -> None:
    append(repo, ARGOCD, f'argocd_version: "{version}"\n')
    assert only_problem(repo).key == "argocd_version"


def test_manifest_url_and_file(repo: Path) -> None:
    append(
        repo,
        ARGOCD,
        "argocd_version: v3.4.2\n"
        "argocd_manifest_url: https://mirror.lab.example/argo-cd/{version}/install.yaml\n"
        "argocd_namespace: argocd\n"
        "argocd_rollout_timeout: 600\n"
        "argocd_allow_downgrade: true\n"
        "argocd_ingress_tls_secret_name: gitops-tls\n",
    )
    argocd = load_site("lab", repo, ENV).argocd
    assert argocd.manifest_url == "https://mirror.lab.example/argo-cd/v3.4.2/install.yaml"
    assert (argocd.namespace, argocd.rollout_timeout) == ("argocd", 600)
    assert argocd.allow_downgrade is True
    assert argocd.ingress_tls_secret_name == "gitops-tls"
    append(repo, ARGOCD, "argocd_manifest_file: vendor/argocd/install.yaml\n")
    write_manifest(repo / "vendor/argocd/install.yaml")
    site = load_site("lab", repo, ENV)
    assert site.argocd.manifest_file == repo / "vendor/argocd/install.yaml"
    assert any("argocd_manifest_url is ignored" in w for w in site.warnings)


@pytest.mark.parametrize("host", ["10.0.0.10", "bad_host.example", "gitops..example"])
def test_ingress_host_must_be_a_dns_name(repo: Path, host: str) -> None:
    edit(repo, ARGOCD, "gitops.lab.example", host)
    assert only_problem(repo).key == "argocd_ingress_host"


# --------------------------------------------------------------------------- duplicate VMs


@pytest.mark.parametrize(
    ("argocd_host", "gpu_host", "gpu_port"),
    [
        ("10.0.0.10", "10.0.0.10", "ssh_port = 22"),  # unset port means 22
        ("fd00::10", "fd00:0:0::10", "ssh_port = 22"),  # same address, other spelling
        ("k3s.lab.example", "K3S.lab.example", "ssh_port = 22"),
    ],
)
def test_two_vms_with_same_host_and_port(
    repo: Path, argocd_host: str, gpu_host: str, gpu_port: str
) -> None:
    edit(repo, INVENTORY, '"10.0.0.10"', f'"{argocd_host}"')
    edit(repo, INVENTORY, '"10.0.0.20"', f'"{gpu_host}"')
    edit(repo, INVENTORY, "ssh_port = 2222", gpu_port)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(INVENTORY), "vms.gpu.ansible_host")
    assert "as vms.argocd" in problem.message


def test_same_host_on_other_port_is_fine(repo: Path) -> None:
    edit(repo, INVENTORY, '"10.0.0.20"', '"10.0.0.10"')
    assert load_site("lab", repo, ENV).vms["gpu"].ansible_host == "10.0.0.10"


# --------------------------------------------------------------------------- environment


def test_environment_overrides(repo: Path) -> None:
    environ = {
        "KUBECONFIG": os.pathsep.join(["/srv/kube/first.yml", "/srv/kube/second.yml"]),
        "KUBECTX": "ops/k3s",
        "K3S_KUBECONFIG_PATH": "~/k3s/lab.yml",
    }
    edit(repo, PROFILE, 'cluster_context = "lab/rke2/gpu"', 'cluster_context = "ops/k3s"')
    site = load_site("lab", repo, {**ENV, **environ})
    assert site.kubeconfig == Path("/srv/kube/first.yml")
    assert site.argocd_context == "ops/k3s"
    assert site.k3s.kubeconfig_path == Path(HOME, "k3s/lab.yml")


def test_empty_environment_values_are_ignored(repo: Path) -> None:
    environ = {"KUBECONFIG": "", "KUBECTX": "", "K3S_TARGET_NAME": "", "K3S_KUBECONFIG_PATH": ""}
    site = load_site("lab", repo, {**ENV, **environ})
    assert site.kubeconfig == Path(HOME, ".kube/config")
    assert site.argocd_context == "lab/k3s"
    assert site.target.alias == "argocd"


def test_k3s_kubeconfig_path_from_profile(repo: Path) -> None:
    edit(repo, PROFILE, "[k3s]\n", '[k3s]\nkubeconfig_path = "/etc/kube/lab.yml"\n')
    assert load_site("lab", repo, ENV).k3s.kubeconfig_path == Path("/etc/kube/lab.yml")


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBECTX", "K3S_TARGET_NAME", "ARGOCD_TARGET_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("K3S_KUBECONFIG_PATH", raising=False)
    monkeypatch.setenv("HOME", HOME)


@pytest.mark.usefixtures("clean_env")
def test_main_validate_ok(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo-root", str(repo), "validate", "lab"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "site lab: ok (2 vms)\n"
    assert captured.err == ""


@pytest.mark.usefixtures("clean_env")
def test_main_validate_prints_problems(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edit(repo, K3S, '"0600"', "0644")
    edit(repo, INVENTORY, "ssh_port = 2222", 'ssh_port = "22"')
    assert main(["--repo-root", str(repo), "validate", "lab"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        'sites/lab/inventory.toml: vms.gpu.ssh_port: must be an integer, got string "22"',
        "sites/lab/k3s/vars.yml: k3s_config.write-kubeconfig-mode: "
        'must be a quoted octal string such as "0644"',
    ]


@pytest.mark.usefixtures("clean_env")
def test_main_unknown_site(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--repo-root", str(repo), "validate", "nope"]) == 1
    assert "sites/nope: -: site directory not found" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_env")
def test_main_render(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append(repo, ARGOCD, "argocd_version: stable\n")
    assert main(["--repo-root", str(repo), "render", "lab"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["vms"]["gpu"] == {
        "host": "10.0.0.20",
        "user": "ops",
        "become_user": "root",
        "port": 2222,
        "proxmox_vm_name": "gpu",
        "workloads": ["rke2"],
    }
    assert data["contexts"] == {"argocd": "lab/k3s", "rke2_gpu": "lab/rke2/gpu"}
    assert data["k3s"]["version"] == "v1.34.3+k3s1"
    assert data["k3s"]["kubeconfig_path"] == f"{HOME}/.kube/lab.yml"
    assert data["argocd"]["cluster_name"] == "lab-rke2-gpu"
    assert data["warnings"] == ["argocd_version: stable is a mutable pin"]
    assert "warning: argocd_version: stable is a mutable pin" in captured.err


def test_to_dict_is_json_serialisable(repo: Path) -> None:
    append(repo, ARGOCD, "argocd_manifest_file: vendor/install.yaml\n")
    write_manifest(repo / "vendor/install.yaml")
    data = to_dict(load_site("lab", repo, ENV))
    assert json.loads(json.dumps(data)) == data
    assert data["argocd"]["manifest_file"] == str(repo / "vendor/install.yaml")


# --- additions: secrets, edited copies of a site, the Make helpers ---------------------------


@pytest.mark.parametrize("flag", ["token", "agent-token"])
def test_cluster_tokens_in_k3s_config_are_refused(repo: Path, flag: str) -> None:
    append(repo, K3S, f"  {flag}: s3cr3t\n")
    (problem,) = problems(repo)
    assert (problem.file, problem.key) == ("sites/lab/k3s/vars.yml", f"k3s_config.{flag}")
    assert "secrets do not belong in site files" in problem.message
    assert "s3cr3t" not in str(problem)


def test_sites_dir_override_reads_an_edited_copy(repo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere"
    (copy / "lab").mkdir(parents=True)
    for name, text in BASE.items():
        (copy / "lab" / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / "lab" / name).write_text(text.replace("10.0.0.20", "10.0.0.21"))
    site = load_site("lab", repo, {**ENV, "TIROSH_SITES_DIR": str(copy)})
    assert site.vms["gpu"].ansible_host == "10.0.0.21"
    assert site.root == copy / "lab"
    # Relative paths in the copy still resolve against the repository.
    assert site.vms["gpu"].ssh_key == repo / "keys/lab_ed25519"


def test_export_prints_the_site_kubeconfig(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", HOME)  # main() reads the process environment
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert main(["--repo-root", str(repo), "export", "lab"]) == 0
    # The merge target first (kubectl writes there), then the site's own files.
    files = f"{HOME}/.kube/config:{HOME}/.kube/lab.yml:{HOME}/.kube/lab-rke2.yml"
    assert capsys.readouterr().out == f"export KUBECONFIG={files}\n"


def test_the_site_still_validates_after_eval_of_its_export(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # eval "$(make -s k3s/kubeconfig/export)" then any make target: KUBECONFIG is a list whose
    # first file is the merge target, so the loader's distinct-files check still passes, and a
    # second export gives the same list.
    monkeypatch.setenv("HOME", HOME)
    monkeypatch.setenv("KUBECONFIG", f"{HOME}/.kube/work.yml")
    assert main(["--repo-root", str(repo), "export", "lab"]) == 0
    exported = capsys.readouterr().out.removeprefix("export KUBECONFIG=").strip()
    assert exported.startswith(f"{HOME}/.kube/work.yml:")
    monkeypatch.setenv("KUBECONFIG", exported)
    assert main(["--repo-root", str(repo), "validate", "lab"]) == 0
    assert main(["--repo-root", str(repo), "export", "lab"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"export KUBECONFIG={exported}"


def test_require_rke2_fails_plainly_without_an_rke2_vm(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo-root", str(repo), "require-rke2", "lab"]) == 0
    edit(repo, INVENTORY, 'workloads = ["rke2"]', 'workloads = ["argocd"]')
    assert main(["--repo-root", str(repo), "require-rke2", "lab"]) == 1
    assert "no rke2 kubeconfig to merge" in capsys.readouterr().err


def test_shipped_lab_site_validates() -> None:
    site = load_site("lab", environ=ENV)
    assert site.target.ansible_host == "198.51.100.10"
    assert site.rke2_vm is not None and site.rke2_vm.alias == "rke2-gpu"
    assert site.k3s.install_source == "airgap"


def test_argocd_namespace_other_than_argocd_is_refused(repo: Path) -> None:
    append(repo, ARGOCD, "argocd_namespace: gitops\n")
    (problem,) = problems(repo)
    assert (problem.key, problem.message) == (
        "argocd_namespace",
        "must be argocd: the official manifest binds its roles there",
    )


def test_get_prints_one_resolved_value(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", HOME)
    assert main(["--repo-root", str(repo), "get", "lab", "argocd.rollout_timeout"]) == 0
    assert main(["--repo-root", str(repo), "get", "lab", "argocd_context"]) == 0
    assert capsys.readouterr().out == "180\nlab/k3s\n"
    assert main(["--repo-root", str(repo), "get", "lab", "argocd.nope"]) == 2


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"KUBECONFIG": f"{HOME}/.kube/lab.yml"}, "k3s.kubeconfig_path"),
        ({"K3S_KUBECONFIG_PATH": f"{HOME}/.kube/config"}, "k3s.kubeconfig_path"),
        ({"K3S_KUBECONFIG_PATH": f"{HOME}/.kube/lab-rke2.yml"}, "rke2.kubeconfig_path"),
    ],
)
def test_each_kubeconfig_needs_its_own_file(repo: Path, environ: dict[str, str], key: str) -> None:
    (problem,) = problems(repo, environ)
    assert (problem.file, problem.key) == ("sites/lab/profile.toml", key)
    assert "is the same file as" in problem.message


def test_become_user_must_be_root(repo: Path) -> None:
    edit(repo, INVENTORY, 'ansible_become_user = "root"', 'ansible_become_user = "deploy"')
    (problem,) = problems(repo)
    assert (problem.key, problem.message) == (
        "vms.argocd.ansible_become_user",
        "must be root (the deploy installs system files), got 'deploy'",
    )


def test_one_rke2_vm_per_site(repo: Path) -> None:
    edit(repo, INVENTORY, 'workloads = ["k3s", "argocd"]', 'workloads = ["k3s", "argocd", "rke2"]')
    (problem,) = problems(repo)
    assert problem.key == "vms.gpu.workloads"
    assert "a site has one rke2 VM" in problem.message


def test_datastore_credentials_are_refused(repo: Path) -> None:
    append(repo, K3S, "  datastore-endpoint: postgres://k3s:hunter2@db:5432/k3s\n")
    (problem,) = problems(repo)
    assert problem.key == "k3s_config.datastore-endpoint"
    assert "hunter2" not in str(problem)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("argocd_ingress_host: gitops.lab.example", "argocd_ingress_host: '*.lab.example'"),
        ("argocd_ingress_class_name: traefik", "argocd_ingress_class_name: Traefik_2"),
    ],
)
def test_ingress_host_and_class_must_be_plain_names(repo: Path, line: str, key: str) -> None:
    edit(repo, ARGOCD, line, key)
    (problem,) = problems(repo)
    assert problem.key == key.split(":")[0]


def test_a_kubeconfig_mode_readable_by_others_is_allowed_with_a_warning(repo: Path) -> None:
    edit(repo, K3S, '"0600"', '"0644"')
    (warning,) = load_site("lab", repo, ENV).warnings
    assert warning.startswith("k3s_config.write-kubeconfig-mode 0644 lets other users on the VM")


def test_k3s_binary_digest_pin(repo: Path) -> None:
    append(repo, K3S, f"k3s_sha256: {'a' * 64}\n")
    assert load_site("lab", repo, ENV).k3s.sha256 == "a" * 64
    edit(repo, K3S, f"k3s_sha256: {'a' * 64}", "k3s_sha256: abc")
    (problem,) = problems(repo)
    assert problem.key == "k3s_sha256"


# --------------------------------------------------------------------------- issue 8: kubeconfig


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


@pytest.mark.parametrize(
    ("setting", "environ", "warning"),
    [
        ('kubeconfig_path = "kube/lab.yml"', {}, "is a relative path"),
        ('kubeconfig_path = "/etc/lab.yml"', {}, "is outside the home directory"),
        ("", {"K3S_KUBECONFIG_PATH": "lab.yml"}, "K3S_KUBECONFIG_PATH 'lab.yml' is a relative"),
        ("", {"KUBECONFIG": "/srv/shared/config"}, "KUBECONFIG /srv/shared/config is outside"),
    ],
)
def test_kubeconfig_paths_outside_home_or_relative_warn(
    repo: Path, setting: str, environ: dict[str, str], warning: str
) -> None:
    edit(repo, PROFILE, "[k3s]\n", f"[k3s]\n{setting}\n")
    site = load_site("lab", repo, {**ENV, **environ})
    assert any(warning in w for w in site.warnings), site.warnings


def test_kubeconfig_paths_under_home_do_not_warn(repo: Path) -> None:
    assert load_site("lab", repo, ENV).warnings == ()


# --------------------------------------------------------------------------- issue 8: k3s_config


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


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (ARGOCD, "argocd_ingress_enabled: false\n", "duplicate key 'argocd_ingress_enabled'"),
        (K3S, "extra: &a [1]\n", "anchors (&name) are not allowed"),
    ],
)
def test_site_yaml_is_read_strictly(repo: Path, name: str, text: str, message: str) -> None:
    append(repo, name, text)
    problem = only_problem(repo)
    assert (problem.file, problem.key) == (rel(name), "-")
    assert message in problem.message
