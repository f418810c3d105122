"""``python -m local proxmox/vms/...`` against a test double of the PVE API (fakepve, its own process).

No live Proxmox VE is used: every request goes to ``tests/proxmox/fakepve_process.py`` on
127.0.0.1 over TLS verified against its certificate. "Changing calls" are counted from the
fake's own request log (every request that is not a GET).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import ssl
import urllib.parse
from pathlib import Path

from local.commands import main
from tests.proxmox.conftest import PUBLIC_KEY, FakePve, ProxmoxSite, proxmox_table


def run(site: ProxmoxSite, *argv: str, **env: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([f"proxmox/vms/{argv[0]}", "lab", *argv[1:]], environ={**site.env, **env})
    return code, out.getvalue(), err.getvalue()


def last(err: str) -> str:
    """The last line on stderr (the lab site's own warning comes first)."""
    return err.strip().splitlines()[-1]


def applied(site: ProxmoxSite, pve: FakePve) -> int:
    code, out, err = run(site, "apply")
    assert code == 0, out + err
    return len(pve.requests())


def test_apply_creates_each_vm_as_a_full_clone_of_the_template(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    code, out, _ = run(proxmox_site, "plan")
    assert code == 0
    assert "vm lab-argocd (210 on pve1): create" in out
    assert "cores: 1 → 4" in out and "disk scsi0: 10 GiB → 40 GiB" in out
    assert "plan: 2 to create, 0 to update, 0 unchanged" in out
    assert pve.changing() == []

    code, out, err = run(proxmox_site, "apply")
    assert code == 0, out + err
    vm = pve.vm(210)
    config = vm["config"]
    assert vm["status"] == "running"
    assert config["name"] == "lab-argocd"
    assert (config["cores"], config["memory"], config["tags"]) == ("4", "8192", "gitops;k3s")
    # A full clone has a disk of its own, not one based on the template's.
    assert config["scsi0"].startswith("local-lvm:vm-210-disk-0,") and "size=40G" in config["scsi0"]
    assert "base-9000" not in config["scsi0"]
    assert config["ciuser"] == "tirosh" and config["ipconfig0"] == "ip=dhcp"
    assert urllib.parse.unquote(config["sshkeys"]).strip() == PUBLIC_KEY
    assert config["agent"] == "1" and "bridge=vmbr0" in config["net0"]
    assert pve.vm(211)["config"]["scsi0"].endswith("size=10G")  # 10 GiB: no resize needed
    calls = pve.changing()
    assert ("POST", "/api2/json/nodes/pve1/qemu/9000/clone") in calls
    assert ("PUT", "/api2/json/nodes/pve1/qemu/210/resize") in calls
    assert ("PUT", "/api2/json/nodes/pve1/qemu/211/resize") not in calls
    assert all(m != "DELETE" for m, _ in calls)
    # Every task was awaited by its UPID.
    assert sum("/tasks/UPID:" in p and p.endswith("/status") for _, p in pve.requests()) >= 5
    assert "vm lab-argocd: no address: QEMU guest agent is not running (PVE 500, waited 0 s)" in out


def test_a_second_apply_sends_no_changing_request(proxmox_site: ProxmoxSite, pve: FakePve) -> None:
    seen = applied(proxmox_site, pve)
    code, out, _ = run(proxmox_site, "apply")
    assert code == 0
    assert "plan: 0 to create, 0 to update, 2 unchanged" in out
    assert "nothing to change" in out
    assert pve.changing(since=seen) == []
    code, out, _ = run(proxmox_site, "plan")
    assert code == 0 and "vm lab-argocd (210 on pve1): unchanged" in out


def test_hot_changes_apply_to_the_running_vm_without_a_restart(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    seen = applied(proxmox_site, pve)
    proxmox_site.edit("vms.tfvars", '["gitops", "k3s"]', '["gitops", "k3s", "prod"]')
    proxmox_site.edit("vms.tfvars", "size_gb = 40", "size_gb = 50")
    code, out, err = run(proxmox_site, "apply")
    assert code == 0, out + err
    assert "tags: gitops;k3s → gitops;k3s;prod" in out
    assert "disk scsi0: 40 GiB → 50 GiB" in out
    vm = pve.vm(210)
    assert vm["config"]["tags"] == "gitops;k3s;prod" and "size=50G" in vm["config"]["scsi0"]
    assert [p for _, p in pve.changing(since=seen)] == [
        "/api2/json/nodes/pve1/qemu/210/config",
        "/api2/json/nodes/pve1/qemu/210/resize",
    ]


def test_a_change_that_needs_a_restart_is_refused_without_consent_then_applied(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    seen = applied(proxmox_site, pve)
    proxmox_site.edit("vms.tfvars", "cpu_cores = 4", "cpu_cores = 6")
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "cores: 4 → 6 (after a restart)" in out
    assert "refused: vm lab-argocd (210 on pve1): cores: the running VM applies this only" in out
    assert pve.changing(since=seen) == []

    code, out, err = run(proxmox_site, "apply", "--restart")
    assert code == 0, out + err
    vm = pve.vm(210)
    assert vm["config"]["cores"] == "6" and vm["pending"] == {} and vm["status"] == "running"
    assert [p.rsplit("/", 2)[-2:] for _, p in pve.changing(since=seen)] == [
        ["210", "config"],
        ["status", "shutdown"],
        ["status", "start"],
    ]
    assert run(proxmox_site, "plan")[0] == 0


def test_a_slow_shutdown_past_the_bound_is_reported_and_nothing_is_forced(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    seen = applied(proxmox_site, pve)
    proxmox_site.edit("vms.tfvars", "memory_mb = 8192", "memory_mb = 12288")
    pve.do("set", vmid=210, values={"shutdown_secs": 600})
    code, out, err = run(proxmox_site, "apply", "--restart", TIROSH_PROXMOX_SHUTDOWN_TIMEOUT="5")
    assert code == 1
    assert "proxmox: vm lab-argocd (210 on pve1): shutdown: task failed:" in err
    assert "VM quit/powerdown failed - got timeout" in err  # PVE's own words, from the task log
    vm = pve.vm(210)
    assert vm["status"] == "running" and vm["pending"] == {"memory": "12288"}
    paths = [p for _, p in pve.changing(since=seen)]
    assert not any(p.endswith(("/status/stop", "/status/start")) for p in paths)
    # The next plan still shows the change, waiting for the restart.
    code, out, _ = run(proxmox_site, "plan")
    assert code == 1 and "memory: 8192 MiB → 12288 MiB (after a restart)" in out


def test_a_disk_shrink_is_refused_before_anything_changes(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    seen = applied(proxmox_site, pve)
    proxmox_site.edit("vms.tfvars", "size_gb = 40", "size_gb = 30")
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "disk scsi0 is 40 GiB, declared size_gb = 30: PVE cannot shrink a disk" in out
    assert pve.changing(since=seen) == []
    assert "size=40G" in pve.vm(210)["config"]["scsi0"]


def test_a_template_larger_than_the_declared_disk_is_refused(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    proxmox_site.edit("vms.tfvars", "size_gb = 10", "size_gb = 8")
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "the template's is 10 GiB, more than size_gb = 8: PVE cannot shrink a disk" in out
    assert pve.changing() == []


def test_a_vm_id_that_pve_holds_under_another_name_is_refused(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    pve.do("add_vm", vmid=210, name="someone-else", status="running")
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "vm_id 210 is PVE's VM 'someone-else' on node pve1, not 'lab-argocd'" in out
    assert pve.changing() == []
    assert pve.vm(210)["config"]["name"] == "someone-else"


def test_a_node_that_does_not_exist_is_refused(proxmox_site: ProxmoxSite, pve: FakePve) -> None:
    proxmox_site.edit("vms.tfvars", "vm_id     = 211", 'vm_id     = 211\n    node_name = "pve9"')
    code, out, _ = run(proxmox_site, "plan")
    assert code == 1
    assert "refused: vm lab-rke2-gpu (211 on pve9): node 'pve9' does not exist (nodes: pve1)" in out


def test_a_vm_locked_by_a_backup_is_refused_and_pves_lock_message_is_reported(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    seen = applied(proxmox_site, pve)
    proxmox_site.edit("vms.tfvars", '["gitops", "k3s"]', '["gitops"]')
    pve.do("backup_lock", vmid=210)
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "VM 210 is locked (backup): PVE refuses changes while a backup holds it" in out
    assert pve.changing(since=seen) == []
    # A backup that starts between the plan's read and the write: PVE's own answer, one line.
    pve.do("unlock", vmid=210)
    pve.do("fail", method="PUT", suffix="/nodes/pve1/qemu/210/config", error="locked")
    code, out, err = run(proxmox_site, "apply")
    assert code == 1
    assert last(err) == "proxmox: PVE answered 500: VM is locked (backup)"
    assert "Traceback" not in err


def test_a_failed_task_is_reported_with_its_own_log(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    applied(proxmox_site, pve)
    pve.do(
        "set",
        vmid=211,
        values={"status": "stopped", "start_error": "start failed: QEMU exited with code 1"},
    )
    code, out, err = run(proxmox_site, "apply")
    assert code == 1
    assert "power: stopped → running" in out
    line = err.strip().splitlines()[-1]
    assert line.startswith("proxmox: vm lab-rke2-gpu (211 on pve1): start: task failed: ")
    assert "TASK ERROR: start failed: QEMU exited with code 1" in line
    assert "UPID:pve1:" in line


def test_lost_quorum_is_refused_and_pves_answer_reported(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    pve.do("fail", method="POST", suffix="/nodes/pve1/qemu/9000/clone", error="no_quorum")
    code, _, err = run(proxmox_site, "apply")
    assert code == 1
    assert last(err) == "proxmox: PVE answered 500: cluster not ready - no quorum?"
    assert [m for m, _ in pve.changing()] == ["POST"]  # the clone PVE refused, nothing after

    pve.do("lose_quorum")
    seen = len(pve.requests())
    code, out, _ = run(proxmox_site, "apply")
    assert code == 1
    assert "refused: the cluster has no quorum: PVE refuses every change" in out
    assert pve.changing(since=seen) == []


def test_the_certificate_pin_is_checked_and_a_wrong_one_refused(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    der = ssl.PEM_cert_to_DER_cert(pve.ca_file.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    pin = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    profile = proxmox_site.root / "profile.toml"
    base = profile.read_text().split("\n[proxmox]")[0]
    profile.write_text(base + proxmox_table(pve.port, f'fingerprint = "{pin}"'))
    code, out, err = run(proxmox_site, "plan")
    assert code == 0, out + err
    wrong = ("00:" * 32)[:-1]
    profile.write_text(base + proxmox_table(pve.port, f'fingerprint = "{wrong}"'))
    seen = len(pve.requests())
    code, _, err = run(proxmox_site, "plan")
    assert code == 1
    assert "does not verify against fingerprint" in err
    assert len(pve.requests()) == seen  # refused before a request was sent
    # Neither pin nor CA: the system's CA store, which does not know the fake's certificate.
    profile.write_text(base + proxmox_table(pve.port, ""))
    code, _, err = run(proxmox_site, "plan")
    assert code == 1 and "does not verify against the system CA store" in err


def test_a_wrong_token_secret_is_one_line_and_never_echoed(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    code, out, err = run(proxmox_site, "plan", PROXMOX_TOKEN_SECRET="wrong-secret-value-42")
    assert code == 1
    assert last(err) == "proxmox: PVE answered 401: authentication failure"
    assert "wrong-secret-value-42" not in out + err
    code, _, err = run(proxmox_site, "plan", PROXMOX_TOKEN_SECRET="")
    assert code == 1 and "PROXMOX_TOKEN_SECRET is not set" in err


def test_inventory_writes_the_agents_addresses_keeping_comments(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    applied(proxmox_site, pve)
    pve.do("agent", vmid=210, address="198.51.100.77")
    pve.do("agent", vmid=211, address="198.51.100.78")
    inventory = proxmox_site.root / "inventory.toml"
    inventory.write_text(
        "# Operator's notes stay.\n"
        + inventory.read_text().replace(
            'ansible_host = "198.51.100.10"', 'ansible_host = "198.51.100.10"  # set by hand'
        )
    )
    before = inventory.read_text()

    code, out, _ = run(proxmox_site, "inventory", "--dry")
    assert code == 0
    assert '-ansible_host = "198.51.100.10"  # set by hand' in out
    assert '+ansible_host = "198.51.100.77"  # set by hand' in out
    assert "dry run, not written" in out
    assert (
        inventory.read_text() == before and not inventory.with_name("inventory.toml.bak").exists()
    )

    code, out, _ = run(proxmox_site, "inventory")
    assert code == 0
    after = inventory.read_text()
    assert after == before.replace('"198.51.100.10"', '"198.51.100.77"').replace(
        '"198.51.100.11"', '"198.51.100.78"'
    )
    assert inventory.with_name("inventory.toml.bak").read_text() == before
    code, out, _ = run(proxmox_site, "inventory")
    assert code == 0 and "sites/lab/inventory.toml: unchanged" in out
    # The written inventory still validates, and a deploy would now reach the new address.
    assert run(proxmox_site, "plan")[0] == 0


def test_inventory_refuses_a_target_that_is_not_toml(
    proxmox_site: ProxmoxSite, pve: FakePve, tmp_path: Path
) -> None:
    applied(proxmox_site, pve)
    pve.do("agent", vmid=210, address="198.51.100.77")
    inventory = proxmox_site.root / "inventory.toml"
    inventory.write_text("ssh-ed25519 AAAA... this is someone's authorized_keys\n")
    code, _, err = run(proxmox_site, "inventory")
    assert code == 2
    assert "sites/lab/inventory.toml: -: invalid TOML" in err
    assert inventory.read_text().startswith("ssh-ed25519")
    assert not inventory.with_name("inventory.toml.bak").exists()


def test_inventory_without_an_agent_names_the_reason_and_writes_nothing(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    applied(proxmox_site, pve)
    before = (proxmox_site.root / "inventory.toml").read_text()
    code, out, err = run(proxmox_site, "inventory")
    assert code == 1
    assert "vm lab-argocd: no address: QEMU guest agent is not running (PVE 500, waited 0 s)" in out
    assert "no address for lab-argocd, lab-rke2-gpu: inventory.toml not written" in err
    assert (proxmox_site.root / "inventory.toml").read_text() == before


def test_a_task_still_running_past_the_bound_stops_the_apply(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    applied(proxmox_site, pve)
    # PVE seconds run at real time now; the guest takes 10 minutes to start.
    pve.do("set", vmid=211, values={"status": "stopped", "start_secs": 600})
    pve.do("time_scale", value=1)
    code, _, err = run(proxmox_site, "apply", TIROSH_PROXMOX_TASK_TIMEOUT="1")
    assert code == 1
    line = last(err)
    assert line.startswith(
        "proxmox: vm lab-rke2-gpu (211 on pve1): start: task still running "
        "after 1 s; it goes on in PVE, nothing else was sent"
    )
    assert "UPID:pve1:" in line and ":qmstart:211:" in line


def test_bounds_must_be_whole_seconds(proxmox_site: ProxmoxSite, pve: FakePve) -> None:
    code, _, err = run(proxmox_site, "plan", TIROSH_PROXMOX_TASK_TIMEOUT="soon")
    assert code == 2
    assert "environment: TIROSH_PROXMOX_TASK_TIMEOUT: must be whole seconds, got 'soon'" in err
    assert pve.requests() == []


def test_a_private_key_named_as_the_public_key_is_refused_unread(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    key = proxmox_site.home / ".ssh" / "id_ed25519.pub"
    # A private key's first lines (written in two parts, so no key-looking text is committed).
    key.write_text("-----BEGIN " + "OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    code, out, err = run(proxmox_site, "plan")
    assert code == 2
    assert f"vms[0].user_account.ssh_public_key_file: '{key}' is a private key" in err
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in out + err
    assert pve.requests() == []


def test_a_missing_ca_file_is_a_site_problem_before_any_request(
    proxmox_site: ProxmoxSite, pve: FakePve
) -> None:
    missing = proxmox_site.root / "pve-root-ca.crt"
    proxmox_site.edit("profile.toml", f'ca_file = "{pve.ca_file}"', f'ca_file = "{missing}"')
    code, _, err = run(proxmox_site, "plan")
    assert code == 2
    # The site copy is outside the checkout, so its files are named by their full path.
    assert last(err) == (
        f"{proxmox_site.root}/profile.toml: proxmox.ca_file: cannot use '{missing}': "
        "No such file or directory"
    )
    assert pve.requests() == []
