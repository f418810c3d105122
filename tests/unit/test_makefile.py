"""The Makefile refuses a SITE value that could run a command or leave sites/, before any recipe,
and hands every other make-line value to the tools exactly as typed (or refuses it by name)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
# The site loader's rule (tirosh.site): the Makefile must agree with it exactly.
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def make_dry(site: str, target: str = "k3s/status") -> subprocess.CompletedProcess[str]:
    # -n: print recipes without running them; the SITE check runs while the Makefile is parsed.
    return subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"SITE={site}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


@pytest.mark.parametrize(
    "site",
    ["x;touch {canary}", "$(shell touch {canary})", "`touch {canary}`", "x' && touch {canary} '"],
)
def test_a_site_value_that_would_run_a_command_is_refused(site: str, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    result = make_dry(site.format(canary=canary))
    assert result.returncode != 0
    assert "SITE must name a folder of sites/" in result.stderr
    assert not canary.exists()


@pytest.mark.parametrize("site", ["", "..", "../etc", ".hidden", "-rf", "a b", "a/b"])
def test_empty_and_path_like_site_values_are_refused(site: str) -> None:
    result = make_dry(site)
    assert result.returncode != 0
    assert "SITE" in result.stderr


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="aZ09._-/ ;$()`'\"\\|&<>*?~!#\t", min_size=1, max_size=12))
def test_the_makefile_accepts_exactly_the_names_the_site_loader_accepts(site: str) -> None:
    result = make_dry(site, target="help")
    # make itself drops leading blanks of a command-line assignment (`SITE= 0` is `SITE=0`), so
    # the Makefile sees, and the recipes use, the value without them.
    as_make_sees_it = site.lstrip(" \t")
    assert (result.returncode == 0) == bool(SITE_NAME.fullmatch(as_make_sees_it)), result.stderr


def test_k3s_status_fails_when_a_health_check_fails() -> None:
    # Every check is chained with && up to the last one, so the target's exit code is theirs.
    recipe = make_dry("lab").stdout
    assert "/readyz && echo" in recipe
    assert "; echo" not in recipe


# --------------------------------------------------------------------------- make-line values
# Real make runs the real recipes with a stand-in PY (and PYINFRA): a recorder that writes its
# argv and environment to a file. What the recorder saw is what a tool would have received.
RECORDER = """#!{python}
import json, os, sys
with open({out!r}, "a") as handle:
    handle.write(json.dumps({{"argv": sys.argv[1:], "env": dict(os.environ)}}) + "\\n")
if "get" in sys.argv[1:]:
    print("300")
