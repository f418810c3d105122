"""Pull a cluster's admin kubeconfig to the operator machine under a named context."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import FunctionCommand, Host, QuoteString, State, StringCommand, operation

from facts.secrets import read_secret_file
from tirosh import kubeconfig

logger = logging.getLogger("pyinfra")


@operation()
def pulled(
    remote_path: str,
    context: str,
    server: str,
    site_file: str | Path,
    merge_into: str | Path | None = None,
):
    """
    Pull a k3s/rke2 admin kubeconfig, rename it to one context, write it and merge it locally.

    + remote_path: the kubeconfig on the host (``/etc/rancher/k3s/k3s.yaml``), read as root
    + context: name for the cluster, the user and the context (``tirosh-home/k3s``)
    + server: API URL the operator reaches the cluster at (in the serving certificate's SANs)
    + site_file: the per-site kubeconfig on the operator machine, written with mode 0600
    + merge_into: kubeconfig to merge into (``~/.kube/config``), backed up to ``.bak`` first;
      ``None`` writes only ``site_file``

    The file is read over the SSH session with output printing off, so no copy is left on the
    host and the credentials do not appear in pyinfra's output at any verbosity. Entries of
    ``context`` replace same-named ones; every other entry and ``current-context`` are kept.

    **Example:**

    .. code:: python

        kubeconfig.pulled(
            name="Merge the k3s kubeconfig",
            remote_path="/etc/rancher/k3s/k3s.yaml",
            context="tirosh-home/k3s",
            server="https://k3s.internal.tirosh.ai:6443",
            site_file="~/.kube/tirosh-home.yml",
            merge_into="~/.kube/config",
        )
    """
    args = (
        remote_path,
        context,
        server,
        str(site_file),
        None if merge_into is None else str(merge_into),
    )
    text = read_secret_file(host, remote_path)
    if text is None:
        # Not there yet (k3s installs earlier in this run); it must be there by execute time.
        yield StringCommand(
            "test",
            "-e",
            QuoteString(remote_path),
            "||",
            "{",
            "echo",
            QuoteString(f"{remote_path} does not exist"),
            ">&2;",
            "exit",
            "1;",
            "}",
        )
        yield FunctionCommand(_write, args, {})
        return
    pending = _pending_writes(_renamed(text, context, server), *args[3:])
    if not pending:
        host.noop(f"context {context} is up to date in {', '.join(_targets(*args[3:]))}")
        return
    yield FunctionCommand(_write, args, {})


def _renamed(text: str, context: str, server: str) -> dict[str, Any]:
    return kubeconfig.rename(kubeconfig.from_text(text), context, server)


def _targets(site_file: str, merge_into: str | None) -> list[str]:
    return [site_file] if merge_into is None else [site_file, merge_into]


def _pending_writes(desired: dict[str, Any], site_file: str, merge_into: str | None) -> list[str]:
    pending = []
    site_path = Path(site_file).expanduser()
    if kubeconfig.load(site_path) != desired or _mode(site_path) != 0o600:
        pending.append(site_file)
    if merge_into is not None:
        merge_path = Path(merge_into).expanduser()
        existing = kubeconfig.load(merge_path)
        if existing is None or kubeconfig.merge(existing, desired) != existing:
            pending.append(merge_into)
    return pending


def _mode(path: Path) -> int | None:
    return path.stat().st_mode & 0o777 if path.exists() else None


def _write(
    state: State,
    host: Host,
    remote_path: str,
    context: str,
    server: str,
    site_file: str,
    merge_into: str | None,
) -> None:
    # Runs at execute time on the operator machine; reads the file again, never from arguments,
    # so the credentials are not in anything pyinfra prints.
    text = read_secret_file(host, remote_path)
    if text is None:
        raise RuntimeError(f"{remote_path} does not exist on {host.name}")
    desired = _renamed(text, context, server)
    if kubeconfig.write_if_changed(Path(site_file).expanduser(), desired):
        logger.info(f"{host.print_prefix}wrote {site_file} (context {context})")
    if merge_into is not None:
        result = kubeconfig.merge_into_file(Path(merge_into).expanduser(), desired)
        if result.changed:
            backup = f", backup {result.backup}" if result.backup else ""
            logger.info(f"{host.print_prefix}merged context {context} into {merge_into}{backup}")
