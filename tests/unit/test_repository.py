"""The repository is self-contained and keeps what a run writes out of git."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests" / "argocd"


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [REPO / name for name in out.split("\0") if name]


def _pins() -> dict[str, str]:
    """manifests/argocd/SHA256SUMS: file name -> sha256."""
    lines = (MANIFESTS / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines)}


def test_vendored_manifests_match_their_pinned_digests() -> None:
    pins = _pins()
    shipped = {p.name for p in MANIFESTS.iterdir()} - {"README.md", "SHA256SUMS"}
    assert set(pins) == shipped  # every file pinned, every pin shipped
    for name, digest in pins.items():
        assert hashlib.sha256((MANIFESTS / name).read_bytes()).hexdigest() == digest, name


def test_every_manifest_named_anywhere_is_shipped_and_every_pin_named_is_its_own() -> None:
    """Site files, docs, code and tests name manifests by file (install-v3.5.8.yaml) and pin
    them by sha256: each name must be a shipped file, and a sha256 written next to a release's
    name anywhere (a site's vars.yml, the README's table) must be that release's pin."""
    pins = _pins()
    by_version = {
        name[len("install-") : -len(".yaml")]: d
        for name, d in pins.items()
        if name.startswith("install-")
    }
    named = re.compile(r"install-(v\d+\.\d+\.\d+)\.yaml")
    digest = re.compile(r"\b[0-9a-f]{64}\b")
    version = re.compile(r"\bv3\.\d+\.\d+\b")
    checked = 0
    for path in _tracked_files():
        if path.suffix not in {".py", ".yml", ".yaml", ".md", ".toml"} or MANIFESTS in path.parents:
            continue
        text = path.read_text(errors="replace")
        for found in named.findall(text):
            assert f"install-{found}.yaml" in pins, f"{path.relative_to(REPO)} names {found}"
        for number, line in enumerate(text.splitlines(), 1):
            mentions = [(m.start(), m.group()) for m in version.finditer(line)]
            for found_digest in digest.finditer(line):
                sha = found_digest.group()
                if sha not in by_version.values():
                    continue  # another file's digest (k3s, the swagger, a fixture's own data)
                # The release it belongs to: the one named last before it on the line, else
                # the first after it (`echo '<sha>  .../install-v3.5.1.yaml'`).
                before = [v for at, v in mentions if at < found_digest.start()]
                after = [v for at, v in mentions if at > found_digest.start()]
                named_with = before[-1] if before else (after[0] if after else None)
                if named_with is None:
                    continue  # alone on its line (a site's vars.yml: the test below)
                where = f"{path.relative_to(REPO)}:{number}"
                assert by_version.get(named_with) == sha, f"{where}: {named_with}: {line.strip()}"
                checked += 1
    assert checked >= 4


def test_each_site_pins_the_shipped_manifest_of_its_version() -> None:
    pins = _pins()
    for vars_file in sorted(REPO.glob("sites/*/argocd/vars.yml")):
        data = yaml.safe_load(vars_file.read_text())
        version = data["argocd_version"]
        assert data.get("argocd_manifest_sha256") == pins[f"install-{version}.yaml"], vars_file
        if "argocd_manifest_file" in data:
            assert data["argocd_manifest_file"] == f"manifests/argocd/install-{version}.yaml"


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


def test_the_license_is_apache_2_0_and_named_in_the_readme_and_the_project_metadata() -> None:
    import tomllib

    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n                           Version 2.0")
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "[Apache License 2.0](LICENSE)" in (REPO / "README.md").read_text()
