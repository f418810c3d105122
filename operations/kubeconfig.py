"""Pull a cluster's admin kubeconfig to the operator machine under a named context."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyinfra import host
from pyinfra.api import (
    FunctionCommand,
    Host,
    OperationError,
    QuoteString,
    State,
    StringCommand,
    operation,
)

from facts.kubeconfig import KubeconfigFile
from operations.util.quiet import read_secret_file, secret_fact
from tirosh import kubeconfig

logger = logging.getLogger("pyinfra")


@operation()
def pulled(
    remote_path: str,
    context: str,
    server: str,
    site_file: str | Path,
    merge_into: str | Path | None = None,
    current: bool = True,
):
    """
    Pull a k3s/rke2 admin kubeconfig, rename it to one context, write it and merge it locally.

    + remote_path: the kubeconfig on the host (``/etc/rancher/k3s/k3s.yaml``), read as root
    + context: name for the cluster, the user and the context (``tirosh-home/k3s``)
    + server: API URL the operator reaches the cluster at (in the serving certificate's SANs)
    + site_file: the per-site kubeconfig on the operator machine, written with mode 0600
    + merge_into: kubeconfig to merge into (``~/.kube/config``), backed up to ``.bak`` first;
      ``None`` writes only ``site_file``
    + current: make ``context`` the current context of ``merge_into`` when it has none (an
      existing current context is never changed)

    The file is read over the SSH session with output printing off (the fact
    ``KubeconfigFile`` through ``secret_fact``), so no copy is left on the host and the
    credentials do not appear in pyinfra's output at any verbosity. Entries of
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
    site_path = Path(site_file).expanduser()
    merge_path = None if merge_into is None else Path(merge_into).expanduser()
    pull = _Pull(remote_path, context, server, site_path, merge_path, current)
    # The credentials never travel in the command: it carries these plain values only.
    write = FunctionCommand(
        _write,
        (),
        {
            "remote_path": remote_path,
            "context": context,
            "server": server,
            "site_file": str(site_path),
            "merge_into": None if merge_path is None else str(merge_path),
            "current": current,
        },
    )
    text = secret_fact(host, KubeconfigFile, path=remote_path)
    if text is None:
        # Not there yet (k3s installs earlier in this run); it must be there by execute time.
        missing = QuoteString(f"{remote_path} does not exist")
        yield StringCommand(
            "test",
            "-e",
            QuoteString(remote_path),
            "||",
            "{",
            "echo",
            missing,
            ">&2;",
            "exit 1;",
            "}",
        )
        yield write
        return
    pending = pull.pending(text)
    if not pending:
        targets = ", ".join(str(p) for p in (pull.site_file, pull.merge_into) if p is not None)
        host.noop(f"context {context} is up to date in {targets}")
        return
    yield write


@dataclass(frozen=True)
class _Pull:
    """What to do with one cluster's kubeconfig; holds no credentials (pyinfra may print it)."""

    remote_path: str
    context: str
    server: str
    site_file: Path
    merge_into: Path | None
    current: bool

    def desired(self, text: str) -> dict[str, Any]:
        renamed = kubeconfig.rename(kubeconfig.from_text(text), self.context, self.server)
        if not self.current:
            # merge() takes current-context from the incoming file when the target has none.
            renamed["current-context"] = ""
        return renamed

    def pending(self, text: str) -> list[Path]:
        """The local files that would change."""
        desired = self.desired(text)
        pending = []
        # os.path and os.stat, as pyinfra's files operations use them (its fixture harness
        # fakes those for the operator machine's files).
        exists = os.path.exists(self.site_file)
        site_mode = os.stat(self.site_file).st_mode & 0o777 if exists else None
        try:
            current = kubeconfig.load(self.site_file)
        except ValueError:
            current = None  # a damaged copy of the deploy's own file is rewritten
        if current != desired or site_mode != 0o600:
            pending.append(self.site_file)
        if self.merge_into is not None:
            try:
                existing = kubeconfig.load(self.merge_into)
            except ValueError as error:
                # The operator's file is never overwritten when it cannot be read as a kubeconfig.
                raise OperationError(f"{self.merge_into}: {error}; fix or move it first") from None
            if existing is None or kubeconfig.merge(existing, desired) != existing:
                pending.append(self.merge_into)
        return pending


def _write(
    state: State,
    host: Host,
    remote_path: str,
    context: str,
    server: str,
    site_file: str,
    merge_into: str | None,
    current: bool,
) -> None:
    # Runs at execute time on the operator machine; reads the file again, never from arguments,
    # so the credentials are not in anything pyinfra prints.
    pull = _Pull(
        remote_path,
        context,
        server,
        Path(site_file),
        None if merge_into is None else Path(merge_into),
        current,
    )
    text = read_secret_file(host, pull.remote_path)
    if text is None:
        raise RuntimeError(f"{pull.remote_path} does not exist on {host.name}")
    desired = pull.desired(text)
    if kubeconfig.write_if_changed(pull.site_file, desired):
        logger.info(f"{host.print_prefix}wrote {pull.site_file} (context {pull.context})")
    if pull.merge_into is not None:
        result = kubeconfig.merge_into_file(pull.merge_into, desired)
        if result.changed:
            backup = f", backup {result.backup}" if result.backup else ""
            logger.info(
                f"{host.print_prefix}merged context {pull.context} into {pull.merge_into}{backup}"
            )
