"""lab/progress.py: what a build shows on a terminal (a pty) and in a pipe, by content.

Each test runs a small build in a child process whose parts are real work: one is cached, one
writes a file, and in the failing case one runs a command that prints Go-style download chatter
and fails, through the same ``build.run_logged`` the lab's Go builds use.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terminal import run_in_a_terminal

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
from pathlib import Path
from lab import build, progress

work, outcome = Path(sys.argv[1]), sys.argv[2]
parts = [
    progress.Part("alpha", "alpha", "one", cached=True),
    progress.Part("beta", "beta", "one"),
    progress.Part("gamma", "gamma", "two"),
    progress.Part("pack", "pack", progress.AFTER),
]
shown = progress.Progress(parts, durations=work / "durations.json", logs=work / "logs")
shown.start()

def gamma():
    script = "for i in $(seq 40); do printf 'go: %s example.org/m%s v1\\n' downloading $i; done; "
    script += "echo 'cmd/x: undefined: Thing' >&2; exit 3" if outcome == "fail" else "true"
    build.run_logged(["sh", "-c", script], work / "logs" / "gamma.log", "go build ./cmd/x")
    return work

try:
    shown.run("alpha", lambda: work)
    shown.run("beta", lambda: (work / "beta").write_text("built") and work)
    shown.run("gamma", gamma)
    shown.run("pack", lambda: work)
except build.BuildError as error:
    shown.finish(failed=True)
    print(f"lab: {error}", file=sys.stderr)
    raise SystemExit(1)
shown.finish()
"""


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    return {**env, "PYTHONPATH": str(REPO), "TERM": "xterm", **extra}


def in_a_pipe(work: Path, outcome: str, **env: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(work), outcome],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=_environment(**env),
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout.decode()


def in_a_terminal(work: Path, outcome: str, **env: str) -> tuple[int, str]:
    argv = [sys.executable, "-c", DRIVER, str(work), outcome]
    return run_in_a_terminal(argv, _environment(**env))


def test_a_pipe_gets_plain_lines_one_per_change(tmp_path: Path) -> None:
    code, output = in_a_pipe(tmp_path, "ok")
    assert code == 0, output
    assert "\x1b" not in output and "\r" not in output
    lines = output.splitlines()
    assert lines[0].startswith("lab build: 4 parts, 1 cached; ≈ ")
    assert "(from the project's CI machine)" in lines[0]
    assert f"the Go tool's output goes to {tmp_path / 'logs'}" in lines[0]
    assert lines[1] == "lab build: alpha: cached"
    assert re.fullmatch(
        r"lab build: beta: building \(≈ .+\)  \[elapsed 0:\d\d, ≈ .+ left\]", lines[2]
    )
    assert re.fullmatch(r"lab build: beta: done in \d+ s  \[elapsed .+\]", lines[3])
    assert [line.split(":")[1].strip() for line in lines[1:-1]] == [
        "alpha",
        "beta",
        "beta",
        "gamma",
        "gamma",
        "pack",
        "pack",
    ]
    assert re.fullmatch(r"lab build: finished in \d+ s \(3 built, 1 cached\)", lines[-1])
    # The download chatter went to the part's log, not to the output.
    assert "go: downloading" not in output
    logged = (tmp_path / "logs" / "gamma.log").read_text().splitlines()
    assert sum(line.startswith("go: downloading ") for line in logged) == 40


def test_a_failure_names_the_part_and_its_log_and_quotes_the_error_not_the_chatter(
    tmp_path: Path,
) -> None:
    code, output = in_a_pipe(tmp_path, "fail")
    assert code == 1
    assert re.search(r"^lab build: gamma: failed after \d+ s", output, re.M)
    assert re.search(r"^lab build: FAILED after \d+ s: gamma$", output, re.M)
    log = tmp_path / "logs" / "gamma.log"
    assert f"lab: go build ./cmd/x failed (exit 3); full output: {log}" in output
    assert "    cmd/x: undefined: Thing" in output
    assert "go: downloading" not in output
    assert "pack" not in output.split("FAILED")[0].split("gamma: failed")[1]


def test_durations_are_kept_for_the_next_estimate(tmp_path: Path) -> None:
    in_a_pipe(tmp_path, "ok")
    kept = json.loads((tmp_path / "durations.json").read_text())
    assert set(kept) == {"beta", "gamma", "pack"}  # what was built; alpha was cached
    code, output = in_a_pipe(tmp_path, "ok")
    assert code == 0
    assert "(from earlier builds here)" in output.splitlines()[0]


def test_a_terminal_gets_one_line_per_part_under_a_progress_bar(tmp_path: Path) -> None:
    code, output = in_a_terminal(tmp_path, "ok")
    assert code == 0, output
    assert "\x1b[2K" in output  # lines are cleared and redrawn in place
    assert re.search(r"\x1b\[5F", output)  # back over the 4 parts and the bar
    # The last drawing of the block: each part's final state, then a full bar.
    last = output[output.rindex("\x1b[J") :].replace("\x1b[J", "").replace("\x1b[2K", "")
    block = last.splitlines()
    assert block[0] == "  = alpha: cached"
    assert re.fullmatch(r"  \+ beta: done in \d+ s", block[1])
    assert re.fullmatch(r"  \+ gamma: done in \d+ s", block[2])
    assert re.fullmatch(r"  \+ pack: done in \d+ s", block[3])
    assert re.fullmatch(r"\[#{30}\] 100%  elapsed 0:\d\d, ≈ 0 s left", block[4])
    assert re.fullmatch(r"lab build: finished in \d+ s \(3 built, 1 cached\)", block[5])
    # Plain lines are not printed on a terminal: the block stands for them.
    assert "lab build: alpha: cached" not in output
    assert "go: downloading" not in output


def test_a_failure_on_a_terminal_marks_the_part_and_names_the_log(tmp_path: Path) -> None:
    code, output = in_a_terminal(tmp_path, "fail")
    assert code == 1
    assert re.search(r"  ! gamma: failed after \d+ s", output)
    assert re.search(r"^\x1b\[2K {4}pack: waiting \(≈ .+\)$", output, re.M)
    assert f"full output: {tmp_path / 'logs' / 'gamma.log'}" in output


@pytest.mark.parametrize("env", [{"CI": "true"}, {"TERM": "dumb"}], ids=["ci", "dumb-terminal"])
def test_ci_and_dumb_terminals_get_plain_lines_even_on_a_pty(
    tmp_path: Path, env: dict[str, str]
) -> None:
    code, output = in_a_terminal(tmp_path, "ok", **env)
    assert code == 0
    assert "\x1b" not in output
    assert "lab build: alpha: cached\n" in output
