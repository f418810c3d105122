"""Benchmark: a no-op re-deploy and a --dry plan against the running lab.

    python -m bench.deploy [--runs N]

Prints wall time and how many commands went to the hosts over SSH, counted at paramiko's
exec_command, so facts, operations and the deploy's quiet reads all count. Needs `make lab-up`
and one deploy before it (it runs one first if the VM has no k3s yet). Not a test: it asserts
nothing and is not run by `make test`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO

from gevent import monkey

monkey.patch_all()

import paramiko  # noqa: E402
import pyinfra  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from pyinfra_cli.cli import cli  # noqa: E402

_count = {"commands": 0}
_exec_command = paramiko.SSHClient.exec_command


def _counting_exec_command(self, *args, **kwargs):
    _count["commands"] += 1
    return _exec_command(self, *args, **kwargs)


paramiko.SSHClient.exec_command = _counting_exec_command  # type: ignore[method-assign]
# What pyinfra_cli.main does before it runs the CLI (local.include needs it).
pyinfra.is_cli = True


def run(*args: str) -> tuple[float, int, int]:
    """Run the pyinfra CLI in this process; return (seconds, remote commands, exit code)."""
    _count["commands"] = 0
    started = time.perf_counter()
    with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return time.perf_counter() - started, _count["commands"], result.exit_code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--site", default="lab")
    options = parser.parse_args()
    inventory = f"inventories/{options.site}.py"
    seconds, commands, code = run("-y", inventory, "deploy.py")
    print(f"warm-up deploy: {seconds:.2f} s, {commands} remote commands, exit {code}")
    for label, args in (
        ("no-op re-deploy (pyinfra -y)", ("-y", inventory, "deploy.py")),
        ("plan (--dry)", (inventory, "deploy.py", "--dry")),
    ):
        results = [run(*args) for _ in range(options.runs)]
        walls = [r[0] for r in results]
        print(
            f"{label}: median {statistics.median(walls):.2f} s "
            f"(min {min(walls):.2f}, max {max(walls):.2f}, {options.runs} runs), "
            f"{results[-1][1]} remote commands, exit codes {sorted({r[2] for r in results})}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
