"""sites/<site>/vms.tfvars and profile.toml [proxmox]: read by the site model, every problem as
``file: key: problem`` before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.site.helpers import ENV, REPO, append, problems
from tirosh.site import load_site
from tirosh.site.vms_file import check_vms, load_vms

PROXMOX = """
[proxmox]
api_url = "https://pve.lab.example:8006"
node = "pve1"
token_id = "tirosh-infra@pve!vms"
ca_file = "sites/lab/pve-root-ca.crt"
"""

VM = """\
  {{
    name = "{name}"
    vm_id = {vm_id}
    cpu_cores = 2
    memory_mb = 2048
    clone = {{ vm_id = 9000 }}
    disk = {{ datastore_id = "local-lvm", size_gb = 20 }}
    user_account = {{ username = "ops", ssh_public_key_file = "~/.ssh/id_ed25519.pub" }}
    {extra}
  }},
"""


def tfvars(*vms: str) -> str:
    return "vms = [\n" + "".join(vms) + "]\n"


def vm(name: str, vm_id: int, extra: str = "") -> str:
    return VM.format(name=name, vm_id=vm_id, extra=extra)


@pytest.fixture
def site(repo: Path) -> Path:
    append(repo, "profile.toml", PROXMOX)
    (repo / "sites" / "lab" / "vms.tfvars").write_text(tfvars(vm("argocd", 210), vm("gpu", 211)))
    return repo


def write(repo: Path, text: str) -> None:
    (repo / "sites" / "lab" / "vms.tfvars").write_text(text)


def messages(repo: Path) -> list[str]:
    return [str(p) for p in problems(repo)]


def test_a_valid_file_is_read_with_its_defaults(site: Path) -> None:
    loaded = load_site("lab", site, ENV)
    declared = check_vms(loaded, ENV)
    argocd = declared.vms[0]
    assert (argocd.name, argocd.vm_id, argocd.node, argocd.template_vm_id) == (
        "argocd",
        210,
        "pve1",
        9000,
    )
    assert (argocd.bridge, argocd.ipv4, argocd.disk_interface) == ("vmbr0", "dhcp", "scsi0")
    assert argocd.ssh_public_key_file == Path("/home/op/.ssh/id_ed25519.pub")
    assert declared.proxmox is not None and declared.proxmox.port == 8006
    assert declared.proxmox.ca_file == site / "sites/lab/pve-root-ca.crt"


def test_a_site_without_vms_tfvars_has_no_vms_and_needs_no_proxmox_table(repo: Path) -> None:
    declared = load_vms(repo / "sites" / "lab", repo, ENV)
    assert declared.vms == () and declared.proxmox is None


def test_numbers_as_strings_are_read_as_terraform_converts_them(site: Path) -> None:
    write(
        site, tfvars(vm("argocd", 210).replace("cpu_cores = 2", 'cpu_cores = "4"'), vm("gpu", 211))
    )
    declared = check_vms(load_site("lab", site, ENV), ENV)
    assert declared.vms[0].cpu_cores == 4


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "cpu_cores = 2",
            'cpu_cores = "four"',
            "vms[0].cpu_cores: must be a whole number, got string",
        ),
        ("cpu_cores = 2", "cpu_cores = 0", "vms[0].cpu_cores: must be 1 to 512, got 0"),
        ("memory_mb = 2048", "memory_mb = -1", "vms[0].memory_mb: must be at least 16, got -1"),
        ("size_gb = 20", "size_gb = 0", "vms[0].disk.size_gb: must be 1 to 131072, got 0"),
        ('name = "argocd"', 'name = "argo_cd"', "vms[0].name: must be a DNS label"),
        ('name = "argocd"', 'name = "argocd.lab"', "vms[0].name: must be a DNS label"),
        ("vm_id = 210", "vm_id = 99", "vms[0].vm_id: must be 100 to 999999999, got 99"),
        (
            "cpu_cores = 2",
            "cpu_cores = 2\n    cpu_core = 3",
            'vms[0].cpu_core: unknown key (did you mean "cpu_cores"?)',
        ),
        ("cpu_cores = 2", "cpu_cores = 2\n    cpu_cores = 3", "vms[0].cpu_cores: set twice"),
        (
            "clone = { vm_id = 9000 }",
            "clone = { vm_id = 210 }",
            "vms[0].clone.vm_id: is the VM's own vm_id",
        ),
        (
            'username = "ops"',
            'username = "-rf"',
            "vms[0].user_account.username: must be a login name",
        ),
        (
            'datastore_id = "local-lvm"',
            'datastore_id = "local lvm"',
            "vms[0].disk.datastore_id: must be a PVE storage id",
        ),
        # Terraform reads a heredoc with its newline: "argocd\n" is no name.
        (
            'name = "argocd"',
            "name = <<EOT\nargocd\nEOT",
            "vms[0].name: contains the control character U+000A",
        ),
        (
            'name = "argocd"',
            'name = "${var.name}"',
            "vms[0].name: ${...} and %{...} templates are not evaluated",
        ),
        ('name = "argocd"', "name = argocd", "vms[0].name: only literal values are read here"),
    ],
)
def test_each_mistake_is_reported_at_its_key(site: Path, old: str, new: str, expected: str) -> None:
    write(site, tfvars(vm("argocd", 210).replace(old, new, 1), vm("gpu", 211)))
    found = messages(site)
    assert any(line.startswith("sites/lab/vms.tfvars: ") and expected in line for line in found), (
        found
    )


def test_ids_and_names_must_be_unique(site: Path) -> None:
    write(site, tfvars(vm("argocd", 210), vm("gpu", 210), vm("argocd", 212)))
    found = messages(site)
    assert "sites/lab/vms.tfvars: vms[1].vm_id: 210 is also vms[0]" in found
    assert "sites/lab/vms.tfvars: vms[2].name: 'argocd' is also vms[0]" in found


def test_each_inventory_vm_must_be_declared(site: Path) -> None:
    write(site, tfvars(vm("argocd", 210)))
    assert (
        "sites/lab/inventory.toml: vms.gpu.proxmox_vm_name: 'gpu' is not a VM of "
        "sites/lab/vms.tfvars (declared: argocd)"
    ) in messages(site)


def test_tags_and_addressing(site: Path) -> None:
    write(
        site,
        tfvars(
            vm("argocd", 210, 'tags = ["k3s", "K3S"]'),
            vm(
                "gpu",
                211,
                'ip_config = { ipv4 = { address = "10.0.0.5/24", gateway = "10.0.1.1" } }',
            ),
        ),
    )
    found = messages(site)
    assert (
        "sites/lab/vms.tfvars: vms[0].tags[1]: 'K3S' is listed twice (PVE tags ignore case)"
        in found
    )
    assert (
        "sites/lab/vms.tfvars: vms[1].ip_config.ipv4.gateway: 10.0.1.1 is not in 10.0.0.0/24"
        in found
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'api_url = "https://pve.lab.example:8006"',
            'api_url = "http://pve.lab.example:8006"',
            "proxmox.api_url: must be an https:// URL",
        ),
        (
            'api_url = "https://pve.lab.example:8006"',
            'api_url = "https://root:s3cr3t@pve lab:8006"',
            "proxmox.api_url: must be https://HOST[:PORT] without credentials",
        ),
        (
            'token_id = "tirosh-infra@pve!vms"',
            'token_id = "tirosh-infra@pve!vms=s3cr3t"',
            "proxmox.token_id: the token secret never goes in a file: set PROXMOX_TOKEN_SECRET",
        ),
        (
            'ca_file = "sites/lab/pve-root-ca.crt"',
            'ca_file = "sites/lab/pve-root-ca.crt"\nfingerprint = "AB:CD"',
            "proxmox.fingerprint: set ca_file or fingerprint, not both",
        ),
        ('node = "pve1"', 'nodes = "pve1"', 'proxmox.nodes: unknown key (did you mean "node"?)'),
    ],
)
def test_proxmox_table_problems(site: Path, old: str, new: str, expected: str) -> None:
    path = site / "sites" / "lab" / "profile.toml"
    path.write_text(path.read_text().replace(old, new, 1))
    found = messages(site)
    assert any(
        line.startswith("sites/lab/profile.toml: ") and expected in line for line in found
    ), found
    assert not any("s3cr3t" in line for line in found)


def test_vms_tfvars_needs_the_proxmox_table(repo: Path) -> None:
    write(repo, tfvars(vm("argocd", 210), vm("gpu", 211)))
    assert (
        "sites/lab/profile.toml: proxmox: required by sites/lab/vms.tfvars: api_url, node, token_id"
        in messages(repo)
    )


def test_tirosh_home_ships_the_runbooks_argocd_vm() -> None:
    site = load_site("tirosh-home", REPO, ENV)
    declared = check_vms(site, ENV)
    (argocd,) = declared.vms
    assert (argocd.name, argocd.vm_id, argocd.tags) == ("argocd", 210, ("gitops", "k3s"))
    assert (argocd.cpu_cores, argocd.memory_mb, argocd.size_gb) == (4, 8192, 40)
    assert (argocd.datastore_id, argocd.username) == ("local-lvm", "tirosh")
    assert site.vms["argocd"].proxmox_vm_name == "argocd"
    assert declared.proxmox is not None and declared.proxmox.token_id == "tirosh-infra@pve!vms"


def test_the_map_form_names_each_vm_by_its_key(site: Path) -> None:
    def entry(name: str, vm_id: int) -> str:
        body = vm(name, vm_id).replace(f'    name = "{name}"\n', "").lstrip()
        return f"  {name} = {body}"

    write(site, "vms = {\n" + entry("argocd", 210) + entry("gpu", 211) + "}\n")
    declared = check_vms(load_site("lab", site, ENV), ENV)
    assert [(v.name, v.key) for v in declared.vms] == [("argocd", "vms.argocd"), ("gpu", "vms.gpu")]
    write(
        site,
        "vms = {\n"
        + entry("argocd", 210).replace("vm_id = 210", 'vm_id = 210\n    name = "x"')
        + entry("gpu", 211)
        + "}\n",
    )
    assert (
        "sites/lab/vms.tfvars: vms.argocd.name: must be the map key 'argocd' or be left out, got 'x'"
        in messages(site)
    )
