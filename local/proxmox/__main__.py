"""``python -m local.proxmox plan|apply|inventory SITE``: the site's VMs on Proxmox VE.

plan: per VM create / update (field by field) / unchanged, or refused with the reason; nothing
changes. apply: the plan, then clone, configure, grow, start, and each VM's address.
inventory: the guest agents' addresses written into inventory.toml's ansible_host (a diff and
a backup first; --dry shows the diff only). The token secret comes from PROXMOX_TOKEN_SECRET.
Exit 2 for site problems, 1 for failures the operator can fix (PVE's answer, TLS, a refusal).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from local import cli
from local.proxmox.commands import Options, run_apply, run_inventory, run_plan
from local.proxmox.connection import ProxmoxError

COMMANDS = {"plan": run_plan, "apply": run_apply, "inventory": run_inventory}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.proxmox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=tuple(COMMANDS))
    parser.add_argument("site")
    parser.add_argument(
        "--restart",
        action="store_true",
        help="allow shutting down and starting a running VM for a change",
    )
    parser.add_argument("--dry", action="store_true", help="inventory: show the diff only")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log each API request (-vv: with its form fields)",
    )
    args = parser.parse_args(argv)
    env, site = cli.site_and_environ(args.site, environ)
    if site is None:
        return 2
    options = Options(restart=args.restart, dry=args.dry, verbose=args.verbose)
    command = COMMANDS[args.command]
    return cli.reported(
        lambda: command(site, env, options, sys.stdout, sys.stderr),
        (ProxmoxError,),
        prefix="proxmox: ",
    )


if __name__ == "__main__":
    raise SystemExit(main())
