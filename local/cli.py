"""The frame of every operator command: arguments, the site loaded once, one line per failure.

``python -m local COMMAND SITE [options]`` (the Make targets call it with their own names,
``make argocd/cluster/add`` runs ``python -m local argocd/cluster/add SITE``). ``local.commands``
declares each command as one function with ``@command``; this module parses the arguments,
loads and validates the site (its problems: exit 2), runs the command and turns an expected
failure (``tirosh.errors.OperatorError``, a Kubernetes API error) into one line on stderr and
exit 1. Nothing an operator can fix ends in a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from tirosh.errors import OperatorError
from tirosh.site import Site, SiteError, load_site

__all__ = ["COMMANDS", "Invocation", "command", "main", "option", "run"]


@dataclass(frozen=True)
class Invocation:
    """What a command gets: the validated site, the environment, its parsed options."""

    site: Site
    environ: Mapping[str, str]
    args: argparse.Namespace


Body = Callable[[Invocation], int]


@dataclass(frozen=True)
class Command:
    name: str
    body: Body
    help: str
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
    prefix: str = ""  # put before each failure line ("local phase: ")
    management_api: bool = False  # its Kubernetes API errors come from the management context


COMMANDS: dict[str, Command] = {}


def option(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """An argparse option of a command: ``option("--dry", action="store_true", help=...)``."""
    return flags, kwargs


def command(
    name: str,
    help: str,
    *options: tuple[tuple[str, ...], dict[str, Any]],
    prefix: str = "",
    management_api: bool = False,
) -> Callable[[Body], Body]:
    """Declare ``name`` (a Make target's name) as an operator command."""

    def register(body: Body) -> Body:
        COMMANDS[name] = Command(name, body, help, options, prefix, management_api)
        return body

    return register


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local",
        description="The operator commands, named as their Make targets: python -m local "
        "COMMAND SITE [options]. Site problems exit 2, failures an operator can fix exit 1.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in COMMANDS.values():
        sub = commands.add_parser(entry.name, help=entry.help, description=entry.help)
        sub.add_argument("site", help="a folder of sites/")
        for flags, kwargs in entry.options:
            sub.add_argument(*flags, **kwargs)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Parse, load the site once, run the command; the exit code (``local.commands.main``
    calls it once every command is declared)."""
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    try:
        # The commands do not install Argo CD: its manifest is checked, not parsed.
        site = load_site(args.site, environ=env, parse_manifest=False)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    for warning in site.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    entry = COMMANDS[args.command]
    context = site.argocd_context if entry.management_api else None
    return run(lambda: entry.body(Invocation(site, env, args)), entry.prefix, context)


def run(body: Callable[[], int], prefix: str = "", context: str | None = None) -> int:
    """Run ``body``; what an operator can fix becomes one line on stderr, not a traceback.

    + body: the command, returning its exit code
    + prefix: put before each failure line ("local phase: ")
    + context: the kubeconfig context a Kubernetes API error names

    A site file problem exits 2 (its ``file: key: problem`` lines), an ``OperatorError`` 1 with
    its line, a Kubernetes API error 1 with its status and reason only (its body may quote a
    Secret).
    """
    try:
        return body()
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OperatorError as exc:
        print(f"{prefix}{exc}", file=sys.stderr)
        return 1
    except client.ApiException as exc:
        where = f" (context {context})" if context else ""
        print(f"{prefix}Kubernetes API{where}: {exc.status} {exc.reason}", file=sys.stderr)
        return 1
