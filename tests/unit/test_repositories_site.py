"""Repositories: repositories.toml as the site model reads it, known-hosts lines, API bodies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tirosh.repositories import (
    Credentials,
    KnownHost,
    Repository,
    Template,
    covering_template,
    known_hosts_for,
    parse_known_host,
    ssh_host,
)
from tirosh.site import SiteError
from tirosh.site.reader import read_alone
from tirosh.site.repositories_file import read_repositories

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def load_repositories(site: Path, environ: dict[str, str]) -> Any:
    """What the site model reads from ``site``'s repositories.toml, as lists."""
    path = site / "argocd/repositories.toml"
    repositories, templates = read_alone(read_repositories, path, site.parents[1], environ)
    return list(repositories), list(templates)


def _load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Any:
    site = tmp_path / "sites/s"
    (site / "argocd").mkdir(parents=True, exist_ok=True)
    (site / "argocd/repositories.toml").write_text(text)
    return load_repositories(site, environ or {"HOME": "/home/op"})


def test_tirosh_home_declares_the_runbooks_gitops_repository() -> None:
    repositories, templates = load_repositories(REPO_ROOT / "sites/tirosh-home", {})
    assert repositories == [
        Repository("tirosh-gitops", "https://github.com/tirosh-chain/tirosh-gitops.git")
    ]
    assert templates == []


def test_no_file_declares_nothing(tmp_path: Path) -> None:
    assert load_repositories(tmp_path / "sites/s", {}) == ([], [])


def test_public_token_ssh_and_template(tmp_path: Path) -> None:
    text = f"""
[[repositories]]
name = "pub"
url = "https://git.example/pub.git"

[[repositories]]
name = "priv"
url = "https://git.example/priv.git"
username = "bot"

[[repositories]]
name = "ssh"
url = "git@git.example:org/r.git"
ssh_key_file = "~/.ssh/deploy"
ssh_known_hosts = ["git.example ssh-ed25519 {KEY}"]

[[credentials]]
url = "https://git.example/org"
username = "bot"
token_env = "ORG_TOKEN"
"""
    repositories, templates = _load(tmp_path, text)
    assert [r.credentials.kind for r in repositories] == ["none", "token", "ssh"]
    assert repositories[1].credentials.token_env == "GITHUB_TOKEN"
    assert repositories[2].credentials.ssh_key_file == Path("/home/op/.ssh/deploy")
    assert repositories[2].credentials.ssh_known_hosts == (
        KnownHost("git.example", "ssh-ed25519", KEY),
    )
    assert templates == [Template("https://git.example/org", Credentials("bot", "ORG_TOKEN"))]


def test_problems_are_reported_with_file_and_key(tmp_path: Path) -> None:
    text = """
[[repositories]]
name = "a"
url = "https://user:pw@git.example/a.git"

[[repositories]]
name = "b"
url = "ssh://git@git.example:2222/b.git"
username = "bot"
ssh_known_hosts = ["other.example ssh-ed25519 AAAA", "not a key line"]

[[repositories]]
name = "c"
url = "https://git.example/c.git"
token_env = "lower-case"
kind = "git"

[[credentials]]
url = "https://git.example"
"""
    with pytest.raises(SiteError) as error:
        _load(tmp_path, text)
    text_out = str(error.value)
    prefix = "sites/s/argocd/repositories.toml: "
    assert prefix + "repositories[0].url: must not carry credentials" in text_out
    assert prefix + "repositories[1].username: SSH URLs authenticate with ssh_key_file" in text_out
    assert prefix + "repositories[1].ssh_known_hosts[1]: must be a known_hosts line" in text_out
    assert prefix + "repositories[2].token_env: must name an environment variable" in text_out
    assert prefix + "repositories[2].kind: unknown key (known keys: name, url, type," in text_out
    assert prefix + "credentials[0].username: a template needs credentials" in text_out


def test_a_pinned_key_for_another_host_is_refused(tmp_path: Path) -> None:
    text = f"""
[[repositories]]
name = "x"
url = "ssh://git@git.example:2222/x.git"
ssh_key_file = "/keys/x"
ssh_known_hosts = ["git.example ssh-ed25519 {KEY}"]
"""
    with pytest.raises(
        SiteError, match=r"is for git.example, the URL's host is \[git.example\]:2222"
    ):
        _load(tmp_path, text)


def test_duplicate_names_and_urls(tmp_path: Path) -> None:
    text = '[[repositories]]\nname = "a"\nurl = "https://g/a"\n[[repositories]]\nname = "a"\nurl = "https://g/a"\n'
    with pytest.raises(SiteError) as error:
        _load(tmp_path, text)
    assert "repositories[1].name: 'a' is declared twice" in str(error.value)
    assert "repositories[1].url: 'https://g/a' is declared twice" in str(error.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("git@github.com:org/r.git", ("github.com", 22)),
        ("ssh://git@Git.Example:2222/r.git", ("git.example", 2222)),
        ("https://github.com/org/r.git", None),
    ],
)
def test_ssh_host(url: str, expected: tuple[str, int] | None) -> None:
    assert ssh_host(url) == expected


