"""The three commands as functions: plan, apply, inventory (``python -m local.proxmox``).

Each starts from a validated site, checks the rest of what it needs before connecting (the
``[proxmox]`` table, the public keys, the CA file, the token secret, the bounds), reads PVE with
GET requests, and only then changes anything. Failures the operator can fix raise
``ProxmoxError`` (one line, exit 1); site problems raise ``SiteError`` (exit 2).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TextIO

import requests
from proxmoxer import ResourceException

from local.proxmox import agent, apply, connection, observe
from local.proxmox.connection import ProxmoxError
from local.proxmox.inventory_file import write_hosts
from tirosh import regular_file
from tirosh.proxmox.inventory import InventoryEditError
from tirosh.proxmox.plan import Plan, plan
from tirosh.site import Problem, Site, SiteError
from tirosh.site.model import ENVIRONMENT, INVENTORY
from tirosh.site.vms_file import check_vms
from tirosh.vms import Declared, ProxmoxAccess, VmSpec

__all__ = ["Options", "bounds", "run_apply", "run_inventory", "run_plan"]

BOUND_VARIABLES: Final = {
    "task": "TIROSH_PROXMOX_TASK_TIMEOUT",
    "shutdown": "TIROSH_PROXMOX_SHUTDOWN_TIMEOUT",
    "agent": "TIROSH_PROXMOX_AGENT_WAIT",
}
_PUBLIC_KEY: Final = re.compile(
    r"(?:ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}(?: [^\n]*)?"
)


@dataclass(frozen=True)
class Options:
    restart: bool = False  # the operator allows restarting a running VM for a change
    dry: bool = False  # inventory: show the diff, write nothing
    verbose: int = 0


# What each command is: the site, the environment, the options, where to print.
Command = Callable[[Site, Mapping[str, str], Options, TextIO, TextIO], int]


@dataclass
class _Session:
    declared: Declared
    access: ProxmoxAccess
    keys: dict[str, str]
    bounds: apply.Bounds
    api: Any
    secret: str


def bounds(environ: Mapping[str, str]) -> apply.Bounds:
    """The waits, from the environment (whole seconds, 0 allowed) or their defaults."""
    values: dict[str, float] = {}
    problems = []
    for field, variable in BOUND_VARIABLES.items():
        text = environ.get(variable)
        if text is None or text == "":
            continue
        if not text.isascii() or not text.isdigit():
            problems.append(Problem(ENVIRONMENT, variable, f"must be whole seconds, got {text!r}"))
            continue
        values[field] = float(text)
    if problems:
        raise SiteError(problems)
    return apply.Bounds(**values)


def _public_keys(declared: Declared) -> dict[str, str]:
    keys, problems = {}, []
    for spec in declared.vms:
        where = f"{spec.key}.user_account.ssh_public_key_file"
        try:
            text = regular_file.read_text(spec.ssh_public_key_file, "public key file").strip()
        except OSError as exc:
            problems.append(
                Problem(
                    declared.file,
                    where,
                    f"cannot read '{spec.ssh_public_key_file}': {exc.strerror}",
                )
            )
            continue
        except ValueError as exc:
            problems.append(Problem(declared.file, where, f"'{spec.ssh_public_key_file}' {exc}"))
            continue
        if "PRIVATE KEY" in text:
            # Never echoed: name the file only.
            problems.append(
                Problem(
                    declared.file,
                    where,
                    f"'{spec.ssh_public_key_file}' is a private key: name its .pub",
                )
            )
            continue
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines or not all(_PUBLIC_KEY.fullmatch(line) for line in lines):
            problems.append(
                Problem(
                    declared.file,
                    where,
                    f"'{spec.ssh_public_key_file}' is not an OpenSSH public key",
                )
            )
            continue
        keys[spec.name] = "\n".join(lines)
    if problems:
        raise SiteError(problems)
    return keys


def _declared(site: Site, environ: Mapping[str, str]) -> tuple[Declared, ProxmoxAccess]:
    declared = check_vms(site, environ)
    if not declared.vms:
        raise ProxmoxError(f"site {site.name}: no sites/{site.name}/vms.tfvars: no VM declared")
    assert declared.proxmox is not None  # check_vms requires [proxmox] with vms.tfvars
    return declared, declared.proxmox


@contextlib.contextmanager
def _pve_errors(access: ProxmoxAccess, secret: str) -> Iterator[None]:
    """API and transport failures as one ProxmoxError line (the secret cut out)."""
    try:
        yield
    except (ResourceException, requests.exceptions.RequestException) as exc:
        raise ProxmoxError(connection.describe_error(exc, access, secret)) from None


def _open(site: Site, environ: Mapping[str, str], options: Options, log: TextIO) -> _Session:
    declared, access = _declared(site, environ)
    keys = _public_keys(declared)
    waits = bounds(environ)
    secret = connection.token_secret(access, environ)
    api = connection.connect(access, environ, options.verbose, log)
    return _Session(declared, access, keys, waits, api, secret)


def _plan(session: _Session, options: Options) -> Plan:
    cluster = observe.read_cluster(session.api, session.declared.vms)
    return plan(session.declared.vms, session.keys, cluster, options.restart)


def run_plan(
    site: Site, environ: Mapping[str, str], options: Options, out: TextIO, err: TextIO
) -> int:
    """Print the plan; 1 when anything is refused."""
    session = _open(site, environ, options, err)
    with _pve_errors(session.access, session.secret):
        result = _plan(session, options)
    for line in result.lines():
        print(line, file=out)
    return 1 if result.refused else 0


def run_apply(
    site: Site, environ: Mapping[str, str], options: Options, out: TextIO, err: TextIO
) -> int:
    """Plan, then apply when nothing is refused; then each VM's address."""
    session = _open(site, environ, options, err)
    with _pve_errors(session.access, session.secret):
        result = _plan(session, options)
        for line in result.lines():
            print(line, file=out)
        if result.refused:
            return 1
        changed = apply.apply_plan(
            session.api, result, session.bounds, lambda line: print(line, file=out, flush=True)
        )
        print(f"applied: {changed} VM(s) changed" if changed else "nothing to change", file=out)
        for spec in session.declared.vms:
            _show_address(session, spec, out)
    print(
        "next: make proxmox/vms/inventory SITE="
        + site.name
        + " writes these addresses into inventory.toml",
        file=out,
    )
    return 0


