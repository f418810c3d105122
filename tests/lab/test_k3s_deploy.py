"""The deploy against the lab's management VM: plan, converge, no-op re-run, state, contexts.

Tests in this module run in order against one lab: each step builds on the one before.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import testinfra
import yaml

from lab import config
from tests.lab.operator import PYINFRA, Operator, changed_operations

pytestmark = pytest.mark.lab
ARGOCD = config.host("argocd")
RKE2 = config.host("rke2-gpu")


@pytest.fixture(scope="module")
def vm(lab: object) -> testinfra.host.Host:
    return testinfra.get_host(f"ssh://{ARGOCD.name}?ssh_config={config.SSH_CONFIG}", sudo=True)


def test_dry_run_plans_changes_and_changes_nothing(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    before = (operator.home / ".kube" / "config").read_bytes()
    plan = operator.plan()
    assert "Install k3s v1.37.2+k3s1" in changed_operations(plan)
    assert not vm.file("/usr/local/bin/k3s").exists
    assert not vm.file("/etc/rancher/k3s").exists
    assert (operator.home / ".kube" / "config").read_bytes() == before
    assert not (operator.home / ".kube" / "lab.yml").exists()


def test_first_run_converges(operator: Operator, vm: testinfra.host.Host) -> None:
    result = operator.deploy()
    assert "Success" in result.stderr + result.stdout
    assert vm.service("k3s").is_running
    assert vm.service("k3s").is_enabled


def test_second_run_changes_nothing_and_restarts_nothing(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    pid = vm.check_output("systemctl show -p MainPID --value k3s")
    assert changed_operations(operator.plan()) == []
    result = operator.deploy()
    assert "No changes" in result.stderr + result.stdout
    assert vm.check_output("systemctl show -p MainPID --value k3s") == pid


def test_config_yaml_is_rendered_from_the_site_with_mode_0600(vm: testinfra.host.Host) -> None:
    config_file = vm.file("/etc/rancher/k3s/config.yaml")
    assert (config_file.user, config_file.group, config_file.mode) == ("root", "root", 0o600)
    rendered = yaml.safe_load(config_file.content_string)
    site_vars = yaml.safe_load((config.REPO_ROOT / "sites/lab/k3s/vars.yml").read_text())
    assert rendered == site_vars["k3s_config"]
    # Quoted in the file, so k3s reads the string "0644", not the YAML 1.1 octal integer 420.
    assert "write-kubeconfig-mode: '0644'" in config_file.content_string


def test_k3s_serves_the_api_on_6443_with_the_configured_kubeconfig_mode(
    vm: testinfra.host.Host,
) -> None:
    assert vm.socket("tcp://0.0.0.0:6443").is_listening
    assert vm.file("/etc/rancher/k3s/k3s.yaml").mode == 0o644
    assert vm.check_output("k3s --version").startswith("k3s version v1.37.2+k3s1")


def test_no_readable_copy_of_the_kubeconfig_is_left_in_temp_directories(
    vm: testinfra.host.Host,
) -> None:
    leftovers = vm.check_output(
        "find /tmp /var/tmp /home/tirosh -xdev -type f -newer /etc/rancher/k3s/config.yaml "
        "-exec grep -l client-key-data {} + 2>/dev/null || true"
    )
    assert leftovers == ""


def test_merged_kubeconfig_reaches_both_clusters_by_context_name(operator: Operator) -> None:
    merged = yaml.safe_load((operator.home / ".kube" / "config").read_text())
    names = {c["name"] for c in merged["contexts"]}
    assert {"work", "lab/k3s", "lab/rke2/gpu"} <= names
    assert merged["current-context"] == "work"
    assert (operator.home / ".kube" / "config").stat().st_mode & 0o777 == 0o600
    assert (operator.home / ".kube" / "config.bak").exists()
    for context in ("lab/k3s", "lab/rke2/gpu"):
        version = operator.kubectl("--context", context, "get", "--raw", "/version")
        assert '"gitVersion": "v1.37.2"' in version.stdout
    labels = operator.kubectl("--context", "lab/k3s", "get", "nodes", "-o", "yaml").stdout
    assert "site: lab" in labels


def test_site_kubeconfig_files_hold_one_context_each(operator: Operator) -> None:
    for name, context in (("lab.yml", "lab/k3s"), ("lab-rke2.yml", "lab/rke2/gpu")):
        path = operator.home / ".kube" / name
        assert path.stat().st_mode & 0o777 == 0o600
        data = yaml.safe_load(path.read_text())
        assert [c["name"] for c in data["contexts"]] == [context]
        assert [c["name"] for c in data["clusters"]] == [context]
        assert [u["name"] for u in data["users"]] == [context]


def test_a_config_change_restarts_k3s_exactly_once(
    operator: Operator, vm: testinfra.host.Host, tmp_path: Path
) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    vars_file = sites / "lab" / "k3s" / "vars.yml"
    site_vars = yaml.safe_load(vars_file.read_text())
    site_vars["k3s_config"]["node-label"].append("tier=test")
    vars_file.write_text(yaml.safe_dump(site_vars))
    changed = Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})

    starts = vm.check_output("journalctl -u k3s.service -o cat | grep -c '^Started' || true")
    assert changed_operations(changed.plan()) == [
        "Render /etc/rancher/k3s/config.yaml",
        "Restart k3s after a change",
    ]
    changed.deploy()
    after = vm.check_output("journalctl -u k3s.service -o cat | grep -c '^Started' || true")
    assert int(after) == int(starts) + 1
    assert "tier=test" in vm.file("/etc/rancher/k3s/config.yaml").content_string
    labels = operator.kubectl("--context", "lab/k3s", "get", "nodes", "-o", "yaml").stdout
    assert "tier: test" in labels
    assert changed_operations(changed.plan()) == []


def test_credentials_never_appear_in_output_at_any_verbosity(operator: Operator) -> None:
    merged = yaml.safe_load((operator.home / ".kube" / "config").read_text())
    user = next(u for u in merged["users"] if u["name"] == "lab/k3s")["user"]
    key = user["client-key-data"]
    # A changed site file forces a real pull and merge, with the diff printed, at -vvv.
    (operator.home / ".kube" / "lab.yml").unlink()
    for flags in (("--dry", "--diff", "-vvv"), ("-y", "--diff", "-vvv")):
        result = operator.run(PYINFRA, *flags, "inventories/lab.py", "deploy.py")
        output = result.stdout + result.stderr
        assert key not in output
        assert key[:40] not in output
        assert "client-key-data" not in output
        assert "PRIVATE KEY" not in output
    assert (operator.home / ".kube" / "lab.yml").exists()


@pytest.fixture
def release_mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A k3s release mirror on the lab bridge, laid out like the release downloads."""
    releases = tmp_path / "releases"
    release = releases / "v1.37.2+k3s1"
    release.mkdir(parents=True)
    for name in ("k3s", "sha256sum-amd64.txt"):
        shutil.copy(config.K3S_ARTIFACTS / name, release / name)
    handler = partial(SimpleHTTPRequestHandler, directory=str(releases))
    server = ThreadingHTTPServer((config.GATEWAY, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{config.GATEWAY}:{server.server_address[1]}", release
    finally:
        server.shutdown()
        server.server_close()


def test_release_download_is_verified_before_it_replaces_the_binary(
    operator: Operator, vm: testinfra.host.Host, tmp_path: Path, release_mirror: tuple[str, Path]
) -> None:
    url, release = release_mirror
    sites = tmp_path / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    vars_file = sites / "lab" / "k3s" / "vars.yml"
    site_vars = yaml.safe_load(vars_file.read_text())
    site_vars.update(k3s_install_source="release", k3s_release_url=url)
    del site_vars["k3s_airgap_dir"]
    vars_file.write_text(yaml.safe_dump(site_vars))
    from_release = Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites)})
    k3s_alone = (PYINFRA, "-y", "inventories/lab.py", "deploys/k3s.py")

    # Plain http without a pinned digest is refused before any connection (issue 8).
    unpinned = from_release.run(*k3s_alone, check=False)
    assert unpinned.returncode != 0
    assert "k3s_release_url" in unpinned.stdout + unpinned.stderr

    expected = vm.file("/usr/local/bin/k3s").sha256sum
    site_vars["k3s_sha256"] = expected
    vars_file.write_text(yaml.safe_dump(site_vars))
    # A tampered binary on the mirror: refused, and nothing replaces the installed binary.
    binary = release / "k3s"
    good = binary.read_bytes()
    binary.write_bytes(good + b"tampered")
    vm.run("mv /usr/local/bin/k3s /usr/local/bin/k3s.kept")
    try:
        refused = from_release.run(*k3s_alone, check=False)
        assert refused.returncode != 0
        assert "did not match" in refused.stdout + refused.stderr
        assert not vm.file("/usr/local/bin/k3s").exists

        # The real binary: downloaded, verified, installed, and k3s runs it.
        binary.write_bytes(good)
        assert "Install k3s v1.37.2+k3s1" in changed_operations(from_release.plan("deploys/k3s.py"))
        from_release.deploy(deploy_file="deploys/k3s.py")
        assert vm.file("/usr/local/bin/k3s").sha256sum == expected
        assert vm.service("k3s").is_running
        assert changed_operations(from_release.plan("deploys/k3s.py")) == []
    finally:
        # Whatever failed above, the VM keeps a k3s binary for the tests after this one.
        vm.run(
            "test -e /usr/local/bin/k3s || mv /usr/local/bin/k3s.kept /usr/local/bin/k3s;"
            " rm -f /usr/local/bin/k3s.kept"
        )