def test_known_hosts_lookup_handles_ports_aliases_and_junk() -> None:
    lines = [
        "# comment",
        f"git.example,10.0.0.5 ssh-ed25519 {KEY}",
        f"[git.example]:2222 ssh-ed25519 {KEY}",
        "|1|hashed= ssh-ed25519 AAAA",
        "git.example ssh-dss AAAA",
    ]
    assert known_hosts_for(lines, "git.example", 22) == [
        KnownHost("git.example", "ssh-ed25519", KEY)
    ]
    assert known_hosts_for(lines, "git.example", 2222) == [
        KnownHost("[git.example]:2222", "ssh-ed25519", KEY)
    ]
    assert known_hosts_for(lines, "10.0.0.5", 22) == [KnownHost("10.0.0.5", "ssh-ed25519", KEY)]
    assert parse_known_host("git.example ssh-ed25519 not-base64!") is None


def test_covering_template_is_the_longest_prefix() -> None:
    short, long = (
        Template("https://g/", Credentials("a")),
        Template("https://g/org", Credentials("b")),
    )
    assert covering_template("https://g/org/r.git", [short, long]) == long
    assert covering_template("https://other/r.git", [short, long]) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ssh://git:hunter2@git.example/r.git", "must not carry a password"),
        ("https://git.example/r.git?private_token=abc", "must not have a query or fragment"),
        ("git@git.example:org/r.git#main", "must not have a query or fragment"),
        ("https://git.example/r\u202e.git", "contains the control character U+202E"),
        ("https://git.example/a\nb", "contains the control character U+000A"),
        ("https://x@git.example/r.git", "must not carry credentials"),
    ],
)
def test_urls_carry_no_credentials_in_any_form(tmp_path: Path, url: str, problem: str) -> None:
    text = f'[[repositories]]\nname = "r"\nurl = "{url.encode("unicode_escape").decode()}"\n'
    with pytest.raises(SiteError) as error:
        _load(tmp_path, text)
    assert f"repositories[0].url: {problem}" in str(error.value)
    assert "hunter2" not in str(error.value)  # a refusal never repeats the password


def test_a_token_over_plain_http_is_refused(tmp_path: Path) -> None:
    text = '[[repositories]]\nname = "r"\nurl = "http://git.example/r.git"\nusername = "bot"\n'
    with pytest.raises(SiteError, match=r"repositories\[0\]\.url: is plain http://: a token"):
        _load(tmp_path, text)
    public = '[[repositories]]\nname = "r"\nurl = "http://git.example/r.git"\n'
    assert [r.url for r in _load(tmp_path, public)[0]] == ["http://git.example/r.git"]
    # To this machine itself a token crosses no network (a local Git server).
    local = '[[repositories]]\nname = "r"\nurl = "http://127.0.0.1:8418/r.git"\nusername = "b"\n'
    assert [r.url for r in _load(tmp_path, local)[0]] == ["http://127.0.0.1:8418/r.git"]


@pytest.mark.parametrize(
    "second",
    [
        "https://GIT.example/org/r.git",
        "https://git.example/org/r",
        "https://git.example/org/r.git/",
        "https://git.example/org/r/",
    ],
)
def test_two_spellings_of_one_repository_are_declared_twice(tmp_path: Path, second: str) -> None:
    text = (
        '[[repositories]]\nname = "a"\nurl = "https://git.example/org/r.git"\n'
        f'[[repositories]]\nname = "b"\nurl = "{second}"\n'
    )
    with pytest.raises(SiteError, match=r"repositories\[1\]\.url: .* is declared twice"):
        _load(tmp_path, text)


def test_the_scp_form_and_ssh_url_of_one_repository_are_one(tmp_path: Path) -> None:
    text = (
        '[[repositories]]\nname = "a"\nurl = "git@Git.Example:org/r.git"\nssh_key_file = "/k"\n'
        '[[repositories]]\nname = "b"\nurl = "ssh://git@git.example/org/r"\nssh_key_file = "/k"\n'
    )
    with pytest.raises(SiteError, match=r"repositories\[1\]\.url: .* is declared twice"):
        _load(tmp_path, text)


@pytest.mark.parametrize("key_file", ["~0", "~no-such-user-here/key", "~0/k", "relative/key"])
def test_a_key_path_of_another_users_home_or_relative_is_a_problem_not_a_crash(
    tmp_path: Path, key_file: str
) -> None:
    text = (
        f'[[repositories]]\nname = "x"\nurl = "git@g.example:x.git"\nssh_key_file = "{key_file}"\n'
    )
    with pytest.raises(SiteError, match=r"repositories\[0\]\.ssh_key_file: must be an absolute"):
        _load(tmp_path, text)