"""


class StandIn:
    """A stand-in venv whose python and pyinfra record their calls, and a canary path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.venv = root / "venv"
        (self.venv / "bin").mkdir(parents=True)
        # Newer than requirements.txt: the deps target has nothing to do.
        (self.venv / ".installed").touch()
        self.out = root / "calls.jsonl"
        self.canary = root / "ran"
        for name in ("python", "pyinfra"):
            tool = self.venv / "bin" / name
            tool.write_text(RECORDER.format(python=sys.executable, out=str(self.out)))
            tool.chmod(0o755)

    def run(
        self, target: str, *assignments: str, dry: bool = False
    ) -> subprocess.CompletedProcess[str]:
        self.out.unlink(missing_ok=True)
        self.canary.unlink(missing_ok=True)
        flags = ["-n"] if dry else []
        return subprocess.run(
            [
                "make",
                *flags,
                "--no-print-directory",
                target,
                "SITE=lab",
                f"VENV={self.venv}",
                *assignments,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
        )

    def calls(self) -> list[dict[str, object]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines()]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    yield StandIn(tmp_path_factory.mktemp("make-line"))


def hostile(canary: Path) -> st.SearchStrategy[str]:
    """Text with what make and the shell would act on: `$`, `$(shell ...)`, backquotes, `;`,
    quotes, `#`, backslashes, line breaks; never NUL (argv cannot hold it) and not starting with
    a blank (make drops those itself when it reads the command line)."""
    pieces = st.sampled_from(
        [
            f"$(shell touch {canary})",
            f"${{shell touch {canary}}}",
            f"`touch {canary}`",
            f"; touch {canary}",
            f"$$(touch {canary})",
            f"' && touch {canary} '",
            "$9",
            "$$",
            "$",
            "\\",
            "#",
            "%",
            "\n",
            "\t",
            "'",
            '"',
            "~",
            "*",
            " ",
            "=",
            ",",
            ")",
            "(",
        ]
    )
    text = st.text(
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8
    )
    value = st.lists(st.one_of(pieces, text), min_size=1, max_size=6).map("".join)
    return value.filter(
        lambda v: bool(v) and not v[0].isspace() and v[0] not in "\x1c\x1d\x1e\x1f\x85"
    )


# Variables the tools read from their environment, and a target whose recipe runs a tool.
PASSED = [
    ("ARGOCD_NEW_PASSWORD", "argocd/password/update"),
    ("KUBECONFIG", "argocd/status"),
    ("KUBERNETES_SECRET", "kubernetes/secret/plan"),
    ("KUBECTX", "local/plan"),
    ("ARGOCD_WAIT", "argocd/install"),
    ("HOST", "lab-ssh"),
    ("YES", "argocd/password/update"),
    ("SOME_OTHER_VARIABLE", "argocd/repo/list"),
]


@pytest.mark.parametrize(("name", "target"), PASSED)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_make_line_values_reach_the_tool_byte_for_byte(
    stand_in: StandIn, name: str, target: str, data: st.DataObject
) -> None:
    value = data.draw(hostile(stand_in.canary))
    result = stand_in.run(target, f"{name}={value}")
    assert result.returncode == 0, result.stderr
    calls = stand_in.calls()
    assert calls, "the tool did not run"
    assert all(call["env"][name] == value for call in calls)  # type: ignore[index]
    if name == "ARGOCD_WAIT":
        # The value is the tool's argument, as typed, not the recipe's shell text.
        assert calls[-1]["argv"][-2:] == ["--wait", value]  # type: ignore[index]
    if name == "HOST":
        assert calls[-1]["argv"] == ["-m", "lab", "ssh", value]
    assert not stand_in.canary.exists()


def test_a_dollar_in_the_new_password_is_kept(stand_in: StandIn) -> None:
    # The lockout of issue 17: `$9` expanded by make made the password `Newpass`.
    result = stand_in.run("argocd/password/update", "ARGOCD_NEW_PASSWORD=New$9pass")
    assert result.returncode == 0, result.stderr
    assert stand_in.calls()[0]["env"]["ARGOCD_NEW_PASSWORD"] == "New$9pass"  # type: ignore[index]


# Paths and flags that are part of recipe command lines: accepted only when the shell takes every
# character literally, and then placed in the command as typed.
SHELL_LITERAL = re.compile(r"[A-Za-z0-9._/+@,-]*")
IN_COMMAND_LINE = ["PY", "PYINFRA", "KUBECTL", "INVENTORY", "VENV", "PYINFRA_FLAGS"]
COMMAND_LINE_TARGET = {"PY": "site/validate", "VENV": "site/validate", "KUBECTL": "k3s/status"}


@pytest.mark.parametrize("name", IN_COMMAND_LINE)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_values_in_a_command_line_are_literal_or_refused_by_name(
    stand_in: StandIn, name: str, data: st.DataObject
) -> None:
    safe = st.text(alphabet="abc/._-+@%,:=", min_size=1, max_size=8)
    value = data.draw(st.one_of(hostile(stand_in.canary), safe))
    target = COMMAND_LINE_TARGET.get(name, "k3s/kubeconfig/merge")
    result = stand_in.run(target, f"{name}={value}", dry=True)
    allowed = SHELL_LITERAL.fullmatch(
        re.sub("[ =:]", "", value) if name == "PYINFRA_FLAGS" else value
    )
    if name != "PYINFRA_FLAGS" and value[:1] in ("@", "+", "-"):
        allowed = None  # make would read it as a recipe prefix
    if allowed:
        assert result.returncode == 0, result.stderr
        assert value in result.stdout
    else:
        assert result.returncode != 0
        assert f"{name} may hold only" in result.stderr
        assert result.stdout == ""
    assert not stand_in.canary.exists()
    assert stand_in.calls() == []


@pytest.mark.parametrize(
    "name", ["SHELL", "MAKE", "APPLY", "_strip", "_SITE_CHARS", ".SHELLFLAGS", "MAKEFILE_LIST"]
)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_names_the_makefile_defines_cannot_be_set_on_the_make_line(
    stand_in: StandIn, name: str, data: st.DataObject
) -> None:
    value = data.draw(hostile(stand_in.canary))
    result = stand_in.run("argocd/status", f"{name}={value}")
    assert result.returncode != 0
    assert f"{name} cannot be set on the make line" in result.stderr
    assert stand_in.calls() == []
    assert not stand_in.canary.exists()


def test_a_value_from_the_environment_is_not_expanded_either(stand_in: StandIn) -> None:
    env = {**os.environ, "ARGOCD_WAIT": f"1$(shell touch {stand_in.canary})"}
    result = subprocess.run(
        ["make", "--no-print-directory", "argocd/install", "SITE=lab", f"VENV={stand_in.venv}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert stand_in.calls()[-1]["argv"][-1] == env["ARGOCD_WAIT"]  # type: ignore[index]
    assert not stand_in.canary.exists()


@pytest.mark.parametrize(
    "target", ["proxmox/vms/plan", "proxmox/vms/apply", "proxmox/vms/inventory"]
)
@pytest.mark.parametrize("value", ["true; touch {canary}", "$(shell touch {canary})", "`id`"])
def test_proxmox_targets_pass_fixed_flags_only(target: str, value: str, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    command = value.format(canary=canary)
    result = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            target,
            "SITE=lab",
            f"RESTART={command}",
            f"DRY={command}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    recipe = result.stdout.strip().splitlines()[-1]
    assert recipe == f".venv/bin/python -m local {target} lab"
    assert not canary.exists()


def test_proxmox_flags_on_request() -> None:
    def recipe(target: str, *assignments: str) -> str:
        result = subprocess.run(
            ["make", "-n", "--no-print-directory", target, "SITE=lab", *assignments],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout.strip().splitlines()[-1]

    assert recipe("proxmox/vms/apply", "RESTART=true").endswith("vms/apply lab --restart")
    assert recipe("proxmox/vms/inventory", "DRY=true").endswith("vms/inventory lab --dry")


def test_the_app_targets_pass_app_through_the_environment_and_confirm_by_flag() -> None:
    result = make_dry("lab", "argocd/app/delete")
    assert result.stdout.strip().endswith("-m local argocd/app/delete lab"), result.stdout
    confirmed = subprocess.run(
        [
            "make",
            "-n",
            "--no-print-directory",
            "argocd/app/delete",
            "SITE=lab",
            "APP=x;y",
            "YES=true",
            "CASCADE=true",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    # APP reaches the command in its environment only, never in the recipe's text.
    assert confirmed.stdout.strip().endswith("-m local argocd/app/delete lab --yes --cascade")
    assert "x;y" not in confirmed.stdout
    for target in ("argocd/app/list", "argocd/app/sync"):
        assert make_dry("lab", target).stdout.strip().endswith(f"-m local {target} lab")
