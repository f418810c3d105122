"""Tests of tirosh.kubeconfig on k3s-shaped configs built here (fake, short credential data).

Longer than 400 lines on purpose: the merge is the one place an operator's own file is
rewritten, and its property tests and edge cases read best side by side."""

from __future__ import annotations

import base64
import copy
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tirosh import kubeconfig
from tirosh.kubeconfig import (
    MergeResult,
    dump,
    from_text,
    load,
    merge,
    merge_into_file,
    rename,
    write_atomic,
    write_if_changed,
)

SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}


def fake_data(label: str) -> str:
    # Short base64 of a harmless label: shaped like credential data, but obviously not one.
    return base64.b64encode(f"fake-{label}".encode()).decode()


def k3s_config(server: str = "https://127.0.0.1:6443", label: str = "k3s") -> dict[str, Any]:
    """What /etc/rancher/k3s/k3s.yaml looks like: everything named ``default``."""
    return {
        "apiVersion": "v1",
        "clusters": [
            {
                "cluster": {
                    "certificate-authority-data": fake_data(f"{label}-ca"),
                    "server": server,
                },
                "name": "default",
            }
        ],
        "contexts": [
            {
                "context": {"cluster": "default", "namespace": "default", "user": "default"},
                "name": "default",
            }
        ],
        "current-context": "default",
        "kind": "Config",
        "preferences": {},
        "users": [
            {
                "name": "default",
                "user": {
                    "client-certificate-data": fake_data(f"{label}-crt"),
                    "client-key-data": fake_data(f"{label}-key"),
                },
            }
        ],
    }


