"""``python -m tirosh.site validate|render|get|export|require-rke2 SITE``: check or show a site."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from tirosh import kubeconfig
from tirosh.site.load import load_or_report
from tirosh.site.model import Site, to_dict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tirosh.site", description="Validate or show a site under sites/."
    )
    parser.add_argument("--repo-root", type=Path, default=None, help="directory holding sites/")
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in (
        ("validate", "check every file of the site"),
        ("render", "print the resolved site as JSON"),
        ("export", "print `export KUBECONFIG=...`: the merge target, then the site's files"),
        ("require-rke2", "fail with a clear message when the site has no rke2 VM"),
        ("get", "print one resolved value, e.g. argocd.rollout_timeout or argocd_context"),
    ):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("site")
        if command == "get":
            sub.add_argument("key")
    args = parser.parse_args(argv)
    site = load_or_report(args.site, args.repo_root)
    if site is None:
        return 1
    if args.command == "validate":
        print(f"site {site.name}: ok ({len(site.vms)} vms)")
    elif args.command == "export":
        return _print_export(site)
    elif args.command == "get":
        value: Any = site
        for part in args.key.split("."):
            if not hasattr(value, part):
                print(f"site {site.name}: no value {args.key!r}", file=sys.stderr)
                return 2
            value = getattr(value, part)
        print(value)
    elif args.command == "require-rke2":
        if site.rke2_vm is None:
            print(
                f"site {site.name}: no VM in sites/{site.name}/inventory.toml has the rke2 "
                "workload, so there is no rke2 kubeconfig to merge",
                file=sys.stderr,
            )
            return 1
    else:
        print(json.dumps(to_dict(site), indent=2))
    return 0


def _print_export(site: Site) -> int:
    """``export KUBECONFIG=<first>:<site files>``. The first entry is the file kubectl writes
    and the loader merges into (the operator's KUBECONFIG list, else kube.kubeconfig), so later
    commands in the same shell still validate; the site's files add its contexts."""
    current = [e for e in os.environ.get("KUBECONFIG", "").split(os.pathsep) if e]
    first = [Path(e) for e in current] or [site.kubeconfig]
    files = [site.k3s.kubeconfig_path]
    if site.rke2_vm is not None:
        files.append(site.rke2.kubeconfig_path)
    try:
        value = kubeconfig.export_list(first, files)
    except ValueError as error:
        print(f"site {site.name}: {error}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
