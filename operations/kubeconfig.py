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
from facts.util.quiet import read_secret_file, secret_fact
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
    replace: bool | None = None,
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
    + replace: replace a same-named cluster, user or context of ``merge_into`` that points at
      another server or credentials; default from ``TIROSH_REPLACE_CONTEXTS`` (``true``), else
      the run stops and names the entries

    The file is read over the SSH session with output printing off (the fact
    ``KubeconfigFile`` through ``secret_fact``), so no copy is left on the host and the
    credentials do not appear in pyinfra's output at any verbosity. Entries of
    ``context`` replace same-named ones; every other entry and ``current-context`` are kept.
    A ``site_file`` or ``merge_into`` that exists and is not a kubeconfig (or is read-only, or
    not a regular file) stops the run and is left as it is.

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
    if replace is None:
        try:
            replace = kubeconfig.replace_requested(os.environ)
        except ValueError as error:
            raise OperationError(str(error)) from None
    site_path = Path(os.path.expanduser(site_file))
    merge_path = None if merge_into is None else Path(os.path.expanduser(merge_into))
    pull = _Pull(remote_path, context, server, site_path, merge_path, current, replace)
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
            "replace": replace,
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
    replace: bool = False

    def desired(self, text: str) -> dict[str, Any]:
        try:
            renamed = kubeconfig.rename(kubeconfig.from_text(text), self.context, self.server)
        except ValueError as error:
            # Not a kubeconfig we can rename (or a YAML bomb): one line, the host's path.
            raise OperationError(f"{self.remote_path}: {error}") from None
        if not self.current:
            # merge() takes current-context from the incoming file when the target has none.
            renamed["current-context"] = ""
        return renamed

    def pending(self, text: str) -> list[Path]:
        """The local files that would change. Refuses (before anything is written) a file that
        is not a kubeconfig, is read-only or holds same-named entries that point elsewhere."""
        desired = self.desired(text)
        pending = []
        # os.path and os.stat, as pyinfra's files operations use them (its fixture harness
        # fakes those for the operator machine's files).
        exists = os.path.exists(self.site_file)
        site_mode = os.stat(self.site_file).st_mode & 0o777 if exists else None
        current = _load(self.site_file)
        if current is not None and (foreign := kubeconfig.foreign_names(current, desired)):
            raise OperationError(
                f"{self.site_file}: holds entries this site does not write ({', '.join(foreign)});"
                " move it, or set another kubeconfig_path"
            )
        if current != desired or site_mode != 0o600:
            pending.append(_writable(self.site_file))
        if self.merge_into is not None:
            existing = _load(self.merge_into)
            if (
                existing is not None
                and not self.replace
                and (found := kubeconfig.conflicts(existing, desired))
            ):
                raise OperationError(
                    f"{self.merge_into}: {'; '.join(found)}; not replaced (set "
                    f"{kubeconfig.REPLACE_VARIABLE}=true to replace, or rename the context)"
                )
            if existing is None or kubeconfig.merge(existing, desired) != existing:
                pending.append(_writable(self.merge_into))
        return pending


def _load(path: Path) -> dict[str, Any] | None:
    # The operator's files are never overwritten when they cannot be read as a kubeconfig.
    # os.path.exists first: pyinfra's fixture harness fakes it (not os.open) for local files.
    if not os.path.exists(path):
        return None
    try:
        return kubeconfig.load(path)
    except ValueError as error:
        raise OperationError(f"{path}: {error}; fix or move it first") from None


def _writable(path: Path) -> Path:
    if not os.path.exists(path):  # as in _load
        return path
    try:
        kubeconfig.check_writable(path)
    except ValueError as error:
        raise OperationError(f"{path}: {error}") from None
    return path


def _write(
    state: State,
    host: Host,
    remote_path: str,
    context: str,
    server: str,
    site_file: str,
    merge_into: str | None,
    current: bool,
    replace: bool,
) -> bool:
    # Runs at execute time on the operator machine; reads the file again, never from arguments,
    # so the credentials are not in anything pyinfra prints.
    pull = _Pull(
        remote_path,
        context,
        server,
        Path(site_file),
        None if merge_into is None else Path(merge_into),
        current,
        replace,
    )
    text = read_secret_file(host, pull.remote_path)
    if text is None:
        raise RuntimeError(f"{pull.remote_path} does not exist on {host.name}")
    try:
        desired = pull.desired(text)
    except OperationError as error:
        logger.error(f"{host.print_prefix}{error}")
        return False
    path = pull.site_file
    try:
        if kubeconfig.write_if_changed(path, desired):
            logger.info(f"{host.print_prefix}wrote {path} (context {pull.context})")
        if pull.merge_into is not None:
            path = pull.merge_into
            # Checked again under the lock: the file may have changed since the plan.
            result = kubeconfig.merge_into_file(path, desired, replace=pull.replace)
            if result.changed:
                backup = f", backup {result.backup}" if result.backup else ""
                logger.info(f"{host.print_prefix}merged context {pull.context} into {path}{backup}")
    except (ValueError, kubeconfig.LockTimeout) as error:
        # Refused, the file left as it was: a one-line reason instead of a traceback.
        logger.error(f"{host.print_prefix}{path}: {error}")
        return False
    except OSError as error:  # e.g. no permission to create <file>.lock in that directory
        logger.error(f"{host.print_prefix}{path}: {error.strerror} ({error.filename})")
        return False
    return True
