"""Every string field of a site, property-tested: refused in words, or quoted where it is used.

For each field of a temp copy of sites/lab, hypothesis writes values drawn from an alphabet of
NUL, newlines, tabs, Unicode separators and bidi controls, digits of other scripts, shell
metacharacters and ordinary characters (alone, or around the field's valid value), then runs
``python -m tirosh.site validate`` (its ``main``, in process). Either the value is refused, with
a non-zero exit and nothing on stderr but one-line ``file: key: problem`` lines and warnings,
or it is accepted; an accepted value carrying shell metacharacters is then planned with the
real deploy on pyinfra's @fake connector (``-vvv`` prints every command it would run), and
every command that carries it must carry it inside one shell-quoted word.

The copy installs k3s from a release URL and Argo CD from a manifest URL (the lab's own
air-gapped sources need `make lab-up`), so both URLs reach commands. Nothing connects anywhere.
"""

from __future__ import annotations

import functools
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tirosh.site import main

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

REPO = Path(__file__).resolve().parent.parent
PYINFRA = str(Path(sys.executable).with_name("pyinfra"))
# Values tried per field (besides the explicit examples): at 10 the 37 fields cost ~15 s of CPU,
# most of it in the @fake plans; TIROSH_FIELD_EXAMPLES=200 digs deeper.
EXAMPLES = int(os.environ.get("TIROSH_FIELD_EXAMPLES", "10"))
SHELL_META = set(";$`'\"\\|&<>(){}*?!#~ \t")
ALPHABET = (
    "aZz09.-_/:@+=,%"  # ordinary
    + " ;$`'\"\\|&<>(){}*?!#~"  # shell
    + "\0\t\n\r\x1b\x7f\x85\u2028\u202e\u200b"  # control, separators, bidi, zero-width
    + "\u0663\uff11\u00e9\u0430"  # Arabic-Indic and fullwidth digits, accented, Cyrillic a
)
TRICKY = [
    "",
    " ",
    "x;touch /tmp/tirosh-canary",
    "$(id)",
    "`id`",
    "a\0b",
    "a\nb",
    "v1.\u0663\u0664.3+k3s1",
    "." + "./" * 3 + "etc/passwd",  # a path climbing out (written so for the repo check)
    "https://user:pw@h.lab.test/x",
    "http://h.lab.test/x",
    "-rf",
    "a'b\"c",
]


# Tried in every field (issue 17): ports and tails of API URLs, bare and zoned IPv6, look-alike
# names, and a huge value, whose refusal must repeat only an excerpt.
EDGE_EXAMPLES = [
    "https://k3s.lab.test:0",
    "https://k3s.lab.test:",
    "https://k3s.lab.test:6443/p?q#f",
    "::1",
    "[fe80::1%eth0]:443",
    "fe80::1%eth0",
    "lab/k3s\u00a0x",
    "\uff4c\uff41\uff42/k3s",
    "l\u0430b/k3s",
    "a/b",
    "x;" * 100_000,
]
# No line of a refusal is longer than this, whatever the value's length.
MAX_LINE = 600

# Accepted values with shell metacharacters that reach commands: always tried first.
SHELL_EXAMPLES = {
    "k3s_release_url": "https://m.lab.test/a;b$(id)'q&x",
    "argocd_manifest_url": "https://m.lab.test/x;y$(id)'q/{version}/install.yaml",
}


