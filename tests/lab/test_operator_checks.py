"""`make k3s/status` on the lab: its exit code follows k3s's health."""

from __future__ import annotations

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
