"""The operator's kubeconfig files under links, a full disk, a kill -9 mid-merge, and YAML bombs.

Backups never follow links and go where the README says (``~/.kube/config.bak``); no lock or
temporary file outlives a failed or killed merge (the next run cleans up, never a live
process's files); alias and depth bombs are refused before PyYAML builds them. The full disk is
``RLIMIT_FSIZE`` in a real child process (writes fail as they do on a full disk); the kill is a
real SIGKILL of a real child paused at a known write (its ``os.fsync`` blocks: the one
constructed part, named as such).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyinfra.api import OperationError

from operations.kubeconfig import _load, _Pull
from tests.unit.test_kubeconfig import renamed
from tirosh import kubeconfig, kubeconfig_lock, kubeconfig_yaml

REPO = Path(__file__).resolve().parents[2]
KUBECTL = Path(sys.executable).parent / "kubectl"


def operator_file(path: Path, name: str = "work", size: int = 0) -> bytes:
    """An operator kubeconfig with one context of its own (and ``size`` bytes of key data)."""
    config = kubeconfig.merge(None, renamed(name, f"https://{name}.example:6443"))
    config["users"][0]["user"]["client-key-data"] = "A" * size + "ZmFrZQ=="
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubeconfig.dump(config))
    path.chmod(0o600)
    return path.read_bytes()


def leftovers(*directories: Path) -> list[str]:
    """Locks and temporary files in the directories."""
    return sorted(
        entry.name
        for directory in directories
        for entry in directory.iterdir()
        if entry.name.endswith((".lock", ".break")) or ".tmp-" in entry.name
    )


@pytest.fixture(autouse=True)
def _new_run() -> None:
    kubeconfig.new_run()


# --------------------------------------------------------------------------- backups and links


def test_a_symlinked_backup_is_replaced_not_followed(tmp_path: Path) -> None:
    config = tmp_path / ".kube" / "config"
    before = operator_file(config)
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA operator\n")
    (tmp_path / ".kube" / "config.bak").symlink_to(victim)
    result = kubeconfig.merge_into_file(config, renamed())
    assert result.backup == tmp_path / ".kube" / "config.bak"
    assert victim.read_text() == "ssh-ed25519 AAAA operator\n"
    assert not result.backup.is_symlink()
    assert result.backup.read_bytes() == before
    assert result.backup.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("backup_is_a_link", [False, True])
def test_a_config_linked_into_dotfiles_is_backed_up_beside_the_link(
    tmp_path: Path, backup_is_a_link: bool
) -> None:
    dotfiles = tmp_path / "dotfiles"
    before = operator_file(dotfiles / "kubeconfig")
    config = tmp_path / ".kube" / "config"
    config.parent.mkdir()
    config.symlink_to(dotfiles / "kubeconfig")
    if backup_is_a_link:
        (tmp_path / ".kube" / "config.bak").symlink_to(dotfiles / "kubeconfig")
    result = kubeconfig.merge_into_file(config, renamed())
    # Where the README says: ~/.kube/config.bak; the link itself and its target's place kept.
    assert result.backup == tmp_path / ".kube" / "config.bak"
    assert result.backup.read_bytes() == before
    assert config.is_symlink()
    merged = kubeconfig.load(dotfiles / "kubeconfig")
    assert merged is not None
    assert {c["name"] for c in merged["contexts"]} == {"work", "lab/k3s"}
    assert sorted(p.name for p in dotfiles.iterdir()) == ["kubeconfig"]
    assert leftovers(dotfiles, config.parent) == []


# --------------------------------------------------------------------------- a full disk

CHILD_MERGE = """
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.unit.test_kubeconfig import renamed
from tirosh import kubeconfig
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.RLIM_INFINITY))
try:
    kubeconfig.merge_into_file(Path({path!r}), renamed())
except OSError as error:
    print("refused", error.strerror)
    sys.exit(3)
