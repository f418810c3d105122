"""tirosh.site: valid sites, and each site file broken one mistake at a time (missing, malformed,
unknown keys, wrong types)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.site.helpers import (
    ARGOCD,
    BASE,
    ENV,
    HOME,
    INVENTORY,
    K3S,
    PROFILE,
    REPO,
    append,
    edit,
    only_problem,
    problems,
    rel,
    site_file,
)
from tirosh.site import (
    Problem,
    SiteError,
    load_site,
)

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
    assert argocd.version == "v3.5.8"
    assert argocd.manifest_url == (
        "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.8/manifests/install.yaml"
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
    assert site.repo_root == REPO
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
    assert site.argocd.version == "v3.5.8"


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
        Problem(
            rel(PROFILE), "kubernetes", "unknown key (known keys: kube, argocd, k3s, rke2, proxmox)"
        ),
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


# --------------------------------------------------------------------------- strict YAML


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


@pytest.mark.parametrize(
    ("name", "text", "key"),
    [
        ("argocd/repositories.toml", '[[repositories]]\nname = "x"\n', "repositories[0].url"),
        (
            "argocd/secrets.toml",
            '[[secrets]]\nname = 1\nnamespace = "argocd"\nkeys = {a = "A"}\n',
            "secrets[0].name",
        ),
        ("argocd/clusters.toml", "clusters = 3\n", "clusters"),
    ],
)
def test_the_local_phase_files_are_validated_with_the_site(
    repo: Path, name: str, text: str, key: str
) -> None:
    # Validated before any connection, like the four files the remote phase reads.
    site_file(repo, name).write_text(text)
    found = problems(repo)
    assert [(p.file, p.key) for p in found] == [(rel(name), key)], "\n".join(map(str, found))
