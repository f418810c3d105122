"""A real directory on loopback for the Dex SSO test: Debian's OpenLDAP ``slapd`` as its own
process (``apt-get install slapd``), with people and groups loaded by ``slapadd`` before it
starts. Anonymous reads (slapd's default without access rules) let Dex search; each user binds
with its own password to log in.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.argocd_harness import Process, free_port

SUFFIX = "dc=lab,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


@dataclass(frozen=True)
class Directory:
    host: str  # host:port, plain LDAP on loopback
    people: str
    groups: str


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _ldif(users: Mapping[str, tuple[str, list[str]]]) -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: lab\ndc: lab\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    members: dict[str, list[str]] = {}
    for name, (password, groups) in users.items():
        entries.append(
            f"dn: uid={name},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\n"
            f"sn: {name}\nmail: {name}@lab.test\nuserPassword: {_ssha(password)}\n"
        )
        for group in groups:
            members.setdefault(group, []).append(f"uid={name},{PEOPLE}")
    for group, dns in members.items():
        lines = "".join(f"member: {dn}\n" for dn in dns)
        entries.append(f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n".join(entries)


@contextmanager
def ldap_directory(tmp: Path, users: Mapping[str, tuple[str, list[str]]]) -> Iterator[Directory]:
    """slapd at ``127.0.0.1:<port>`` with ``users`` (name -> (password, groups)); stopped after."""
    slapd, slapadd = (
        shutil.which("slapd", path="/usr/sbin:/usr/bin"),
        shutil.which("slapadd", path="/usr/sbin:/usr/bin"),
    )
    if slapd is None or slapadd is None:
        raise RuntimeError("OpenLDAP is missing (Debian: apt-get install slapd ldap-utils)")
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "db").mkdir(mode=0o700)
    includes = "".join(f"include /etc/ldap/schema/{schema}.schema\n" for schema in SCHEMAS)
    conf = tmp / "slapd.conf"
    conf.write_text(
        f"{includes}modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile {tmp}/slapd.pid\n"
        f'database mdb\nsuffix "{SUFFIX}"\ndirectory {tmp}/db\nmaxsize 10485760\n'
    )
    ldif = tmp / "directory.ldif"
    ldif.touch(mode=0o600)
    ldif.write_text(_ldif(users))
    subprocess.run([slapadd, "-f", str(conf), "-l", str(ldif)], check=True, capture_output=True)
    port = free_port()
    process = Process(
        [slapd, "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
        tmp / "slapd.log",
        {"PATH": "/usr/sbin:/usr/bin:/bin"},
        tmp,
    )
    try:
        _wait_ldap(port, process)
        yield Directory(f"127.0.0.1:{port}", PEOPLE, GROUPS)
    finally:
        process.stop()


def _wait_ldap(port: int, process: Process) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.popen.poll() is not None:
            raise RuntimeError(f"slapd exited with {process.popen.returncode}:\n{process.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"slapd not listening on {port}:\n{process.tail()}") from None
            time.sleep(0.2)