def _show_address(session: _Session, spec: VmSpec, out: TextIO) -> str | None:
    found, reason = agent.wait_address(session.api, session.access, spec, session.bounds.agent)
    if found:
        print(f"vm {spec.name}: address {found} (guest agent)", file=out)
    else:
        print(f"vm {spec.name}: no address: {reason}", file=out)
    return found


def run_inventory(
    site: Site, environ: Mapping[str, str], options: Options, out: TextIO, err: TextIO
) -> int:
    """Write the guest agents' addresses as ``ansible_host``; ``options.dry``: the diff only."""
    session = _open(site, environ, options, err)
    aliases = {vm.proxmox_vm_name: alias for alias, vm in site.vms.items()}
    hosts: dict[str, str] = {}
    missing = []
    with _pve_errors(session.access, session.secret):
        for spec in session.declared.vms:
            alias = aliases.get(spec.name)
            if alias is None:
                print(
                    f"vm {spec.name}: no [vms.<alias>] with proxmox_vm_name = "
                    f"{spec.name!r} in {INVENTORY}: skipped",
                    file=out,
                )
                continue
            found = _show_address(session, spec, out)
            if found is None:
                missing.append(spec.name)
            else:
                hosts[alias] = found
    if missing:
        raise ProxmoxError(f"no address for {', '.join(missing)}: {INVENTORY} not written")
    name = f"sites/{site.name}/{INVENTORY}"
    try:
        written = write_hosts(site.root / INVENTORY, hosts, name, options.dry)
    except InventoryEditError as exc:
        raise SiteError([Problem(name, "-", str(exc))]) from None
    except OSError as exc:  # the directory or the backup cannot be written
        raise ProxmoxError(f"{name}: cannot write: {exc.strerror or exc}") from None
    if not written.diff:
        print(f"{name}: unchanged", file=out)
        return 0
    print(written.diff, end="", file=out)
    if written.written:
        print(f"{name}: written (previous copy: {written.backup})", file=out)
    else:
        print(f"{name}: dry run, not written", file=out)
    return 0
