"""Files an operator names are never waited on: a FIFO, device, socket or directory where a
file is expected is refused at once, with the file's name and what it is.

Each reader below would hang on a FIFO (no writer ever comes) or read forever from
/dev/zero with a plain ``read_text()``; a worker thread with a bound turns a hang into a
failure instead of a stuck suite.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from local.argocd import known_hosts
from local.argocd import repositories as local_repo
from local.kube import secrets as local_secrets
from tests.unit.site.helpers import ARGOCD, BASE, INVENTORY, K3S, PROFILE, append, rel
from tirosh import argocd, k3s, regular_file
from tirosh.errors import OperatorError
from tirosh.repositories import Credentials
from tirosh.site import SiteError, load_site
from tirosh.site.reader import Report, read_toml

BOUND = 10  # seconds; every call here returns in milliseconds


def bounded(call: Callable[[], object]) -> BaseException | object:
    """What call returned or raised, failing the test if it is still running after BOUND."""
    outcome: list[BaseException | object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(BOUND)
    assert outcome, f"still blocked after {BOUND}s"
    return outcome[0]


def _fifo(path: Path) -> None:
    os.mkfifo(path)


SPECIALS = {
    "FIFO": _fifo,
    "directory": lambda path: path.mkdir(),
}


@pytest.mark.parametrize("kind", sorted(SPECIALS))
def test_read_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing"
    SPECIALS[kind](path)
    result = bounded(lambda: regular_file.read_bytes(path, "manifest file"))
    assert isinstance(result, ValueError)
    assert str(result) == f"is a {kind}, not a regular manifest file"


def test_a_socket_and_a_character_device_are_refused(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        result = bounded(lambda: regular_file.read_bytes(tmp_path / "sock"))
    finally:
        server.close()
    # A socket cannot be opened at all (ENXIO): an OSError, never a hang.
    assert isinstance(result, (ValueError, OSError)), result
    # /dev/zero would be read until memory runs out.
    result = bounded(lambda: regular_file.read_bytes(Path("/dev/zero")))
    assert isinstance(result, ValueError) and "character device" in str(result)


def test_a_regular_file_is_read_whole_and_a_missing_one_is_file_not_found(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # more than one read chunk
    (tmp_path / "big").write_bytes(data)
    assert regular_file.read_bytes(tmp_path / "big") == data
    with pytest.raises(FileNotFoundError):
        regular_file.read_bytes(tmp_path / "absent")
    (tmp_path / "latin1").write_bytes(b"caf\xe9")
    with pytest.raises(UnicodeDecodeError):
        regular_file.read_text(tmp_path / "latin1")


# --------------------------------------------------------------------------- every reader


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name, text in BASE.items():
        path = tmp_path / "sites" / "lab" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", [PROFILE, INVENTORY, K3S, ARGOCD])
def test_a_site_file_that_is_a_fifo_is_one_problem_line(repo: Path, name: str) -> None:
    path = repo / "sites" / "lab" / name
    path.unlink()
    os.mkfifo(path)
    result = bounded(lambda: load_site("lab", repo_root=repo, environ={"HOME": "/home/op"}))
    assert isinstance(result, SiteError), result
    assert f"{rel(name)}: -: is a FIFO, not a regular file" in str(result).splitlines()


def test_a_local_phase_file_that_is_a_fifo_is_one_problem(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "repositories.toml")
    report = Report(tmp_path, {})
    result = bounded(lambda: read_toml(report, tmp_path / "repositories.toml", optional=True))
    assert result is None
    assert [str(p) for p in report.problems] == [
        "repositories.toml: -: is a FIFO, not a regular file"
    ]


def test_a_manifest_file_that_is_a_fifo_is_a_problem_of_that_setting(repo: Path) -> None:
    os.mkfifo(repo / "install.yaml")
    append(repo, ARGOCD, "argocd_manifest_file: install.yaml\n")
    result = bounded(lambda: load_site("lab", repo_root=repo, environ={"HOME": "/home/op"}))
    assert isinstance(result, SiteError), result
    [problem] = result.problems
    assert (problem.file, problem.key) == (rel(ARGOCD), "argocd_manifest_file")
    assert problem.message == "'install.yaml': is a FIFO, not a regular manifest file"
    assert isinstance(bounded(lambda: argocd.read_manifest(repo / "install.yaml")), ValueError)


def test_an_airgap_binary_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "k3s")
    digest = hashlib.sha256(b"binary").hexdigest()
    (tmp_path / "sha256sum-amd64.txt").write_text(f"{digest}  k3s\n")
    result = bounded(lambda: k3s.verified_airgap_binary(tmp_path, "x86_64"))
    assert isinstance(result, ValueError)
    assert str(result) == f"{tmp_path / 'k3s'}: is a FIFO, not a regular file"


def test_a_deploy_key_that_is_a_fifo_is_a_missing_secret(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "deploy_key")
    credentials = Credentials(ssh_key_file=tmp_path / "deploy_key")
    result = bounded(lambda: local_repo._secret(credentials, "repo x", {}, prompt=False))
    assert isinstance(result, local_repo.MissingSecret), result
    assert "is a FIFO, not a regular file" in str(result)


def test_an_env_file_that_is_a_fifo_is_refused_with_its_path(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / ".env")
    result = bounded(lambda: local_secrets.read_dotenv(tmp_path))
    assert isinstance(result, OperatorError)
    assert str(result) == f"{tmp_path / '.env'}: is a FIFO, not a regular .env file"


def test_a_known_hosts_file_that_is_a_fifo_knows_no_host(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "known_hosts")
    result = bounded(
        lambda: known_hosts._operator_host_keys("git.example", 22, tmp_path / "known_hosts")
    )
    assert result == []
