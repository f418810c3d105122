"""Operator checks on the lab: `make verify` (testinfra over SSH) and `make k3s/status`, whose
exit codes follow the VM's state."""

from __future__ import annotations

import sys
import time

import pytest
import testinfra

from lab import config
from tests.lab.operator import Operator

pytestmark = pytest.mark.lab
ARGOCD = config.host("argocd")


@pytest.fixture(scope="module")
def vm(lab: object) -> testinfra.host.Host:
    return testinfra.get_host(f"ssh://{ARGOCD.name}?ssh_config={config.SSH_CONFIG}", sudo=True)


def api_ready(vm: testinfra.host.Host, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while vm.run("k3s kubectl get --raw /readyz").rc != 0:
        assert time.monotonic() < deadline, "k3s API not ready again"
        time.sleep(1)


def make(operator: Operator, target: str) -> tuple[int, str]:
    result = operator.run("make", "-s", target, "SITE=lab", check=False)
    return result.returncode, result.stdout + result.stderr


def test_verify_passes_on_the_deployed_lab_and_names_a_drifted_file(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    operator.deploy()
    operator.run(sys.executable, "-m", "local", "argocd/status", "lab", "--wait", "300")
    code, output = make(operator, "verify")
    assert code == 0, output
    assert "5 passed" in output, output
    # Drift that an operator could cause: the k3s config readable by everyone.
    vm.check_output("chmod 0644 /etc/rancher/k3s/config.yaml")
    try:
        code, output = make(operator, "verify")
        assert code != 0, output
        assert "test_config_yaml_is_root_only" in output and "1 failed, 4 passed" in output, output
    finally:
        operator.deploy()  # the deploy puts the mode back
    assert vm.file("/etc/rancher/k3s/config.yaml").mode == 0o600
    code, output = make(operator, "verify")
    assert code == 0, output


def test_k3s_status_exits_non_zero_while_k3s_is_stopped(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    operator.deploy()
    vm.check_output("systemctl stop k3s")
    try:
        code, output = make(operator, "k3s/status")
        assert code != 0, output
    finally:
        vm.check_output("systemctl start k3s")
        api_ready(vm)
    code, output = make(operator, "k3s/status")
    assert code == 0, output