def operator_config() -> dict[str, Any]:
    """An operator's ~/.kube/config with unrelated clusters."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {"colors": True},
        "current-context": "prod",
        "clusters": [
            {"name": "prod", "cluster": {"server": "https://prod.example:6443"}},
            # The deploy's own entry from an earlier run (same server, older credentials).
            {"name": "lab/k3s", "cluster": {"server": "https://k3s.lab.example:6443"}},
            {"name": "dev", "cluster": {"server": "https://dev.example:6443"}},
        ],
        "users": [
            {"name": "prod", "user": {"token": fake_data("prod-token")}},
            {"name": "lab/k3s", "user": {"token": fake_data("old-token")}},
        ],
        "contexts": [
            {"name": "prod", "context": {"cluster": "prod", "user": "prod"}},
            {"name": "lab/k3s", "context": {"cluster": "lab/k3s", "user": "lab/k3s"}},
        ],
        "extensions": [{"name": "keep-me", "extension": {"x": 1}}],
    }


def renamed(name: str = "lab/k3s", server: str = "https://k3s.lab.example:6443") -> dict[str, Any]:
    return rename(k3s_config(), name, server)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- from_text / load


def test_from_text_parses_k3s_yaml() -> None:
    text = dump(k3s_config())
    assert from_text(text) == k3s_config()


def test_from_text_turns_null_sections_into_empty_lists() -> None:
    config = from_text("apiVersion: v1\nkind: Config\nclusters: null\n")
    assert config["clusters"] == [] and config["users"] == [] and config["contexts"] == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "must be a mapping"),
        ("just text\n", "must be a mapping"),
        ("clusters: {a: 1}\n", "clusters must be a list"),
        ("users: [1]\n", "users entries must be mappings with a name"),
        ("contexts: [{context: {}}]\n", "contexts entries must be mappings with a name"),
        ("clusters: [\n", "not valid YAML"),
    ],
)
def test_from_text_rejects_non_kubeconfigs(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_text(text)


def test_load_missing_and_empty(tmp_path: Path) -> None:
    assert load(tmp_path / "missing.yml") is None
    (tmp_path / "empty.yml").write_text("")
    assert load(tmp_path / "empty.yml") is None
    (tmp_path / "blank.yml").write_text("\n  \n")
    assert load(tmp_path / "blank.yml") is None
    (tmp_path / "k3s.yml").write_text(dump(k3s_config()))
    assert load(tmp_path / "k3s.yml") == k3s_config()


def test_dump_keeps_key_order_and_block_style() -> None:
    text = dump(k3s_config())
    assert text.startswith("apiVersion: v1\nclusters:\n- cluster:\n")
    # Block style for non-empty mappings; an empty one can only be written as {}.
    assert "- context:\n    cluster: default\n    namespace: default\n" in text
    assert "preferences: {}\n" in text


# --------------------------------------------------------------------------- rename


def test_rename_by_structure() -> None:
    original = k3s_config()
    result = rename(original, "lab/k3s", "https://k3s.lab.example:6443")
    assert [c["name"] for c in result["clusters"]] == ["lab/k3s"]
    assert [u["name"] for u in result["users"]] == ["lab/k3s"]
    assert [c["name"] for c in result["contexts"]] == ["lab/k3s"]
    assert result["contexts"][0]["context"] == {
        "cluster": "lab/k3s",
        "namespace": "default",  # a text replacement of "default" would have broken this
        "user": "lab/k3s",
    }
    assert result["clusters"][0]["cluster"] == {
        "certificate-authority-data": fake_data("k3s-ca"),
        "server": "https://k3s.lab.example:6443",
    }
    assert result["users"][0]["user"] == k3s_config()["users"][0]["user"]
    assert result["current-context"] == "lab/k3s"
    assert result["preferences"] == {} and result["kind"] == "Config"
    assert original == k3s_config(), "rename must not mutate its input"


def test_rename_survives_a_yaml_round_trip() -> None:
    text = dump(rename(from_text(dump(k3s_config())), "tirosh-home/k3s", "https://k3s:6443"))
    assert "namespace: default" in text
    assert "name: default" not in text
    assert from_text(text)["current-context"] == "tirosh-home/k3s"


def test_rename_keeps_extra_context_and_cluster_fields() -> None:
    config = k3s_config()
    config["clusters"][0]["cluster"]["tls-server-name"] = "kubernetes"
    config["contexts"][0]["context"]["extensions"] = [{"name": "e"}]
    result = rename(config, "x", "https://x:6443")
    assert result["clusters"][0]["cluster"]["tls-server-name"] == "kubernetes"
    assert result["contexts"][0]["context"]["extensions"] == [{"name": "e"}]


@pytest.mark.parametrize(
    ("section", "count"), [("clusters", 2), ("users", 0), ("contexts", 2), ("users", 3)]
)
def test_rename_needs_exactly_one_of_each(section: str, count: int) -> None:
    config = k3s_config()
    entry = config[section][0]
    config[section] = [dict(entry, name=f"n{i}") for i in range(count)]
    with pytest.raises(ValueError, match=f"exactly one entry in {section}, found {count}"):
        rename(config, "x", "https://x:6443")


def test_rename_rejects_entry_without_body() -> None:
    config = k3s_config()
    del config["users"][0]["user"]
    with pytest.raises(ValueError, match="users"):
        rename(config, "x", "https://x:6443")


# --------------------------------------------------------------------------- merge


def test_merge_into_nothing_makes_a_complete_config() -> None:
    incoming = renamed()
    result = merge(None, incoming)
    assert result["apiVersion"] == "v1" and result["kind"] == "Config"
    assert result["preferences"] == {}
    for section in SECTIONS:
        assert result[section] == incoming[section]
    assert result["current-context"] == "lab/k3s"


def test_merge_replaces_in_place_and_keeps_everything_else() -> None:
    existing, incoming = operator_config(), renamed()
    result = merge(existing, incoming)
    assert [c["name"] for c in result["clusters"]] == ["prod", "lab/k3s", "dev"]
    assert result["clusters"][1] == incoming["clusters"][0]
    assert result["clusters"][0] == existing["clusters"][0]
    assert [u["name"] for u in result["users"]] == ["prod", "lab/k3s"]
    assert result["users"][1]["user"]["client-key-data"] == fake_data("k3s-key")
    assert result["current-context"] == "prod"
    assert result["preferences"] == {"colors": True}
    assert result["extensions"] == existing["extensions"]
    assert existing == operator_config() and incoming == renamed(), "inputs were mutated"


def test_merge_appends_new_names() -> None:
    result = merge(operator_config(), renamed("site/new"))
    assert [c["name"] for c in result["contexts"]] == ["prod", "lab/k3s", "site/new"]


@pytest.mark.parametrize("current", [None, ""])
def test_merge_sets_current_context_only_when_unset(current: str | None) -> None:
    existing = operator_config()
    if current is None:
        del existing["current-context"]
    else:
        existing["current-context"] = current
    assert merge(existing, renamed())["current-context"] == "lab/k3s"


def test_merge_drops_later_duplicates_of_a_replaced_name() -> None:
    existing = operator_config()
    existing["clusters"].append({"name": "lab/k3s", "cluster": {"server": "https://dup:6443"}})
    names = [c["name"] for c in merge(existing, renamed())["clusters"]]
    assert names == ["prod", "lab/k3s", "dev"]


def test_merge_result_shares_nothing_with_its_inputs() -> None:
    existing, incoming = operator_config(), renamed()
    result = merge(existing, incoming)
    result["clusters"][0]["cluster"]["server"] = "changed"
    result["clusters"][1]["cluster"]["server"] = "changed"
    assert existing == operator_config() and incoming == renamed()


_NAMES = st.sampled_from(["default", "lab/k3s", "prod", "tirosh-home/k3s", "a", "b", "c"])
_TEXT = st.text(alphabet="abcxyz019 :/-_'\"#", max_size=12)
_BODY = st.dictionaries(
    st.sampled_from(["server", "namespace", "token", "cluster", "user", "insecure"]),
    st.one_of(_TEXT, st.integers(), st.booleans(), st.lists(_TEXT, max_size=2)),
    max_size=4,
)


def _section(body_key: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(st.tuples(_NAMES, _BODY), max_size=6, unique_by=lambda item: item[0]).map(
        lambda items: [{"name": name, body_key: body} for name, body in items]
    )


@st.composite
def existing_configs(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for section, body_key in SECTIONS.items():
        config[section] = draw(_section(body_key))
    current = draw(st.one_of(st.none(), st.just(""), _NAMES))
    if current is not None:
        config["current-context"] = current
    if draw(st.booleans()):
        config["preferences"] = draw(st.dictionaries(st.sampled_from(["colors"]), st.booleans()))
    return config


incoming_configs = st.builds(
    lambda name, host: rename(k3s_config(), name, f"https://{host}:6443"),
    _NAMES,
    st.sampled_from(["k3s.lab.example", "10.0.0.1", "[fd00::1]"]),
)


@given(existing_configs(), incoming_configs)
def test_property_foreign_entries_are_kept_unchanged_and_in_order(
    existing: dict[str, Any], incoming: dict[str, Any]
) -> None:
    result = merge(existing, incoming)
    for section in SECTIONS:
        incoming_names = {e["name"] for e in incoming[section]}
        foreign = [e for e in existing[section] if e["name"] not in incoming_names]
        kept = [e for e in result[section] if e["name"] not in incoming_names]
        assert kept == foreign


@given(existing_configs(), incoming_configs)
def test_property_incoming_entries_are_present_and_equal(
    existing: dict[str, Any], incoming: dict[str, Any]
) -> None:
    result = merge(existing, incoming)
    for section in SECTIONS:
        for entry in incoming[section]:
            assert [e for e in result[section] if e["name"] == entry["name"]] == [entry]
        # A replaced entry keeps the position of the one it replaces.
        old_names = [e["name"] for e in existing[section]]
        new_names = [e["name"] for e in result[section]]
        assert new_names[: len(old_names)] == old_names


@given(existing_configs(), incoming_configs)
def test_property_merge_is_idempotent(existing: dict[str, Any], incoming: dict[str, Any]) -> None:
    once = merge(existing, incoming)
    assert merge(once, incoming) == once


@given(existing_configs(), incoming_configs)
def test_property_current_context_and_preferences(
    existing: dict[str, Any], incoming: dict[str, Any]
) -> None:
    result = merge(existing, incoming)
    if existing.get("current-context"):
        assert result["current-context"] == existing["current-context"]
    else:
        assert result["current-context"] == incoming["current-context"]
    assert result.get("preferences") == existing.get("preferences")
    assert (result["apiVersion"], result["kind"]) == ("v1", "Config")


@given(existing_configs(), incoming_configs)
def test_property_inputs_untouched_and_dump_round_trips(
    existing: dict[str, Any], incoming: dict[str, Any]
) -> None:
    before = copy.deepcopy((existing, incoming))
    result = merge(existing, incoming)
    assert (existing, incoming) == before
    assert from_text(dump(result)) == result


@settings(max_examples=25, deadline=None)  # fsync speed varies by disk
@given(existing_configs(), incoming_configs)
def test_property_merge_into_file_twice_changes_once(
    existing: dict[str, Any], incoming: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory, "config")
        path.write_text(dump(existing))
        first = merge_into_file(path, incoming, replace=True)
        assert first.changed == (merge(existing, incoming) != existing)
        content = path.read_bytes()
        assert merge_into_file(path, incoming) == MergeResult(changed=False, backup=None)
        assert path.read_bytes() == content


# --------------------------------------------------------------------------- write_atomic


def test_write_atomic_creates_private_file_and_dirs(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "config"
    write_atomic(path, "hello\n")
    assert path.read_text() == "hello\n"
    assert mode_of(path) == 0o600
    assert mode_of(tmp_path / "a") == 0o700
    assert mode_of(tmp_path / "a" / "b") == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["config"]


def test_write_atomic_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "config", "x")
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "config") == 0o600


def test_write_atomic_never_opens_a_readable_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:
            created.append((os.fspath(path), flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    target = tmp_path / "config"
    target.write_text("old")
    write_atomic(target, "new")
    (temp, flags, mode) = created[0]
    assert len(created) == 1
    assert Path(temp).parent == tmp_path and Path(temp).name != "config"
    assert flags & os.O_EXCL, "temp file must be created exclusively"
    assert mode & 0o077 == 0, "temp file must never be readable by group or others"
    assert not Path(temp).exists()
    assert target.read_text() == "new"


def test_write_atomic_honours_explicit_mode(tmp_path: Path) -> None:
    write_atomic(tmp_path / "public.txt", "x", mode=0o644)
    assert mode_of(tmp_path / "public.txt") == 0o644


def test_write_atomic_failure_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "config"
    target.write_text("old")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_write_atomic_writes_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "config"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink()
    assert real.read_text() == "new"


# --------------------------------------------------------------------------- merge_into_file


def test_merge_into_file_backs_up_then_writes(tmp_path: Path) -> None:
    path = tmp_path / "config"
    old_text = dump(operator_config())
    path.write_text(old_text)
    path.chmod(0o644)
    result = merge_into_file(path, renamed())
    backup = tmp_path / "config.bak"
    assert result == MergeResult(changed=True, backup=backup)
    assert backup.read_text() == old_text
    assert mode_of(backup) == 0o600
    assert mode_of(path) == 0o600
    assert load(path) == merge(operator_config(), renamed())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "config.bak"]


def test_second_merge_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(dump(operator_config()))
    merge_into_file(path, renamed())
    before = path.stat()
    backup_before = (tmp_path / "config.bak").read_bytes()
    assert merge_into_file(path, renamed()) == MergeResult(changed=False, backup=None)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)
    assert (tmp_path / "config.bak").read_bytes() == backup_before


def test_new_server_overwrites_the_older_backup(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(dump(operator_config()))
    merge_into_file(path, renamed(server="https://one:6443"), replace=True)
    second = path.read_text()
    kubeconfig.new_run()
    result = merge_into_file(path, renamed(server="https://two:6443"), replace=True)
    assert result.changed and result.backup == tmp_path / "config.bak"
    assert (tmp_path / "config.bak").read_text() == second
    assert load(path)["clusters"][1]["cluster"]["server"] == "https://two:6443"  # type: ignore[index]


def test_backup_keeps_the_file_as_it_was_before_the_run(tmp_path: Path) -> None:
    kubeconfig.new_run()
    path = tmp_path / "config"
    original = dump(operator_config())
    path.write_text(original)
    merge_into_file(path, renamed(server="https://one:6443"), replace=True)
    merge_into_file(path, renamed("lab/rke2/gpu", server="https://two:6443"))
    assert "lab/rke2/gpu" in path.read_text()
    assert (tmp_path / "config.bak").read_text() == original


def test_invalid_yaml_message_gives_the_position_not_the_content() -> None:
    with pytest.raises(ValueError) as info:
        from_text("users:\n- name: x\n  user: {client-key-data: S0VZ-SECRET: {\n")
    assert "S0VZ" not in str(info.value)
    assert "line" in str(info.value)


def test_merge_into_missing_file(tmp_path: Path) -> None:
    path = tmp_path / ".kube" / "config"
    assert merge_into_file(path, renamed()) == MergeResult(changed=True, backup=None)
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert load(path) == merge(None, renamed())


def test_merge_into_empty_file_keeps_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    result = merge_into_file(path, renamed(), backup_suffix=".orig")
    assert result == MergeResult(changed=True, backup=tmp_path / "config.orig")
    assert (tmp_path / "config.orig").read_text() == ""


@pytest.mark.parametrize("text", ["clusters: [\n  - name: x\n bad", "- not\n- a mapping\n"])
def test_merge_into_invalid_file_raises_and_leaves_it_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        merge_into_file(path, renamed())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_merge_into_file_behind_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real-config"
    real.write_text(dump(operator_config()))
    link = tmp_path / "config"
    link.symlink_to(real)
    assert merge_into_file(link, renamed()).changed
    assert link.is_symlink()
    assert load(real) == merge(operator_config(), renamed())


# --------------------------------------------------------------------------- write_if_changed


def test_write_if_changed(tmp_path: Path) -> None:
    path = tmp_path / "kube" / "lab.yml"
    config = renamed()
    assert write_if_changed(path, config) is True
    assert mode_of(path) == 0o600 and load(path) == config
    before = path.stat()
    assert write_if_changed(path, config) is False
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_write_if_changed_fixes_mode_without_rewriting(tmp_path: Path) -> None:
    path = tmp_path / "lab.yml"
    write_if_changed(path, renamed())
    path.chmod(0o644)
    inode, content = path.stat().st_ino, path.read_bytes()
    assert write_if_changed(path, renamed()) is True
    assert mode_of(path) == 0o600
    assert (path.stat().st_ino, path.read_bytes()) == (inode, content)


def test_write_if_changed_rewrites_different_content(tmp_path: Path) -> None:
    path = tmp_path / "lab.yml"
    write_if_changed(path, renamed(server="https://one:6443"))
    assert write_if_changed(path, renamed(server="https://two:6443")) is True
    assert load(path) == renamed(server="https://two:6443")
    assert mode_of(path) == 0o600


def test_written_files_contain_no_private_key_block(tmp_path: Path) -> None:
    # The fixtures stay fake: nothing resembling a PEM private key ends up on disk.
    path = tmp_path / "config"
    merge_into_file(path, renamed())
    text = path.read_text()
    assert "PRIVATE" not in text
    assert yaml.safe_load(text)["users"][0]["user"]["client-key-data"] == fake_data("k3s-key")
