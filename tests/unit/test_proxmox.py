"""tirosh.proxmox: the VM plan, PVE's config values, the agent's address, the inventory edit.
Pure: a ``Cluster`` is what the API side would have read."""

from __future__ import annotations

import dataclasses
import urllib.parse
from pathlib import Path

import pytest

from tirosh.proxmox import addresses, config
from tirosh.proxmox.inventory import InventoryEditError, set_hosts
from tirosh.proxmox.plan import Cluster, Guest, VmPlan, plan
from tirosh.vms import VmSpec

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRlc3Q op@laptop"
SPEC = VmSpec(
    where="vms[0]",
    name="argocd",
    vm_id=210,
    node="pve1",
    template_vm_id=9000,
    tags=("gitops", "k3s"),
    cpu_cores=4,
    memory_mb=8192,
    datastore_id="local-lvm",
    disk_interface="scsi0",
    size_gb=40,
    bridge="vmbr0",
    username="tirosh",
    ssh_public_key_file=Path("/home/op/.ssh/id.pub"),
    ipv4="dhcp",
    gateway=None,
)
TEMPLATE = {
    "scsi0": "local-lvm:base-9000-disk-0,size=10G",
    "ide2": "local-lvm:vm-9000-cloudinit,media=cdrom",
    "net0": "virtio=BC:24:11:00:90:00,bridge=vmbr0",
    "cores": 1,
    "memory": "2048",
}
CONVERGED = {
    "scsi0": "local-lvm:vm-210-disk-0,size=40G",
    "ide2": "local-lvm:vm-210-cloudinit,media=cdrom",
    "net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0",
    "cores": 4,
    "memory": "8192",
    "tags": "gitops;k3s",
    "agent": "1",
    "ciuser": "tirosh",
    "sshkeys": urllib.parse.quote(KEY + "\n", safe=""),
    "ipconfig0": "ip=dhcp",
}


def cluster(*guests: Guest, quorate: bool = True, **configs: dict) -> Cluster:
    base = (Guest(9000, "debian-13-cloud", "pve1", "stopped", template=True),)
    return Cluster(
        quorate=quorate,
        nodes={"pve1": True, "pve2": False},
        guests=base + guests,
        storages={"pve1": frozenset({"local-lvm"})},
        configs={9000: TEMPLATE, **{int(k[2:]): v for k, v in configs.items()}},
    )


def running(**extra: object) -> Guest:
    return Guest(210, "argocd", "pve1", "running", **extra)  # type: ignore[arg-type]


def one(result_cluster: Cluster, spec: VmSpec = SPEC, restart: bool = False) -> VmPlan:
    return plan([spec], {spec.name: KEY}, result_cluster, restart).vms[0]


def test_a_missing_vm_is_a_full_clone_with_every_setting_then_a_start() -> None:
    vm = one(cluster())
    assert vm.action == "create" and not vm.refusals
    assert vm.config["cores"] == "4" and vm.config["ciuser"] == "tirosh"
    assert urllib.parse.unquote(vm.config["sshkeys"]).strip() == KEY
    assert vm.grow_to == 40 * config.GIB and vm.start
    assert "cores: 1 → 4" in [str(c) for c in vm.changes]


def test_a_converged_vm_is_unchanged() -> None:
    vm = one(cluster(running(), vm210=CONVERGED))
    assert vm.action == "unchanged" and vm.changes == [] and vm.config == {}


def test_fields_change_one_by_one_and_tags_apply_hot() -> None:
    current = {**CONVERGED, "tags": "gitops", "scsi0": "local-lvm:vm-210-disk-0,size=20G"}
    vm = one(cluster(running(), vm210=current))
    assert [str(c) for c in vm.changes] == [
        "tags: gitops → gitops;k3s",
        "disk scsi0: 20 GiB → 40 GiB",
    ]
    assert vm.config == {"tags": "gitops;k3s"} and not vm.refusals and not vm.restart


def test_cores_of_a_running_vm_need_the_operators_consent() -> None:
    current = {**CONVERGED, "cores": 2}
    vm = one(cluster(running(), vm210=current))
    assert (
        vm.refusals and "cores: the running VM applies this only after a restart" in vm.refusals[0]
    )
    allowed = one(cluster(running(), vm210=current), restart=True)
    assert allowed.restart and not allowed.refusals and allowed.config == {"cores": "4"}
    # A stopped VM takes the change at once, and is started.
    stopped = one(cluster(Guest(210, "argocd", "pve1", "stopped"), vm210=current))
    assert not stopped.refusals and stopped.start and not stopped.restart


def test_a_change_already_pending_needs_only_the_restart() -> None:
    state = dataclasses.replace(
        cluster(running(), vm210={**CONVERGED, "memory": "4096"}), pending={210: {"memory": "8192"}}
    )
    vm = one(state, restart=True)
    assert vm.config == {} and vm.restart


