"""``sites/<site>/vms.tfvars`` (the site's Proxmox VMs) and profile.toml's ``[proxmox]`` table.

(Over 300 lines: vms.tfvars has many fields, each with PVE's own format. Its values are read
by the site's table reader, ``reader.Table``, with Terraform's conversions on top.)

The tfvars file has the runbook's shape, one object per VM; what creating a VM needs and the
runbook leaves implicit (node, template, bridge, cloud-init key and addressing) sits beside it::

    vms = [
      {
        name         = "argocd"
        vm_id        = 210
        node_name    = "pve"                 # optional: [proxmox] node
        tags         = ["gitops", "k3s"]
        cpu_cores    = 4
        memory_mb    = 8192
        clone        = { vm_id = 9000 }      # a template; always a full clone
        disk         = { datastore_id = "local-lvm", size_gb = 40 }   # interface = "scsi0"
        network      = { bridge = "vmbr0" }
        user_account = { username = "tirosh", ssh_public_key_file = "~/.ssh/id_ed25519.pub" }
        ip_config    = { ipv4 = { address = "dhcp" } }   # or address = "a.b.c.d/nn", gateway
      },
    ]

Values are read as Terraform reads them (``tirosh.tfvars``): a number written as a string
(``cpu_cores = "4"``) is the number, ``null`` is "not set". The file is optional (a site
without Proxmox VMs); with it, ``[proxmox]`` is required and every inventory VM's
``proxmox_vm_name`` must name a declared VM. The API token's secret is never in a file: it is
read from ``PROXMOX_TOKEN_SECRET`` by the commands that connect.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from tirosh import regular_file
from tirosh.site.model import INVENTORY, PROFILE, Problem, Site, SiteError
from tirosh.site.reader import _MISSING, Report, Table, describe
from tirosh.site.values import https_url_host, is_ip_address, user_problem
from tirosh.vms import TOKEN_SECRET_VARIABLE, VMS_FILE, Declared, ProxmoxAccess, VmSpec

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = ["check_vms", "load_vms", "read_declared", "read_vms"]

# PVE's own formats: pve-vmid, pve-tag, pve-storage-id, a token id user@realm!name.
VMID_RANGE: Final = (100, 999_999_999)
_DNS_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TAG: Final = re.compile(r"[a-z0-9_][a-z0-9_+.-]*", re.IGNORECASE)
_STORAGE_ID: Final = re.compile(r"[a-z][a-z0-9._-]*[a-z0-9]", re.IGNORECASE)
_BRIDGE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,14}")
_DISK: Final = re.compile(r"(?:scsi(?:[0-9]|[12][0-9]|30)|virtio(?:[0-9]|1[0-5])|sata[0-5])")
_TOKEN_ID: Final = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9._-]+![A-Za-z][A-Za-z0-9._-]*")
_FINGERPRINT: Final = re.compile(r"(?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}")
_WHOLE: Final = re.compile(r"-?[0-9]+")

_VM_KEYS: Final = (
    "name",
    "vm_id",
    "node_name",
    "tags",
    "cpu_cores",
    "memory_mb",
    "clone",
    "disk",
    "network",
    "user_account",
    "ip_config",
)
_PROXMOX_KEYS: Final = ("api_url", "node", "token_id", "ca_file", "fingerprint")


class _Reader(Table):
    """The site's table reader (``reader.Table``: its problems, unknown keys, control
    characters) with Terraform's reading of a value: ``null`` is not set, a number or boolean
    where a string belongs is that string, a string of digits where a number belongs is it."""

    def __init__(self, file: str, key: str, data: Mapping[str, Any], problems: list[Problem]):
        report = Report(Path("."), {})
        report.problems = problems  # one list of problems for the whole load
        super().__init__(report, file, data, key)

    def _raw(self, key: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None:
            if required:
                self.problem(key, "required key is missing")
            return _MISSING
        return value

    def string(self, key: str, *, required: bool = True, allow_empty: bool = False) -> str | None:
        value = self.data.get(key)
        if isinstance(value, bool):
            return super().string_value(key, str(value).lower())
        if isinstance(value, int | float):
            return super().string_value(key, str(value))
        return super().string(key, required=required, allow_empty=allow_empty)

    def integer(  # type: ignore[override]
        self, key: str, low: int, high: int | None = None, *, required: bool = True
    ) -> int | None:
        value = self.data.get(key)
        if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
            return super().integer_value(key, int(value.strip()), low, high)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            # Terraform's word for it: "4 GiB" is no number.
            self.problem(key, f"must be a whole number, got {describe(value)}")
            return None
        return super().integer(key, required=required, minimum=low, maximum=high)

    def object(self, key: str, allowed: tuple[str, ...], *, required: bool = True) -> _Reader:
        value = self._raw(key, required)
        data: Mapping[str, Any] = value if isinstance(value, dict) else {}
        if value is not _MISSING and not isinstance(value, dict):
            self.problem(key, f"must be an object {{ ... }}, got {describe(value)}")
        reader = _Reader(self.file, self.key_path(key), data, self.report.problems)
        reader.allow(allowed)
        return reader

    def strings(self, key: str) -> list[str] | None:
        if self._raw(key, required=False) is _MISSING:
            return []
        return self.string_list(key)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object"


def _resolve(text: str, repo_root: Path, environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME")
    if home and (text == "~" or text.startswith("~/")):
        text = home + text[1:]
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else repo_root / path


# --------------------------------------------------------------------------- [proxmox]


def read_proxmox(
    data: Mapping[str, Any],
    file: str,
    repo_root: Path,
    environ: Mapping[str, str],
    problems: list[Problem],
) -> ProxmoxAccess | None:
    """``[proxmox]`` of the parsed profile.toml, or None (absent, or with problems)."""
    if "proxmox" not in data:
        return None
    table = data["proxmox"]
    if not isinstance(table, dict):
        problems.append(Problem(file, "proxmox", "must be a table [proxmox]"))
        return None
    start = len(problems)
    r = _Reader(file, "proxmox", table, problems)
    r.allow(_PROXMOX_KEYS)
    url, node, token = r.string("api_url"), r.string("node"), r.string("token_id")
    host, port = _api_endpoint(r, url)
    if node is not None and not _DNS_LABEL.fullmatch(node):
        r.problem("node", f"must be a PVE node name (a DNS label), got {node!r}")
    if "=" in str(table.get("token_id", "")) or "token_secret" in table:
        # Never echoed: it may be the secret itself.
        r.problem("token_id", f"the token secret never goes in a file: set {TOKEN_SECRET_VARIABLE}")
    elif token is not None and not _TOKEN_ID.fullmatch(token):
        r.problem(
            "token_id",
            f"must be USER@REALM!TOKENNAME (the secret goes in "
            f"{TOKEN_SECRET_VARIABLE}), got {token!r}",
        )
    ca = r.string("ca_file", required=False)
    pin = r.string("fingerprint", required=False)
    if ca is not None and pin is not None:
        r.problem("fingerprint", "set ca_file or fingerprint, not both")
    if pin is not None and not _FINGERPRINT.fullmatch(pin):
        r.problem("fingerprint", "must be the certificate's SHA-256 as 32 hex pairs AA:BB:...")
    if len(problems) > start or url is None or node is None or token is None or host is None:
        return None
    return ProxmoxAccess(
        api_url=url.rstrip("/"),
        host=host,
        port=port,
        node=node,
        token_id=token,
        ca_file=_resolve(ca, repo_root, environ) if ca else None,
        fingerprint=pin.upper() if pin else None,
        file=file,
    )


def _api_endpoint(r: _Reader, url: str | None) -> tuple[str | None, int]:
    if url is None:
        return None, 0
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        r.problem("api_url", f"is not a valid URL ({exc})")
        return None, 0
    # Before anything that quotes the URL: it may carry a password.
    if "@" in parts.netloc or parts.query or parts.fragment:
        r.problem("api_url", "must be https://HOST[:PORT] without credentials, query or fragment")
        return None, 0
    host, reason = https_url_host(url)
    if reason:
        r.problem("api_url", reason)
        return None, 0
    if parts.path.strip("/") not in ("", "api2/json"):
        r.problem("api_url", f"must be https://HOST[:PORT] (PVE serves /api2/json), got {url!r}")
        return None, 0
    return host, parts.port or 8006


# --------------------------------------------------------------------------- vms.tfvars


def read_vms(
    data: Mapping[str, Any],
    file: str,
    default_node: str | None,
    repo_root: Path,
    environ: Mapping[str, str],
    problems: list[Problem],
) -> list[VmSpec]:
    """The declared VMs of a parsed vms.tfvars; problems for everything wrong in it."""
    top = _Reader(file, "", data, problems)
    top.allow(("vms",))
    raw = data.get("vms")
    if raw is None:
        top.problem("vms", "required key is missing (vms = [ { name = ..., ... } ])")
        return []
    # A list of objects, or a map of them by name (the shape a module's for_each takes).
    items: list[tuple[str, str | None, Any]]
    if isinstance(raw, list):
        items = [(f"vms[{index}]", None, item) for index, item in enumerate(raw)]
    elif isinstance(raw, dict):
        items = [(f"vms.{name}", str(name), item) for name, item in raw.items()]
    else:
        top.problem("vms", f"must be a list of VM objects [ {{ ... }} ], got {_describe(raw)}")
        return []
    if not items:
        top.problem("vms", "must declare at least one VM")
    specs = []
    for where, name, item in items:
        if not isinstance(item, dict):
            top.problem(where, f"must be an object {{ ... }}, got {_describe(item)}")
            continue
        if name is not None:
            item = _named(_Reader(file, where, item, problems), name)
        reader = _Reader(file, where, item, problems)
        spec = _read_vm(reader, where, default_node, repo_root, environ)
        if spec is not None:
            specs.append(spec)
    _check_unique(file, specs, problems)
    return specs


def _named(r: _Reader, key: str) -> Mapping[str, Any]:
    """A VM of the map form: its name is its key, and a name inside must agree."""
    if r.data.get("name") is not None and r.data.get("name") != key:
        r.problem("name", f"must be the map key {key!r} or be left out, got {r.data['name']!r}")
        return r.data
    return {**r.data, "name": key}


def _read_vm(
    r: _Reader, where: str, default_node: str | None, repo_root: Path, environ: Mapping[str, str]
) -> VmSpec | None:
    start = len(r.report.problems)
    r.allow(_VM_KEYS)
    name = r.string("name")
    if name is not None and (not _DNS_LABEL.fullmatch(name) or name.isdigit()):
        r.problem("name", f"must be a DNS label (letters, digits, '-'; at most 63), got {name!r}")
    vm_id = r.integer("vm_id", *VMID_RANGE)
    node = r.string("node_name", required=False) or default_node
    if node is not None and not _DNS_LABEL.fullmatch(node):
        r.problem("node_name", f"must be a PVE node name (a DNS label), got {node!r}")
    tags = _tags(r)
    cores, memory = r.integer("cpu_cores", 1, 512), r.integer("memory_mb", 16)
    clone = r.object("clone", ("vm_id",))
    template = clone.integer("vm_id", *VMID_RANGE)
    if template is not None and template == vm_id:
        clone.problem("vm_id", "is the VM's own vm_id: name the template to clone from")
    disk = r.object("disk", ("datastore_id", "size_gb", "interface"))
    store, size = disk.string("datastore_id"), disk.integer("size_gb", 1, 131072)
    if store is not None and not _STORAGE_ID.fullmatch(store):
        disk.problem("datastore_id", f"must be a PVE storage id, got {store!r}")
    interface = disk.string("interface", required=False) or "scsi0"
    if not _DISK.fullmatch(interface):
        disk.problem("interface", f"must be a disk such as scsi0 or virtio0, got {interface!r}")
    bridge = r.object("network", ("bridge",), required=False).string("bridge", required=False)
    if bridge is not None and not _BRIDGE.fullmatch(bridge):
        r.problem("network.bridge", f"must be a Linux bridge name such as vmbr0, got {bridge!r}")
    user = r.object("user_account", ("username", "ssh_public_key_file"))
    username, key_file = user.string("username"), user.string("ssh_public_key_file")
    if username is not None and (problem := user_problem(username)):
        user.problem("username", problem)
    ipv4, gateway = _ip_config(r)
    if default_node is None and node is None:
        r.problem("node_name", "required: no [proxmox] node in profile.toml to default to")
    if len(r.report.problems) > start:
        return None
    assert name and vm_id and node and template and cores and memory and store and size
    assert username and key_file and ipv4 and tags is not None
    return VmSpec(
        where=where,
        name=name,
        vm_id=vm_id,
        node=node,
        template_vm_id=template,
        tags=tuple(tags),
        cpu_cores=cores,
        memory_mb=memory,
        datastore_id=store,
        disk_interface=interface,
        size_gb=size,
        bridge=bridge or "vmbr0",
        username=username,
        ssh_public_key_file=_resolve(key_file, repo_root, environ),
        ipv4=ipv4,
        gateway=gateway,
    )


def _tags(r: _Reader) -> list[str] | None:
    tags = r.strings("tags")
    if tags is None:
        return None
    seen: set[str] = set()
    for index, tag in enumerate(tags):
        if not _TAG.fullmatch(tag):
            r.problem(
                f"tags[{index}]", f"must be a PVE tag (letters, digits, _ + . -), got {tag!r}"
            )
            return None
        if tag.lower() in seen:
            r.problem(f"tags[{index}]", f"{tag!r} is listed twice (PVE tags ignore case)")
            return None
        seen.add(tag.lower())
    return sorted(seen)


def _ip_config(r: _Reader) -> tuple[str | None, str | None]:
    config = r.object("ip_config", ("ipv4",), required=False)
    ipv4 = config.object("ipv4", ("address", "gateway"), required=False)
    address = ipv4.string("address", required=False) or "dhcp"
    gateway = ipv4.string("gateway", required=False)
    if address == "dhcp":
        if gateway is not None:
            ipv4.problem("gateway", 'must not be set with address = "dhcp"')
        return address, None
    try:
        interface = ipaddress.IPv4Interface(address)
    except ValueError:
        ipv4.problem("address", f'must be "dhcp" or an IPv4 address with prefix, got {address!r}')
        return None, None
    if "/" not in address:
        ipv4.problem("address", f"needs its prefix length, e.g. {address}/24")
        return None, None
    if gateway is None or not is_ip_address(gateway) or ":" in gateway:
        ipv4.problem("gateway", "required with a static address: an IPv4 address")
        return None, None
    if ipaddress.IPv4Address(gateway) not in interface.network:
        ipv4.problem("gateway", f"{gateway} is not in {interface.network}")
        return None, None
    return str(interface), gateway


def _check_unique(file: str, specs: list[VmSpec], problems: list[Problem]) -> None:
    names: dict[str, VmSpec] = {}
    ids: dict[int, VmSpec] = {}
    for spec in specs:
        if (other := names.get(spec.name.lower())) is not None:
            problems.append(Problem(file, f"{spec.key}.name", f"{spec.name!r} is also {other.key}"))
        if (twin := ids.get(spec.vm_id)) is not None:
            problems.append(Problem(file, f"{spec.key}.vm_id", f"{spec.vm_id} is also {twin.key}"))
        names.setdefault(spec.name.lower(), spec)
        ids.setdefault(spec.vm_id, spec)


# --------------------------------------------------------------------------- loading


def _parse(path: Path, file: str, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        text = regular_file.read_text(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(Problem(file, "-", f"cannot read file: {exc.strerror}"))
        return None
    except ValueError as exc:  # a FIFO or directory (refused without blocking), or not UTF-8
        problems.append(Problem(file, "-", str(exc)))
        return None
    # Imported here: python-hcl2 and lark take ~0.1 s to import, which a site without
    # vms.tfvars should not pay; the parse itself is cached by content (loads_cached).
    from tirosh import tfvars

    try:
        return tfvars.loads_cached(text)
    except tfvars.TfvarsError as exc:
        problems.append(Problem(file, exc.key, exc.message))
        return None


def read_declared(
    profile: Mapping[str, Any],
    site_root: Path,
    repo_root: Path,
    environ: Mapping[str, str],
    problems: list[Problem],
    proxmox_vm_names: Mapping[str, str] | None = None,
) -> Declared:
    """``vms.tfvars`` and ``[proxmox]`` of the site at ``site_root``, problems recorded.

    + profile: the parsed profile.toml (the site loader's, read once)
    + proxmox_vm_names: inventory alias -> proxmox_vm_name, each must name a declared VM

    No vms.tfvars: no VMs (and ``[proxmox]`` optional).
    """
    rel = _relative(repo_root)
    profile_file, file = rel(site_root / PROFILE), rel(site_root / VMS_FILE)
    proxmox = read_proxmox(profile, profile_file, repo_root, environ, problems)
    data = _parse(site_root / VMS_FILE, file, problems)
    specs: list[VmSpec] = []
    if data is not None:
        if "proxmox" not in profile:
            problems.append(
                Problem(profile_file, "proxmox", f"required by {file}: api_url, node, token_id")
            )
        default_node = proxmox.node if proxmox else _raw_node(profile)
        specs = read_vms(data, file, default_node, repo_root, environ, problems)
        declared = {spec.name for spec in specs}
        inventory = rel(site_root / INVENTORY)
        for alias, name in (proxmox_vm_names or {}).items():
            if specs and name not in declared:
                problems.append(
                    Problem(
                        inventory,
                        f"vms.{alias}.proxmox_vm_name",
                        f"{name!r} is not a VM of {file} (declared: {', '.join(sorted(declared))})",
                    )
                )
    return Declared(file=file, proxmox=proxmox, vms=tuple(specs))


def load_vms(
    site_root: Path,
    repo_root: Path,
    environ: Mapping[str, str] | None = None,
    proxmox_vm_names: Mapping[str, str] | None = None,
) -> Declared:
    """``read_declared`` of one site directory alone (tools and tests); SiteError listing every
    problem. The site loader reads the same through ``read_declared``, once."""
    problems: list[Problem] = []
    try:
        profile = tomllib.loads(regular_file.read_text(site_root / PROFILE))
    except (OSError, ValueError):
        profile = {}  # the site loader reports an unreadable profile.toml
    declared = read_declared(
        profile, site_root, repo_root, environ or {}, problems, proxmox_vm_names
    )
    if problems:
        raise SiteError(problems)
    return declared


def _raw_node(profile: Mapping[str, Any]) -> str | None:
    table = profile.get("proxmox")
    node = table.get("node") if isinstance(table, dict) else None
    return node if isinstance(node, str) else None


def _relative(repo_root: Path) -> Callable[[Path], str]:
    def rel(path: Path) -> str:
        try:
            return path.relative_to(repo_root).as_posix()
        except ValueError:
            return str(path)

    return rel


def check_vms(site: Site, environ: Mapping[str, str] | None = None) -> Declared:
    """The site's declared VMs, as the site loader read them (``Site.proxmox_vms``)."""
    if site.proxmox_vms is not None:
        return site.proxmox_vms
    return Declared(file=f"sites/{site.name}/{VMS_FILE}", proxmox=None, vms=())
