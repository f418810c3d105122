"""``argocd-initial-admin-secret`` on the management VM, read (or deleted) over SSH.

The connection is the deploy's own: the site's inventory (``tirosh.inventory.groups``) through
pyinfra, as the deploy user with sudo, the command run by the VM's ``k3s kubectl``
(``facts.util.kubectl``, the deploy's own command builders). The password
travels only in the command's stdout, read with printing off (``facts.util.quiet``); it is never
in an argument, a log line or a file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from pyinfra.api import Config, Host, Inventory, QuoteString, State, StringCommand

from facts.util import kubectl as kubectl_command
from facts.util.quiet import QuietReadError as SecretReadError
from facts.util.quiet import read_command_output
from tirosh.argocd import INITIAL_ADMIN_SECRET
from tirosh.errors import OperatorError
from tirosh.inventory import groups
from tirosh.site import Site

__all__ = [
    "INITIAL_SECRET",
    "RemoteError",
    "delete_command",
    "delete_initial_secret",
    "read_command",
    "read_initial_password",
    "target_host",
]

INITIAL_SECRET: Final = INITIAL_ADMIN_SECRET


class RemoteError(OperatorError, RuntimeError):
    """The VM could not be reached or the command failed; never carries the secret."""


def read_command(namespace: str, kubectl: StringCommand | None = None) -> StringCommand:
    """Print the Secret's base64 ``password``, or nothing when the Secret does not exist."""
    jsonpath = QuoteString("jsonpath={.data.password}")
    options = ("--ignore-not-found", "-o", jsonpath)
    return kubectl_command.get(
        "secret", INITIAL_SECRET, namespace=namespace, options=options, kubectl=kubectl
    )


def delete_command(namespace: str, kubectl: StringCommand | None = None) -> StringCommand:
    return kubectl_command.delete(
        "secret", INITIAL_SECRET, namespace, ignore_not_found=True, kubectl=kubectl
    )


@contextmanager
def target_host(site: Site) -> Iterator[Host]:
    """The site's management VM as a connected pyinfra host, disconnected afterwards."""
    hosts = {name: data for group in groups(site).values() for name, data in group}
    alias = site.argocd.target_name
    inventory = Inventory(([(alias, hosts[alias])], {}))
    State(inventory, Config())  # wires itself into the inventory and its hosts
    host = inventory.get_host(alias)
    try:
        host.connect(show_errors=False, raise_exceptions=True)
    except Exception as exc:  # pyinfra raises ConnectError and connector-specific errors
        raise RemoteError(
            f"cannot connect to {alias} ({site.target.ansible_host}): {exc}"
        ) from None
    try:
        yield host
    finally:
        host.disconnect()


def decode_password(output: str) -> str | None:
    """The password from the command's output; None when the Secret does not exist."""
    text = output.strip()
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise RemoteError(f"{INITIAL_SECRET}: the password key is not valid base64") from None


def read_initial_password(site: Site, host: Host | None = None) -> str | None:
    """The initial admin password, or None when ``argocd-initial-admin-secret`` is gone."""
    command = read_command(site.argocd.namespace)
    try:
        if host is not None:
            return decode_password(read_command_output(host, command))
        with target_host(site) as connected:
            return decode_password(read_command_output(connected, command))
    except SecretReadError as exc:
        raise RemoteError(f"cannot read {INITIAL_SECRET}: {exc}") from None


def delete_initial_secret(site: Site, host: Host | None = None) -> None:
    command = delete_command(site.argocd.namespace)
    try:
        if host is not None:
            read_command_output(host, command)
            return
        with target_host(site) as connected:
            read_command_output(connected, command)
    except SecretReadError as exc:
        raise RemoteError(f"cannot delete {INITIAL_SECRET}: {exc}") from None