@pytest.mark.parametrize(
    ("guests", "configs", "words"),
    [
        ((Guest(210, "other", "pve1", "running"),), {}, "vm_id 210 is PVE's VM 'other'"),
        (
            (Guest(305, "argocd", "pve1", "running"),),
            {},
            "PVE already has a VM named 'argocd' with id 305",
        ),
        ((running(lock="backup"),), {"vm210": CONVERGED}, "VM 210 is locked (backup)"),
        ((Guest(210, "argocd", "pve2", "unknown"),), {}, "VM 210 is on node pve2, declared pve1"),
        (
            (running(),),
            {"vm210": {**CONVERGED, "scsi0": "local-lvm:vm-210-disk-0,size=50G"}},
            "disk scsi0 is 50 GiB, declared size_gb = 40: PVE cannot shrink a disk",
        ),
        (
            (running(),),
            {"vm210": {**CONVERGED, "scsi0": "ceph:vm-210-disk-0,size=40G"}},
            "disk scsi0 is on 'ceph', declared 'local-lvm'",
        ),
        ((), {"vm9000": {**TEMPLATE, "ide2": "none,media=cdrom"}}, "has no cloud-init drive"),
        (
            (),
            {"vm9000": {**TEMPLATE, "scsi0": "local-lvm:base-9000-disk-0,size=64G"}},
            "the template's is 64 GiB, more than size_gb = 40",
        ),
    ],
)
def test_refusals(guests: tuple[Guest, ...], configs: dict, words: str) -> None:
    vm = one(cluster(*guests, **configs))
    assert any(words in reason for reason in vm.refusals), vm.refusals


def test_nodes_and_templates_that_are_not_there_are_refused() -> None:
    assert (
        "node 'pve9' does not exist (nodes: pve1, pve2)"
        in one(cluster(), dataclasses.replace(SPEC, node="pve9")).refusals
    )
    assert (
        "node 'pve2' is offline" in one(cluster(), dataclasses.replace(SPEC, node="pve2")).refusals
    )
    assert (
        "clone.vm_id 9001 does not exist"
        in one(cluster(), dataclasses.replace(SPEC, template_vm_id=9001)).refusals
    )
    stores = one(cluster(), dataclasses.replace(SPEC, datastore_id="fast")).refusals
    assert any("datastore 'fast' does not exist on node pve1" in r for r in stores)


def test_lost_quorum_refuses_a_plan_that_changes_something_only() -> None:
    assert plan([SPEC], {"argocd": KEY}, cluster(quorate=False)).refused
    converged = cluster(running(), quorate=False, vm210=CONVERGED)
    assert not plan([SPEC], {"argocd": KEY}, converged).refused


def test_plan_lines_name_each_vm_and_sum_up() -> None:
    lines = plan([SPEC], {"argocd": KEY}, cluster()).lines()
    assert lines[0] == "vm argocd (210 on pve1): create"
    assert lines[-1] == "plan: 1 to create, 0 to update, 0 unchanged"
    assert "  cloud-init key: - → ssh-ed25519 op@laptop" in lines


def test_config_values() -> None:
    assert config.parse_size("40G") == 40 * config.GIB
    assert config.parse_size("512M") == 512 * 1024**2
    assert config.parse_size("1.5T") == int(1.5 * 1024**4)
    assert config.parse_size("big") is None
    assert config.memory_mb({"memory": "current=4096,shares=10"}) == 4096
    assert config.memory_mb({}) == 512
    assert config.tags("b;A, c") == ("a", "b", "c")
    assert config.with_bridge("virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1", "vmbr1") == (
        "virtio=BC:24:11:00:00:01,bridge=vmbr1,firewall=1"
    )
    assert config.same_ipconfig("gw=10.0.0.1,ip=10.0.0.5/24", "ip=10.0.0.5/24,gw=10.0.0.1")


def test_the_address_is_the_nics_first_usable_ipv4() -> None:
    interfaces = [
        {
            "name": "lo",
            "hardware-address": "00:00:00:00:00:00",
            "ip-addresses": [{"ip-address": "127.0.0.1"}, {"ip-address": "::1"}],
        },
        {
            "name": "cni0",
            "hardware-address": "aa:aa:aa:aa:aa:aa",
            "ip-addresses": [{"ip-address": "10.42.0.1"}],
        },
        {
            "name": "eth0",
            "hardware-address": "bc:24:11:aa:bb:cc",
            "ip-addresses": [
                {"ip-address": "fe80::1"},
                {"ip-address": "2001:db8::5"},
                {"ip-address": "198.51.100.7"},
            ],
        },
    ]
    assert addresses.pick_address(interfaces, "BC:24:11:AA:BB:CC") == "198.51.100.7"
    assert addresses.pick_address(interfaces, None) == "10.42.0.1"
    assert addresses.pick_address(interfaces[:1], None) is None
    ipv6_only = [{"hardware-address": "x", "ip-addresses": [{"ip-address": "2001:db8::5"}]}]
    assert addresses.pick_address(ipv6_only) == "2001:db8::5"


def test_the_inventory_edit_keeps_everything_but_the_value() -> None:
    text = '# top\n[vms.argocd]  # the VM\nansible_host = "1.2.3.4" # old\nansible_user = "x"\n'
    assert set_hosts(text, {"argocd": "198.51.100.9"}) == text.replace("1.2.3.4", "198.51.100.9")
    assert set_hosts(text, {"argocd": "1.2.3.4"}) == text
    for bad, words in (
        ("not = [toml", "is not TOML"),
        ("a = 1\n", "has no [vms.<alias>]"),
        (text, "has no [vms.gpu]"),
    ):
        with pytest.raises(InventoryEditError, match=words.replace("[", r"\[")):
            set_hosts(bad, {"gpu": "1.1.1.1"} if bad == text else {"argocd": "1.1.1.1"})
