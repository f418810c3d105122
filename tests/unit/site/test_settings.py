"""tirosh.site: the k3s and Argo CD settings, duplicate VMs, environment overrides and the CLI."""

from __future__ import annotations

import json
import os
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
    append,
    edit,
    only_problem,
    problems,
    rel,
    write_manifest,
)
from tirosh.site import (
    Problem,
    load_site,
    main,
    to_dict,
)

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


# --------------------------------------------------------------------------- declarations


def test_allowed_keys_and_defaults_come_from_the_declarations(repo: Path) -> None:
    from tirosh.site.model import ArgoCD, settings_of

    declared = settings_of(ArgoCD, own=True)
    append(repo, ARGOCD, "qqqq: 1\n")
    assert only_problem(repo).message == (
        f"unknown key (known keys: {', '.join(s.key for s in declared)})"
    )
    edit(repo, ARGOCD, "qqqq: 1\n", "")
    argocd = load_site("lab", repo, ENV).argocd
    # BASE leaves every optional key out, so each one is its declared default.
    for setting in declared:
        if setting.key not in BASE[ARGOCD] and setting.key != "argocd_manifest_url":
            assert getattr(argocd, setting.attribute) == setting.default, setting.key


# --------------------------------------------------------------------------- kubeconfig paths


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
