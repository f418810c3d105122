"""Run an operator command as a subprocess and watch where its secrets go.

``run()`` samples every process's command line (/proc/*/cmdline, what ``ps`` shows) while the
command runs, and the environment of every child tool it starts (kubectl, ssh, ssh-keygen, git:
/proc/*/environ); ``leaks()`` reports every canary found in its output, in those samples, or in
a file written under the given directories that is not mode 0600.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lab.config import REPO_ROOT


@dataclass
class Run:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    command_lines: set[str] = field(default_factory=set)
    started: float = 0.0
    child_environments: set[str] = field(default_factory=set)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


CHILD_TOOLS = ("kubectl", "ssh", "ssh-keygen", "git")


def _command_lines(environments: set[str] | None = None) -> set[str]:
    lines = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
                tool = Path(raw.split(b"\0", 1)[0].decode(errors="replace")).name
                if environments is not None and tool in CHILD_TOOLS:
                    environ = (entry / "environ").read_bytes()
                    environments.add(environ.replace(b"\0", b"\n").decode(errors="replace"))
            except OSError:
                continue
            lines.add(raw.replace(b"\0", b" ").decode(errors="replace"))
    return lines


def run(
    module: str, *args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 300
) -> Run:
    """``python -m module args`` from the repository root; samples ``ps`` every 20 ms."""
    argv = [sys.executable, "-m", module, *args]
    samples: set[str] = set()
    environments: set[str] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.update(_command_lines(environments))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.time()
    sampler.start()
    try:
        result = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin if stdin is not None else "",
        )
    finally:
        done.set()
        sampler.join()
    return Run(
        argv, result.returncode, result.stdout, result.stderr, samples, started, environments
    )


def written_files(directories: Iterable[Path], since: float) -> list[Path]:
    found = []
    for directory in directories:
        for path in directory.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since - 1:
                    found.append(path)
            except OSError:
                continue
    return found


def leaks(result: Run, canaries: Iterable[str], directories: Iterable[Path] = ()) -> list[str]:
    """Where any canary appeared: output, command lines, or a non-0600 file written since."""
    found = []
    files = written_files(directories, result.started)
    for canary in canaries:
        if canary in result.output:
            found.append(f"output has {canary[:6]}...")
        for line in result.command_lines:
            if canary in line:
                found.append(f"command line has {canary[:6]}...: {line[:80]}")
        for environ in result.child_environments:
            if canary in environ:
                found.append(f"a child tool's environment has {canary[:6]}...")
        for path in files:
            if path.stat().st_mode & 0o077 and canary.encode() in path.read_bytes():
                found.append(
                    f"{path} (mode {oct(path.stat().st_mode & 0o777)}) has {canary[:6]}..."
                )
    return found