print("merged")
"""


# 0: even the lock's owner line cannot be written; 300: the lock can, the 20 KB backup cannot;
# -1: the backup can (its size and a little), the merged file (one context more) cannot.
@pytest.mark.parametrize("limit", [0, 300, -1])
def test_a_full_disk_leaves_no_lock_and_no_temporary_file(tmp_path: Path, limit: int) -> None:
    config = tmp_path / ".kube" / "config"
    before = operator_file(config, size=20_000)
    if limit < 0:
        limit = len(before) + 100
    child = subprocess.run(
        [sys.executable, "-c", CHILD_MERGE.format(repo=str(REPO), limit=limit, path=str(config))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 3, child.stdout + child.stderr
    assert "Traceback" not in child.stderr
    assert config.read_bytes() == before
    assert leftovers(config.parent) == []
    # And the next merge (disk free again) does not wait for a lock nobody holds.
    kubeconfig.merge_into_file(config, renamed(), replace=False)
    assert leftovers(config.parent) == []


# --------------------------------------------------------------------------- kill -9 mid-merge

CHILD_PAUSED = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from tests.unit.test_kubeconfig import renamed
from tirosh import kubeconfig
calls = 0
real = os.{call}
def paused(*args):
    # Constructed pause: the {pause}th os.{call} of the merge blocks, so the kill lands there.
    global calls
    calls += 1
    if calls == {pause}:
        print("paused", flush=True)
        time.sleep(600)
    return real(*args)
os.{call} = paused
kubeconfig.merge_into_file(Path({path!r}), renamed())
"""


# fsync 1: the backup's temporary file is written; 3: the merged file's temporary file is.
@pytest.mark.parametrize("pause", [1, 3])
def test_a_merge_killed_mid_write_is_cleaned_up_by_the_next_run(tmp_path: Path, pause: int) -> None:
    config = tmp_path / ".kube" / "config"
    before = operator_file(config, size=4000)
    script = CHILD_PAUSED.format(repo=str(REPO), call="fsync", pause=pause, path=str(config))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "paused\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    left = leftovers(config.parent)
    assert "config.lock" in left
    assert any(".tmp-" in name for name in left), left  # the 0600 copy with the client key
    assert config.read_bytes() == before
    result = kubeconfig.merge_into_file(config, renamed())
    assert result.changed
    assert leftovers(config.parent) == []
    assert (config.parent / "config.bak").read_bytes() == before
    merged = kubeconfig.load(config)
    assert merged is not None
    assert {c["name"] for c in merged["contexts"]} == {"work", "lab/k3s"}


def test_a_merge_killed_while_taking_the_lock_leaves_no_lock(tmp_path: Path) -> None:
    config = tmp_path / ".kube" / "config"
    before = operator_file(config)
    # The 1st os.link is the lock's: its owner line is written, the lock not yet there.
    script = CHILD_PAUSED.format(repo=str(REPO), call="link", pause=1, path=str(config))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "paused\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    left = leftovers(config.parent)
    assert len(left) == 1 and left[0].startswith(".config.lock.tmp-"), left
    # kubectl is not blocked by it (no config.lock), and it is no secret; the next merge
    # removes it once it is older than any live creator keeps one.
    os.utime(config.parent / left[0], (0, 0))
    kubeconfig.merge_into_file(config, renamed())
    assert leftovers(config.parent) == []
    assert (config.parent / "config.bak").read_bytes() == before


def test_a_live_processs_temporary_file_and_lock_temp_are_left_alone(tmp_path: Path) -> None:
    config = tmp_path / ".kube" / "config"
    operator_file(config)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        names = [
            f".config.tmp-{live.pid}-0123abcd",
            f".config.lock.tmp-{live.pid}-0123abcd",
            f".config.bak.tmp-{live.pid}-0123abcd",
        ]
        for name in names:
            (config.parent / name).write_text("live writer's data")
            os.utime(config.parent / name, (0, 0))  # old, but its process is alive
        kubeconfig.merge_into_file(config, renamed())
        for name in names:
            assert (config.parent / name).read_text() == "live writer's data"
    finally:
        live.kill()
        live.wait()
    # Once it is gone they are a dead process's leftovers; the next run removes them.
    kubeconfig.merge_into_file(config, renamed("lab/other", "https://other.example:6443"))
    assert leftovers(config.parent) == []


