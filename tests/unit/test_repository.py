"""The repository is self-contained and keeps what a run writes out of git."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests" / "argocd"


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [REPO / name for name in out.split("\0") if name]


def test_vendored_manifests_match_their_pinned_digests() -> None:
    lines = (MANIFESTS / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256((MANIFESTS / name).read_bytes()).hexdigest() == digest, name


def test_no_tracked_file_reads_a_path_outside_the_checkout() -> None:
    # A clone has no sibling folders: code, site files and tests must not reach for one.
    outside = re.compile(r"\.\./shared|REPO_ROOT\.parent|parents\[3\]|\.\./\.\./")
    suffixes = {".py", ".yml", ".yaml", ".toml", ".sh", ".mk"}
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in _tracked_files()
        if path.suffix in suffixes or path.name in {"Makefile", "run"}
        if path.is_file() and path != Path(__file__).resolve()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if outside.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "written",
    [
        "pyinfra-debug.log",
        ".env",
        ".env.local",
        ".lab/ssh/id_ed25519",
        "lab.kubeconfig",
        "config.bak",
        ".venv/bin/python",
    ],
)
def test_files_a_run_writes_under_the_checkout_are_git_ignored(written: str) -> None:
    path = _as_git_sees_it(written)
    result = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, check=False
    )
    assert result.returncode == 0, f"{written} would show up in git status"


def _as_git_sees_it(written: str) -> str:
    # git does not look past a symbolic link ("beyond a symbolic link"): where a leading folder
    # is one (a worktree's .venv linked to another checkout's), the link itself must be ignored.
    parts = Path(written).parts
    for end in range(1, len(parts)):
        if (REPO.joinpath(*parts[:end])).is_symlink():
            return "/".join(parts[:end])
    return written


def test_the_readme_layout_table_matches_the_tree() -> None:
    # The Overview table: every path it names exists, and every top-level folder has a row.
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| path | what |") : readme.index("The flow of")]
    named = [line.split("`")[1] for line in table.splitlines()[2:] if line.startswith("| `")]
    assert all((REPO / path.replace("<site>", "lab")).exists() for path in named), named
    folders = {path.parts[0] for path in (p.relative_to(REPO) for p in _tracked_files())}
    folders = {f for f in folders if (REPO / f).is_dir()}
    assert folders <= {path.split("/")[0] for path in named}
