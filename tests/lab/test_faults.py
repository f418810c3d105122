"""The link to the management VM drops in the middle of a converge.

The run must fail with a clear message within the dead-link bound (TIROSH_SSH_DEAD_AFTER), and
the next run, with the link back, must converge with no manual step and nothing lost on the
operator side. The link is really dropped: the VM's veth on the lab bridge goes down.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import testinfra

from lab import config, hosts
from tests.lab.operator import PYINFRA, Operator, changed_operations

pytestmark = pytest.mark.lab
ARGOCD = config.host("argocd")
# systemd-nspawn --network-bridge names the machine's end of the host's veth "vb-<machine>".
VETH = f"vb-{ARGOCD.name}"
DEAD_AFTER = 10


@pytest.fixture(scope="module")
def vm(lab: object) -> testinfra.host.Host:
    return testinfra.get_host(f"ssh://{ARGOCD.name}?ssh_config={config.SSH_CONFIG}", sudo=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True)


@contextmanager
def slow_link(rate: str = "4mbit") -> Iterator[None]:
    """Throttle the VM's link so that an upload lasts long enough to be cut in the middle."""
    _ip("link", "show", VETH)
    subprocess.run(["tc", "qdisc", "add", "dev", VETH, "root", "tbf", "rate", rate,
                    "burst", "32kbit", "latency", "400ms"], check=True)  # fmt: skip
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", VETH, "root"], check=False)


@contextmanager
def link_restored() -> Iterator[None]:
    try:
        yield
    finally:
        _ip("link", "set", VETH, "up")
        hosts.wait_for_ssh(ARGOCD)


def wait_for_process(pattern: str, timeout: float = 120) -> str:
    """The command line of the first process inside the VM whose command line has ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in hosts.members(ARGOCD.name):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if pattern.encode() in cmdline:
                return cmdline.decode(errors="replace")
        time.sleep(0.02)
    raise AssertionError(f"no process matching {pattern!r} started in {ARGOCD.name}")


def cut_during(operator: Operator, pattern: str) -> subprocess.CompletedProcess[str]:
    """Run the deploy, drop the VM's link once ``pattern`` runs there, and wait for the failure."""
    process = subprocess.Popen(
        [PYINFRA, "-y", "inventories/lab.py", "deploy.py"],
        cwd=config.REPO_ROOT,
        env={**operator.environ(), "TIROSH_SSH_DEAD_AFTER": str(DEAD_AFTER)},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    with link_restored():
        try:
            wait_for_process(pattern)
        except AssertionError:
            process.kill()
            raise
        _ip("link", "set", VETH, "down")
        # A bound on the wait, not a timing assertion: without the dead-link bound the run hangs
        # for as long as TCP retransmits (about 15 minutes).
        stdout, stderr = process.communicate(timeout=DEAD_AFTER * 6)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def kube_state(operator: Operator) -> dict[str, bytes]:
    kube = operator.home / ".kube"
    return {p.name: p.read_bytes() for p in kube.iterdir() if p.is_file()}


def assert_converges(operator: Operator) -> None:
    operator.deploy()
    assert changed_operations(operator.plan()) == []


def test_link_lost_while_the_k3s_binary_uploads(
    operator: Operator, vm: testinfra.host.Host
) -> None:
    operator.deploy()  # converged to start from
    before = kube_state(operator)
    # A binary that differs from the pinned one makes the deploy upload and install it again.
    vm.check_output(
        "cp /usr/local/bin/k3s /usr/local/bin/.k3s.edit && printf x >> /usr/local/bin/.k3s.edit"
        " && mv /usr/local/bin/.k3s.edit /usr/local/bin/k3s"
    )
    with slow_link():
        failed = cut_during(operator, "sftp-server")
    assert failed.returncode != 0
    assert f"[{ARGOCD.name}]" in failed.stderr
    assert kube_state(operator) == before  # nothing on the operator side was touched
    assert_converges(operator)
    wanted = (config.K3S_ARTIFACTS / "sha256sum-amd64.txt").read_text().split()[0]
    assert vm.file("/usr/local/bin/k3s").sha256sum == wanted
    assert vm.service("k3s").is_running


def test_link_lost_while_argocd_is_applied(operator: Operator, vm: testinfra.host.Host) -> None:
    operator.deploy()
    before = kube_state(operator)
    # A deleted object is drift: the deploy applies the manifest again.
    vm.check_output("k3s kubectl -n argocd delete configmap argocd-cmd-params-cm")
    failed = cut_during(operator, "--server-side")
    assert failed.returncode != 0
    assert f"[{ARGOCD.name}]" in failed.stderr
    assert kube_state(operator) == before
    assert_converges(operator)
    assert vm.run("k3s kubectl -n argocd get configmap argocd-cmd-params-cm").rc == 0