def test_make_targets_wrap_the_same_deploy(operator: Operator) -> None:
    status = operator.run("make", "-s", "k3s/status", "SITE=lab")
    # pyinfra prints what ran on the VM on stderr; kubectl from here prints on stdout.
    assert "[argocd]   active" in status.stderr
    assert "[argocd]   k3s version v1.37.2+k3s1" in status.stderr
    assert "[argocd]   ok" in status.stderr  # /readyz on the VM
    assert status.stdout == "ok\n"  # /readyz through the merged context, from here
    config = operator.run("make", "-s", "k3s/config", "SITE=lab")
    assert "[argocd]   tls-san:" in config.stderr

    kubeconfig = operator.home / ".kube" / "config"
    before = (kubeconfig.read_bytes(), kubeconfig.stat().st_mtime_ns)
    for target in ("k3s/kubeconfig/merge", "rke2/kubeconfig/merge", "k3s/kubeconfig"):
        result = operator.run("make", "-s", target, "SITE=lab")
        assert "No changes" in result.stdout + result.stderr
    assert (kubeconfig.read_bytes(), kubeconfig.stat().st_mtime_ns) == before

    export = operator.run("make", "-s", "k3s/kubeconfig/export", "SITE=lab").stdout
    # The merge target first (kubectl writes there), then the site's own files (issue 8).
    kube = operator.home / ".kube"
    assert export == f"export KUBECONFIG={kube}/config:{kube}/lab.yml:{kube}/lab-rke2.yml\n"


def test_a_change_left_by_an_interrupted_run_still_restarts_k3s(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    # As if a run wrote config.yaml and died before its restart: the file is newer than k3s.
    vm.run("sleep 1; touch /etc/rancher/k3s/config.yaml")
    pid = vm.check_output("systemctl show -p MainPID --value k3s")
    assert changed_operations(operator.plan("deploys/k3s.py")) == ["Restart k3s after a change"]
    operator.deploy(deploy_file="deploys/k3s.py")
    assert vm.check_output("systemctl show -p MainPID --value k3s") != pid
    assert changed_operations(operator.plan("deploys/k3s.py")) == []
