"""The operator's files: refusals, the kubectl lock, name checks, collisions, real kubectl.

Everything here works on real files in a temp directory, real FIFOs, real parallel processes
and the real kubectl of the venv; the credentials are short fake strings.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyinfra.api import OperationError

from operations.kubeconfig import _Pull
from tests.unit.test_kubeconfig import k3s_config, operator_config, renamed
from tirosh import kubeconfig, kubeconfig_lock
from tirosh.kubeconfig import (
    ConflictError,
    conflicts,
    dump,
    export_list,
    load,
    merge_into_file,
    name_problem,
    path_warning,
    rename,
    replace_requested,
    write_if_changed,
)
from tirosh.kubeconfig_lock import LockTimeout, locked

KUBECTL = Path(sys.executable).with_name("kubectl")

NOT_KUBECONFIGS = {
    "authorized_keys": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKE operator@laptop\n",
    "bashrc": 'export PATH="$HOME/bin:$PATH"\nalias k=kubectl\n',
    "compose": "services:\n  web:\n    image: nginx\n",
    "pod": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
    "binary": "\x00\x01\x02 not text",
    "yaml list": "- a\n- b\n",
}


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- not a kubeconfig


@pytest.mark.parametrize("kind", sorted(NOT_KUBECONFIGS))
@pytest.mark.parametrize("write", ["site file", "merge target"])
def test_a_file_that_is_not_a_kubeconfig_is_refused_and_left_alone(
    tmp_path: Path, kind: str, write: str
) -> None:
    path = tmp_path / "target"
    path.write_text(NOT_KUBECONFIGS[kind])
    before = path.read_bytes()
    with pytest.raises(ValueError):
        if write == "site file":
            write_if_changed(path, renamed())
        else:
            merge_into_file(path, renamed())
    assert path.read_bytes() == before
    assert listing(tmp_path) == ["target"]  # no backup, no temp file, no lock left


def test_a_fifo_is_refused_at_once_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "config"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def attempt() -> None:
        for call in (lambda: merge_into_file(fifo, renamed()), lambda: load(fifo)):
            try:
                call()
            except ValueError as error:
                errors.append(error)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert len(errors) == 2 and all("FIFO" in str(e) for e in errors)
    assert listing(tmp_path) == ["config"]


def test_a_directory_and_a_device_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ValueError, match=r"directory"):
        load(tmp_path / "dir")
    with pytest.raises(ValueError, match=r"character device"):
        load(Path("/dev/null"))


@pytest.mark.parametrize("write", ["site file", "merge target"])
def test_a_read_only_kubeconfig_is_refused_not_replaced(tmp_path: Path, write: str) -> None:
    path = tmp_path / "config"
    older = rename(k3s_config(label="old"), "lab/k3s", "https://k3s.lab.example:6443")
    path.write_text(dump(older if write == "site file" else operator_config()))
    path.chmod(0o444)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"read-only \(mode 0444\)"):
        if write == "site file":
            write_if_changed(path, renamed())
        else:
            merge_into_file(path, renamed())
    assert path.read_bytes() == before and path.stat().st_mode & 0o777 == 0o444
    assert listing(tmp_path) == ["config"]


def test_a_read_only_file_that_needs_no_change_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "config"
    merge_into_file(path, renamed())
    path.chmod(0o400)
    assert not merge_into_file(path, renamed()).changed


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "non-empty"),
        ("lab\n/k3s", "U+000A"),
        ("lab\x00k3s", "U+0000"),
        ("lab\rk3s", "U+000D"),
        ("lab\x1b[31mk3s", "U+001B"),
        ("lab\u2028k3s", "U+2028"),
        ("lab\u200bk3s", "U+200B"),
        ("lab\u202ek3s", "U+202E"),
        (" lab/k3s", "whitespace"),
        ("lab/k3s\t", "U+0009"),
        ("lab/k3s ", "whitespace"),
        ("x" * 254, "longer than 253"),
        ("-lab/k3s", "must not start with '-'"),
    ],
)
def test_bad_context_names_are_refused(name: str, problem: str) -> None:
    assert problem in (name_problem(name) or "")
    with pytest.raises(ValueError, match=r"context name"):
        rename(k3s_config(), name, "https://k3s.lab.example:6443")


@pytest.mark.parametrize("name", ["lab/k3s", "tirosh-home/rke2/gpu", "x" * 253, "prod (eu)", "ü"])
def test_ordinary_context_names_pass(name: str) -> None:
    assert name_problem(name) is None


# --------------------------------------------------------------------------- collisions


def foreign_entry(config: dict[str, Any], section: str, name: str, body: dict[str, Any]) -> None:
    key = kubeconfig.SECTIONS[section]
    config[section] = [e for e in config[section] if e["name"] != name]
    config[section].append({"name": name, key: body})


@pytest.mark.parametrize(
    ("section", "body", "message"),
    [
        ("clusters", {"server": "https://prod.example:6443"}, "cluster 'lab/k3s' points at"),
        ("users", {"token": "b3BlcmF0b3I="}, "user 'lab/k3s' holds other credentials"),
        ("contexts", {"cluster": "prod", "user": "prod"}, "context 'lab/k3s' points at"),
    ],
)
def test_a_same_named_entry_that_points_elsewhere_is_not_replaced(
    tmp_path: Path, section: str, body: dict[str, Any], message: str
) -> None:
    existing: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod.example:6443"}}],
        "users": [{"name": "prod", "user": {"token": "cHJvZA=="}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
    }
    foreign_entry(existing, section, "lab/k3s", body)
    path = tmp_path / "config"
    path.write_text(dump(existing))
    before = path.read_bytes()
    with pytest.raises(ConflictError, match=message) as info:
        merge_into_file(path, renamed())
    assert "TIROSH_REPLACE_CONTEXTS=true" in str(info.value)
    assert path.read_bytes() == before and listing(tmp_path) == ["config"]
    # Told to: replaced.
    assert merge_into_file(path, renamed(), replace=True).changed
    assert load(path) == kubeconfig.merge(existing, renamed())


def test_the_deploys_own_entry_with_rotated_credentials_is_replaced(tmp_path: Path) -> None:
    # A k3s reinstall: same server, new CA and client certificate.
    path = tmp_path / "config"
    merge_into_file(
        path, rename(k3s_config(label="old"), "lab/k3s", "https://k3s.lab.example:6443")
    )
    assert conflicts(load(path) or {}, renamed()) == []
    assert merge_into_file(path, renamed()).changed


@pytest.mark.parametrize(
    ("value", "expected"), [("", False), ("false", False), ("true", True), ("TRUE", True)]
)
def test_replace_requested(value: str, expected: bool) -> None:
    assert replace_requested({"TIROSH_REPLACE_CONTEXTS": value}) is expected


@pytest.mark.parametrize("value", ["1", "yes", "ture", "true;rm"])
def test_replace_requested_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match=r"must be true or false"):
        replace_requested({"TIROSH_REPLACE_CONTEXTS": value})


# --------------------------------------------------------------------------- the lock


def _merge_one(path: str, index: int, start: Any) -> None:
    start.wait()
    merge_into_file(
        Path(path), rename(k3s_config(label=f"n{index}"), f"ctx-{index}", f"https://h{index}:6443")
    )


def test_eight_parallel_merges_keep_every_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(dump(operator_config()))
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [context.Process(target=_merge_one, args=(str(path), i, start)) for i in range(8)]
    for worker in workers:
        worker.start()
    start.set()  # all at once
    for worker in workers:
        worker.join(timeout=60)
    assert [w.exitcode for w in workers] == [0] * 8
    config = load(path) or {}
    names = {c["name"] for c in config["contexts"]}
    assert {f"ctx-{i}" for i in range(8)} <= names
    assert {"prod", "lab/k3s"} <= names  # the operator's entries survived
    assert "config.lock" not in listing(tmp_path)


def test_a_lock_left_by_kubectl_is_never_removed_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIROSH_KUBECONFIG_LOCK_TIMEOUT", "0.3")
    path = tmp_path / "config"
    lock = tmp_path / "config.lock"
    lock.write_bytes(b"")  # client-go's lock is empty: nothing tells whether its owner lives
    with pytest.raises(LockTimeout, match=r"config.lock exists"):
        merge_into_file(path, renamed())
    assert lock.exists() and not path.exists()


def test_a_stale_lock_of_a_dead_deploy_is_broken(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = kubeconfig_lock._owner().split()
    lock = tmp_path / "config.lock"
    lock.write_text(f"tirosh {dead.pid} {owner[2]} {owner[3]}\n")
    assert merge_into_file(tmp_path / "config", renamed()).changed
    assert listing(tmp_path) == ["config"]


def test_a_lock_of_a_live_deploy_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIROSH_KUBECONFIG_LOCK_TIMEOUT", "0.3")
    owner = kubeconfig_lock._owner().split()
    (tmp_path / "config.lock").write_text(f"tirosh {os.getppid()} {owner[2]} {owner[3]}\n")
    with pytest.raises(LockTimeout):
        merge_into_file(tmp_path / "config", renamed())


def test_kubectl_takes_the_same_lock(tmp_path: Path) -> None:
    path = tmp_path / "config"
    merge_into_file(path, renamed())
    command = [str(KUBECTL), "--kubeconfig", str(path), "config", "set-context", "other"]
    with locked(path):
        held = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert held.returncode != 0 and "config.lock" in held.stderr
    free = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert free.returncode == 0, free.stderr


def test_a_merge_waits_for_the_holder_to_finish(tmp_path: Path) -> None:
    path = tmp_path / "config"
    events: list[str] = []
    held = threading.Event()

    def holder() -> None:
        with locked(path):
            held.set()
            time.sleep(0.3)
            events.append("released")

    worker = threading.Thread(target=holder)
    worker.start()
    held.wait(timeout=10)
    assert merge_into_file(path, renamed()).changed
    events.append("merged")
    worker.join()
    assert events == ["released", "merged"]


# --------------------------------------------------------------------------- real kubectl


def kubectl(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(KUBECTL), *args], capture_output=True, text=True, timeout=30, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubectl_reads_the_merged_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(dump(operator_config()))
    merge_into_file(path, renamed())
    merge_into_file(path, renamed("lab/rke2/gpu", "https://198.51.100.11:6443"))
    contexts = kubectl("--kubeconfig", str(path), "config", "get-contexts", "-o", "name").split()
    assert sorted(contexts) == ["lab/k3s", "lab/rke2/gpu", "prod"]
    server = kubectl(
        "--kubeconfig",
        str(path),
        "config",
        "view",
        "-o",
        "jsonpath={.clusters[?(@.name=='lab/rke2/gpu')].cluster.server}",
    )
    assert server == "https://198.51.100.11:6443"
    assert kubectl("--kubeconfig", str(path), "config", "current-context").strip() == "prod"


def test_kubectl_reads_the_exported_list(tmp_path: Path) -> None:
    # `make k3s/kubeconfig/export`: the operator's file first (kubectl writes there), then the
    # site's files; kubectl sees the contexts of all of them.
    operator, site = tmp_path / "config", tmp_path / "lab.yml"
    operator.write_text(dump(operator_config()))
    write_if_changed(site, renamed("lab/only-here", "https://k3s.lab.example:6443"))
    value = export_list([operator], [site, operator])
    assert value == f"{operator}:{site}"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": value}
    names = kubectl("config", "get-contexts", "-o", "name", env=env).split()
    assert "lab/only-here" in names and "prod" in names


# --------------------------------------------------------------------------- paths


def test_path_warnings(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert path_warning("k", "~/.kube/x.yml", Path(home, ".kube/x.yml"), home) is None
    relative = path_warning("k", "x.yml", Path("/repo/x.yml"), home)
    assert relative is not None and "relative path" in relative
    outside = path_warning("k", "/etc/x.yml", Path("/etc/x.yml"), home)
    assert outside is not None and "outside the home directory" in outside


def test_export_list_refuses_a_path_with_the_separator(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot be listed"):
        export_list([tmp_path / "a:b"], [])


def test_a_site_file_holding_another_clusters_entries_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.yml"
    path.write_text(dump(operator_config()))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"holds entries this site does not write"):
        write_if_changed(path, renamed())
    assert path.read_bytes() == before and listing(tmp_path) == ["lab.yml"]
    # The site's own earlier file (same names, another server) is simply rewritten.
    path.write_text(dump(renamed(server="https://old:6443")))
    assert write_if_changed(path, renamed())


# --------------------------------------------------------------------------- the operation's plan


def pull(tmp_path: Path, replace: bool = False) -> _Pull:
    return _Pull(
        remote_path="/etc/rancher/k3s/k3s.yaml",
        context="lab/k3s",
        server="https://k3s.lab.example:6443",
        site_file=tmp_path / "lab.yml",
        merge_into=tmp_path / "config",
        current=True,
        replace=replace,
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "lab.yml").write_text(NOT_KUBECONFIGS["authorized_keys"]), "lab.yml: "),
        (lambda d: os.mkfifo(d / "config"), "FIFO"),
        (lambda d: (d / "config").write_text(NOT_KUBECONFIGS["bashrc"]), "fix or move it"),
        (
            lambda d: (d / "config").write_text(
                dump(rename(k3s_config(), "lab/k3s", "https://elsewhere:6443"))
            ),
            "TIROSH_REPLACE_CONTEXTS=true",
        ),
        (
            lambda d: (
                (d / "config").write_text(dump(operator_config())),
                (d / "config").chmod(0o444),
            ),
            "read-only",
        ),
    ],
)
def test_the_plan_refuses_before_anything_is_written(
    tmp_path: Path, setup: Any, message: str
) -> None:
    setup(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with pytest.raises(OperationError, match=message):
        pull(tmp_path).pending(dump(k3s_config()))
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_the_plan_replaces_when_told(tmp_path: Path) -> None:
    (tmp_path / "config").write_text(
        dump(rename(k3s_config(), "lab/k3s", "https://elsewhere:6443"))
    )
    assert pull(tmp_path, replace=True).pending(dump(k3s_config())) == [
        tmp_path / "lab.yml",
        tmp_path / "config",
    ]


@example(name="N")  # YAML 1.1 (kubectl) reads a bare N as a boolean
@example(name="y")
@settings(max_examples=15, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda name: name_problem(name) is None))
def test_kubectl_reads_back_every_name_the_check_accepts(name: str) -> None:
    # Names that pass name_problem survive the merge and kubectl's own reading of the file.
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "config")
        path.write_text(dump(operator_config()))
        merge_into_file(path, rename(k3s_config(), name, "https://k3s.lab.example:6443"))
        names = kubectl("--kubeconfig", str(path), "config", "get-contexts", "-o", "name")
        assert name in names.splitlines()