def test_only_regular_files_of_the_temporary_pattern_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "config"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    keep = [
        f".config.tmp-{pid}-nothex!",
        f"config.tmp-{pid}-0123abcd",
        f".config2.tmp-{pid}-0123abcd",
    ]
    for name in keep:
        (tmp_path / name).write_text("x")
    (tmp_path / f".config.tmp-{pid}-aaaaaaaa").symlink_to(tmp_path / keep[0])
    (tmp_path / f".config.tmp-{pid}-bbbbbbbb").mkdir()
    (tmp_path / f".config.tmp-{pid}-cccccccc").write_text("left by a kill")
    removed = kubeconfig_lock.remove_stale_temps(target)
    assert [p.name for p in removed] == [f".config.tmp-{pid}-cccccccc"]
    assert all((tmp_path / name).exists() for name in keep)


# --------------------------------------------------------------------------- YAML bombs


def alias_bomb(levels: int, fanout: int = 9) -> str:
    lines = ["apiVersion: v1", "kind: Config", "preferences:"]
    lines.append(f"  a0: &a0 [{', '.join(['lol'] * fanout)}]")
    for level in range(1, levels + 1):
        lines.append(f"  a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def depth_bomb(depth: int, flow: bool = True) -> str:
    if flow:
        return "apiVersion: v1\nkind: Config\npreferences: {x: " + "[" * depth + "]" * depth + "}\n"
    body = "".join("  " * (i + 1) + f"k{i}:\n" for i in range(depth))
    return "apiVersion: v1\nkind: Config\npreferences:\n" + body + "  " * (depth + 1) + "v\n"


def test_kubectl_refuses_the_alias_bomb_too(tmp_path: Path) -> None:
    path = tmp_path / "bomb"
    path.write_text(alias_bomb(10))
    result = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(path), "config", "view"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "excessive aliasing" in result.stderr
    with pytest.raises(ValueError, match="alias"):
        kubeconfig.from_text(alias_bomb(10))


@pytest.mark.parametrize(
    "text",
    [
        alias_bomb(8),
        alias_bomb(30, 2),
        depth_bomb(150),
        depth_bomb(200_000),
        depth_bomb(150, flow=False),
    ],
)
def test_bombs_are_refused_with_a_line_and_the_file_is_left_alone(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"alias|nests deeper") as error:
        kubeconfig.merge_into_file(path, renamed())
    assert "\n" not in str(error.value)
    assert path.read_text() == text
    assert leftovers(tmp_path) == []
    with pytest.raises(OperationError, match=str(path)):
        _load(path)


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(1, 4000),
    flow=st.booleans(),
    levels=st.integers(0, 40),
    fanout=st.integers(1, 12),
)
def test_nesting_and_aliases_load_or_are_refused_never_crash(
    depth: int, flow: bool, levels: int, fanout: int
) -> None:
    for text in (
        depth_bomb(min(depth, 400) if not flow else depth, flow),
        alias_bomb(levels, fanout),
    ):
        try:
            config: dict[str, Any] = kubeconfig.from_text(text)
        except ValueError as error:
            assert "alias" in str(error) or "nests deeper" in str(error)
            continue
        # What loads can be merged, compared and written: no RecursionError, no blow-up.
        merged = kubeconfig.merge(config, renamed())
        assert merged != config
        kubeconfig.from_text(kubeconfig.dump(merged))


def test_ordinary_anchors_and_depth_still_load() -> None:
    text = alias_bomb(2, 3) + depth_bomb(kubeconfig_yaml.MAX_DEPTH - 4).split("\n", 2)[2].replace(
        "preferences:", "extensions:"
    )
    config = kubeconfig.from_text(text)
    assert config["preferences"]["a2"] == [[["lol"] * 3] * 3] * 3


@pytest.mark.parametrize("text", [alias_bomb(9), depth_bomb(5000)])
def test_a_bomb_fetched_from_the_host_is_one_line_in_the_plan(tmp_path: Path, text: str) -> None:
    pull = _Pull(
        "/etc/rancher/k3s/k3s.yaml",
        "lab/k3s",
        "https://k3s.lab.example:6443",
        tmp_path / "lab.yml",
        tmp_path / "config",
        True,
    )
    with pytest.raises(OperationError, match=r"^/etc/rancher/k3s/k3s.yaml: .*(alias|nests deeper)"):
        pull.pending(text)
    assert list(tmp_path.iterdir()) == []
