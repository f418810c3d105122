"""Command lines of the management VM's own kubectl (``k3s kubectl``), written once.

Every write is a server-side apply under a named field manager with ``--force-conflicts``: the
deploy owns the fields it sets and takes them back after a hand edit; client-side apply cannot
store the ApplicationSet CRD (too large for the last-applied annotation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyinfra.api import QuoteString, StringCommand

from tirosh import k3s

KUBECTL = StringCommand(QuoteString(k3s.BINARY_PATH), "kubectl")

# An argument as given: a StringCommand or a flag is used as is, other text is quoted.
Argument = str | QuoteString | StringCommand


def _namespaced(namespace: str | None) -> list[Argument]:
    return [] if namespace is None else ["-n", QuoteString(namespace)]


def server_side(
    verb: str,
    manager: str,
    source: Argument,
    namespace: str | None = None,
    selector: str | None = None,
) -> StringCommand:
    """``kubectl apply|diff --server-side --force-conflicts --field-manager=M [-n NS] [-l SEL]
    -f SOURCE``.

    + verb: ``apply``, or ``diff`` for what an apply would change
    + manager: the field manager the fields are applied under
    + source: the manifest file on the VM, or ``-`` for standard input
    + namespace: for objects whose manifest names no namespace
    + selector: only the objects of the source with these labels
    """
    return StringCommand(
        KUBECTL,
        verb,
        "--server-side",
        "--force-conflicts",
        f"--field-manager={manager}",
        *_namespaced(namespace),
        *(["-l", QuoteString(selector)] if selector else []),
        "-f",
        source,
    )


def apply_json(obj: Mapping[str, Any], manager: str) -> StringCommand:
    """Server-side apply of one object given as data (sent on the command's standard input)."""
    return StringCommand(
        "echo",
        QuoteString(json.dumps(obj, separators=(",", ":"))),
        "|",
        server_side("apply", manager, "-"),
    )


def get(
    *what: Argument,
    namespace: str | None = None,
    options: tuple[Argument, ...] = (),
    kubectl: StringCommand | None = None,
) -> StringCommand:
    """``kubectl [-n NS] get WHAT... OPTIONS...``; names are quoted, options used as given.

    + kubectl: the kubectl to run (default ``KUBECTL``, the VM's ``k3s kubectl``)
    """
    base = KUBECTL if kubectl is None else kubectl
    return StringCommand(base, *_namespaced(namespace), "get", *_quoted(what), *options)


def delete(
    resource: str,
    name: str,
    namespace: str,
    *,
    ignore_not_found: bool = False,
    kubectl: StringCommand | None = None,
) -> StringCommand:
    """``kubectl -n NS delete RESOURCE NAME [--ignore-not-found]``."""
    flags = ["--ignore-not-found"] if ignore_not_found else []
    base = KUBECTL if kubectl is None else kubectl
    return StringCommand(
        base, *_namespaced(namespace), "delete", QuoteString(resource), QuoteString(name), *flags
    )


def _quoted(values: tuple[Argument, ...]) -> list[Argument]:
    return [QuoteString(v) if isinstance(v, str) else v for v in values]