@dataclass(frozen=True)
class Field:
    file: str
    path: tuple[str | int, ...]

    @property
    def key(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
        return text


def _fields() -> list[Field]:
    profile = [
        ("kube", "kubeconfig"),
        ("kube", "contexts", "argocd"),
        ("kube", "contexts", "rke2_gpu"),
        *(("argocd", k) for k in ("target_name", "server", "login_args", "cluster_context")),
        ("argocd", "cluster_name"),
        ("k3s", "api_server"),
        ("k3s", "kubeconfig_path"),
        ("rke2", "api_server"),
        ("rke2", "kubeconfig_path"),
    ]
    vm_keys = ("ansible_host", "ansible_user", "ansible_become_user", "proxmox_vm_name")
    inventory = [
        *(("vms", "argocd", k) for k in vm_keys),
        ("vms", "argocd", "workloads", 0),
        ("vms", "argocd", "ssh_key"),
        ("vms", "argocd", "ssh_known_hosts_file"),
    ]
    k3s = [
        *((k,) for k in ("k3s_version", "k3s_install_source", "k3s_release_url")),
        ("k3s_airgap_dir",),
        ("k3s_sha256",),
        ("k3s_config", "write-kubeconfig-mode"),
        ("k3s_config", "node-ip"),
        ("k3s_config", "tls-san", 0),
        ("k3s_config", "node-label", 0),
        ("k3s_config", "kube-apiserver-arg", 0),
    ]
    argocd = [
        (k,)
        for k in (
            "argocd_ingress_class_name",
            "argocd_ingress_host",
            "argocd_ingress_tls_secret_name",
            "argocd_version",
            "argocd_manifest_url",
            "argocd_manifest_file",
            "argocd_manifest_sha256",
            "argocd_namespace",
        )
    ]
    cluster = ("clusters", 0)
    clusters: list[tuple[str | int, ...]] = [(*cluster, k) for k in ("context", "name", "server")]
    clusters.append((*cluster, "namespaces", 0))
    repositories = [
        ("repositories", 0, "name"),
        ("repositories", 0, "url"),
        ("repositories", 0, "type"),
        ("repositories", 1, "url"),
        ("repositories", 1, "username"),
        ("repositories", 1, "token_env"),
        ("repositories", 2, "url"),
        ("repositories", 2, "ssh_key_file"),
        ("repositories", 2, "ssh_known_hosts", 0),
        ("credentials", 0, "url"),
        ("credentials", 0, "username"),
    ]
    secrets = [
        ("secrets", 0, "name"),
        ("secrets", 0, "namespace"),
        ("secrets", 0, "keys", "password"),
        ("secrets", 1, "type"),
        ("secrets", 1, "registry"),
        ("secrets", 1, "username_env"),
        ("secrets", 1, "password_env"),
    ]
    return [
        *(Field("profile.toml", p) for p in profile),
        *(Field("inventory.toml", p) for p in inventory),
        *(Field("k3s/vars.yml", p) for p in k3s),
        *(Field("argocd/vars.yml", p) for p in argocd),
        *(Field("argocd/clusters.toml", p) for p in clusters),
        *(Field("argocd/repositories.toml", p) for p in repositories),
        *(Field("argocd/secrets.toml", p) for p in secrets),
    ]


FIELDS = _fields()


# --------------------------------------------------------------------------- site files


def _toml_string(value: str) -> str:
    out = []
    for char in value:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif code < 0x20 or code == 0x7F or code > 0x7E:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):  # an inline table (arrays of tables are lists of them)
        return (
            "{" + ", ".join(f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def toml_dumps(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Enough TOML for site files: tables, strings, integers, booleans, lists."""
    lines = [
        f"{_toml_string(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)
    ]
    for key, value in data.items():
        if isinstance(value, dict):
            name = ".".join(_toml_string(p) for p in (*prefix, key))
            lines.append(f"\n[{name}]\n{toml_dumps(value, (*prefix, key))}")
    return "\n".join(lines) + "\n"


def read(path: Path) -> dict[str, Any]:
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text()) if path.exists() else {}
    return dict(yaml.safe_load(path.read_text()))


def write(path: Path, data: dict[str, Any]) -> None:
    if path.suffix == ".toml":
        path.write_text(toml_dumps(data))
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=False, sort_keys=False))


def base_site(root: Path) -> Path:
    """A copy of sites/lab that installs from URLs (nothing from `make lab-up` needed)."""
    sites = root / "sites"
    shutil.copytree(REPO / "sites" / "lab", sites / "lab")
    k3s_vars = read(sites / "lab/k3s/vars.yml")
    k3s_vars.update(k3s_install_source="release", k3s_airgap_dir=".lab/artifacts/k3s")
    k3s_vars["k3s_config"]["kube-apiserver-arg"] = ["audit-log-maxage=7"]
    write(sites / "lab/k3s/vars.yml", k3s_vars)
    argocd_vars = read(sites / "lab/argocd/vars.yml")
    for key in ("argocd_manifest_file", "argocd_manifest_sha256"):
        argocd_vars.pop(key)
    argocd_vars["argocd_ingress_tls_secret_name"] = "gitops-tls"
    write(sites / "lab/argocd/vars.yml", argocd_vars)
    profile = read(sites / "lab/profile.toml")
    profile["k3s"] = {
        "api_server": "https://k3s.lab.test:6443",
        "kubeconfig_path": "~/.kube/lab.yml",
    }
    profile["rke2"]["kubeconfig_path"] = "~/.kube/lab-rke2.yml"
    write(sites / "lab/profile.toml", profile)
    # The local phase's files, one of each kind of entry.
    write(sites / "lab/argocd/clusters.toml", LOCAL_PHASE["clusters"])
    write(sites / "lab/argocd/repositories.toml", LOCAL_PHASE["repositories"])
    write(sites / "lab/argocd/secrets.toml", LOCAL_PHASE["secrets"])
    return sites


_HOST_KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
LOCAL_PHASE: dict[str, dict[str, Any]] = {
    "clusters": {
        "clusters": [
            {
                "context": "lab/rke2/gpu",
                "name": "lab-rke2-gpu",
                "server": "https://198.51.100.11:6443",
                "namespaces": ["apps"],
            }
        ]
    },
    "repositories": {
        "repositories": [
            {"name": "public", "url": "https://git.lab.test/public/gitops.git", "type": "git"},
            {
                "name": "private",
                "url": "https://git.lab.test/private/gitops.git",
                "username": "bot",
                "token_env": "GIT_TOKEN",
            },
            {
                "name": "ssh",
                "url": "ssh://git@git.lab.test:2222/gitops.git",
                "ssh_key_file": "/home/op/.ssh/deploy-key",
                "ssh_known_hosts": [f"[git.lab.test]:2222 ssh-ed25519 {_HOST_KEY}"],
            },
        ],
        "credentials": [{"url": "https://git.lab.test/org", "username": "bot"}],
    },
    "secrets": {
        "secrets": [
            {
                "name": "writeback",
                "namespace": "argocd",
                "keys": {"username": "WRITEBACK_USER", "password": "WRITEBACK_TOKEN"},
            },
            {
                "name": "pull",
                "namespace": "argocd",
                "type": "kubernetes.io/dockerconfigjson",
                "registry": "ghcr.io",
                "username_env": "GHCR_USERNAME",
                "password_env": "GHCR_PULL_TOKEN",
            },
        ]
    },
}


# Valid values of the optional fields the copy leaves unset (used to build "valid + junk").
UNSET = {
    "k3s_release_url": "https://github.com/k3s-io/k3s/releases/download",
    "k3s_sha256": "0" * 64,
    "argocd_manifest_url": "https://raw.githubusercontent.com/argoproj/argo-cd/{version}/install.yaml",
    "argocd_manifest_file": "manifests/argocd/install-v3.5.1.yaml",
    "argocd_manifest_sha256": "0" * 64,
    "argocd_namespace": "argocd",
}


def get(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(part, str) and part not in data:
            return UNSET[part]
        data = data[part]
    return data


def with_value(data: dict[str, Any], path: tuple[str | int, ...], value: str) -> dict[str, Any]:
    copy: dict[str, Any] = yaml.safe_load(yaml.safe_dump(data))  # deep copy of plain data
    get(copy, path[:-1])[path[-1]] = value
    return copy


# --------------------------------------------------------------------------- oracles

PROBLEM_LINE = re.compile(r"^[^\s:][^:\n]*: [^\s:]+: \S.*$")
WARNING_LINE = re.compile(r"^warning: \S.*$")


def validate() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", "lab"])
    return code, err.getvalue()


def plan_commands(home: Path, sites: Path) -> list[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "K3S_", "ARGOCD_"))}
    environ.update(HOME=str(home), TIROSH_SITES_DIR=str(sites), FAKE_SITE="lab")
    environ["PYINFRA_FAKE_DELAY"] = "0"
    result = subprocess.run(
        [PYINFRA, "-y", "tests/inventories/fake.py", "deploys/k3s.py", "deploys/argocd.py", "-vvv"],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-2000:]
    return [line.split(">>> ", 1)[1] for line in output.splitlines() if ">>> " in line]


@functools.cache
@functools.cache
def base_plan() -> str:
    """The commands of the unchanged copy: a value found there already (a lone "!" or " ")
    tells nothing about quoting."""
    with tempfile.TemporaryDirectory() as directory:
        return "\n".join(plan_commands(Path(directory, "home"), base_site(Path(directory))))


def assert_quoted_wherever_used(value: str, commands: list[str]) -> int:
    """Every command holding value (as the shell reads it, or as written) holds it inside one
    word, written as shlex.quote writes that word. Returns how many commands held it."""
    used = 0
    for command in commands:
        words = [w for w in shlex.split(command) if value in w]
        if not words and value not in command:
            continue
        used += 1
        assert words, f"{value!r} is split across words in: {command}"
        assert any(shlex.quote(w) in command for w in words), f"{value!r} unquoted in: {command}"
    return used


def values_for(base: str) -> st.SearchStrategy[str]:
    junk = st.text(alphabet=ALPHABET, min_size=1, max_size=12)
    return st.one_of(
        junk,
        st.builds(lambda j: base + j, junk),
        st.builds(lambda j: j + base, junk),
        st.builds(lambda j, k: base[: len(base) // 2] + j + base[len(base) // 2 :], junk, junk),
        st.sampled_from(TRICKY),
    )


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f"{f.file}:{f.key}")
def test_every_value_is_refused_in_words_or_quoted_where_used(
    field: Field, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = base_site(tmp_path)
    home = tmp_path / "home"
    for name in [k for k in os.environ if k.startswith(("KUBE", "K3S_", "ARGOCD_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TIROSH_SITES_DIR", str(sites))
    path = sites / "lab" / field.file
    data = read(path)
    code, stderr = validate()
    assert code == 0, f"the base copy must be valid: {stderr}"
    planned: list[str] = []
    stats: Counter[str] = Counter()

    def check(value: str) -> None:
        write(path, with_value(data, field.path, value))
        code, stderr = validate()
        stats["tried"] += 1
        if code != 0:
            stats["refused"] += 1
            lines = stderr.splitlines()
            assert lines and all(PROBLEM_LINE.match(x) or WARNING_LINE.match(x) for x in lines), (
                stderr
            )
            assert all(len(x) <= MAX_LINE for x in lines), max(lines, key=len)[:200]
            assert any(PROBLEM_LINE.match(x) for x in lines), stderr
            return
        stats["accepted"] += 1
        # Warnings about an accepted value repeat only an excerpt of it too.
        assert all(len(x) <= MAX_LINE for x in stderr.splitlines()), len(stderr)
        # Accepted values carry no control or separator characters at all.
        assert not any(ord(c) < 0x20 or c in "\x7f\x85\u2028\u202e\u200b" for c in value)
        if field.file == "profile.toml" and field.path[-1] in (
            "argocd",
            "rke2_gpu",
            "cluster_context",
        ):
            # Context names: no look-alike spaces or letters.
            assert "\u00a0" not in value and "\u0430" not in value and "\uff4c" not in value
        if field.key in ("k3s.api_server", "rke2.api_server", "argocd.server"):
            assert value not in EDGE_EXAMPLES, value  # none of them is a usable API address
        if SHELL_META & set(value) and not planned and value not in base_plan():
            planned.append(value)  # one plan per field: it takes seconds
            stats["planned"] += 1
            # The manifest URL reaches commands with the site's version in it.
            used = value.replace(
                "{version}", str(read(sites / "lab/argocd/vars.yml")["argocd_version"])
            )
            stats["commands holding the value"] += assert_quoted_wherever_used(
                used, plan_commands(home, sites)
            )

    test = check
    if field.key in SHELL_EXAMPLES:
        test = example(SHELL_EXAMPLES[field.key])(test)
    for edge in EDGE_EXAMPLES:
        test = example(edge)(test)
    test = given(values_for(str(get(data, field.path))))(test)
    settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )(test)()
    if field.key in SHELL_EXAMPLES:
        assert stats["commands holding the value"] >= 1, stats  # it reached a command, quoted
    # `pytest -s` shows the counts per field.
    print(f"\nfield {field.file}:{field.key}: {dict(stats)}")
