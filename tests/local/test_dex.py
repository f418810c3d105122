"""SSO through Argo CD's bundled Dex (the lab's v2.13.0) with a connector to a real directory:
Debian's OpenLDAP ``slapd`` with test users and groups (lab/ldap_directory.py).

The site declares ``[dex]`` (an LDAP connector) and group bindings in argocd/access.toml; the
local phase converges ``url`` and ``dex.config``; Dex runs with the configuration Argo CD
generates from them (lab/dex_server.py); the login is driven over HTTP as a browser drives it:
Argo CD's ``/auth/login``, Dex's login form behind argocd-server's ``/api/dex`` proxy, LDAP's
bind, the callback. Read-only group: lists, 403 on sync; operators: sync prod, not stage.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.argocd_harness import NAMESPACE, SITE, Harness, argocd_harness, free_port, git_http_server
from lab.dex_server import dex_server
from lab.ldap_directory import Directory, ldap_directory
from tests.local.operator import leaks, run
from tests.local.sso_browser import Browser, api, applications, restart_argocd_server

pytestmark = pytest.mark.lab

PASSWORDS = {"vera": "canary-ldap-vera-3a9e", "otto": "canary-ldap-otto-6f1b"}
GROUPS = {"vera": ["viewers"], "otto": ["operators"]}


@dataclass
class Lab:
    harness: Harness
    directory: Directory
    dex_port: int


def _access(directory: Directory, url: str) -> str:
    return f"""
[rbac]
default = ""

[[rbac.roles]]
name = "prod-operator"
permissions = ["applications, get, */*", "applications, sync, prod/*"]

[[rbac.bindings]]
role = "readonly"
groups = ["viewers"]

[[rbac.bindings]]
role = "prod-operator"
groups = ["operators"]

[dex]
url = "{url}"

[[dex.connectors]]
type = "ldap"
id = "ldap"
name = "Lab directory"
[dex.connectors.config]
host = "{directory.host}"
insecureNoSSL = true
usernamePrompt = "Username"
[dex.connectors.config.userSearch]
baseDN = "{directory.people}"
filter = "(objectClass=inetOrgPerson)"
username = "uid"
idAttr = "uid"
emailAttr = "mail"
nameAttr = "cn"
[dex.connectors.config.groupSearch]
baseDN = "{directory.groups}"
filter = "(objectClass=groupOfNames)"
userAttr = "DN"
groupAttr = "member"
nameAttr = "cn"
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("dex")
    port = free_port()
    users = {name: (PASSWORDS[name], GROUPS[name]) for name in PASSWORDS}
    with (
        ldap_directory(tmp / "ldap", users) as directory,
        argocd_harness(tmp / "argocd", dex_server=f"http://127.0.0.1:{port}") as harness,
        git_http_server(tmp / "git") as git,
    ):
        (harness.sites / SITE / "argocd/clusters.toml").write_text("clusters = []\n")
        (harness.sites / SITE / "argocd/access.toml").write_text(_access(directory, harness.url))
        applications(harness, git)
        yield Lab(harness, directory, port)


def _login(lab: Lab, user: str) -> str:
    """Argo CD's session token after a browser-like login of ``user`` through Dex and LDAP."""
    url = lab.harness.url
    browser = Browser()
    landed, page = browser.open(
        f"{url}/auth/login?return_url=" + urllib.parse.quote(f"{url}/applications")
    )
    assert landed.startswith(f"{url}/api/dex/auth/ldap"), (landed, page[:300])
    try:
        browser.submit(landed, page.replace("&amp;", "&"), login=user, password=PASSWORDS[user])
    except urllib.error.HTTPError as exc:  # /applications: this harness serves no UI
        assert exc.code == 404 and exc.url.startswith(url), (exc.url, exc.read()[:300])
    token = browser.cookie("argocd.token")
    assert token
    return token


def test_the_phase_converges_dex(lab: Lab) -> None:
    harness = lab.harness
    env = harness.env(ARGOCD_PASSWORD=harness.initial_password() or "")
    result = run("local", "local/phase", SITE, env=env)
    assert result.code == 0, result.output
    assert "access: create    ConfigMap argocd/argocd-cm key dex.config" in result.stdout
    assert not leaks(result, list(PASSWORDS.values()), [harness.home, harness.sites])
    restart_argocd_server(harness)


@pytest.fixture(scope="module")
def dex(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with dex_server(
        tmp_path_factory.mktemp("dex-server"), lab.harness.management_admin, NAMESPACE, lab.dex_port
    ):
        yield


@pytest.mark.usefixtures("dex")
def test_a_read_only_ldap_group_lists_applications_and_may_not_sync(lab: Lab) -> None:
    token = _login(lab, "vera")
    status, info = api(lab.harness.url, token, "GET", "/api/v1/session/userinfo")
    assert status == 200 and info.get("groups") == ["viewers"], info
    status, listed = api(lab.harness.url, token, "GET", "/api/v1/applications")
    assert status == 200
    items = listed.get("items") or []
    assert sorted(i["metadata"]["name"] for i in items) == ["prod-web", "stage-web"]  # type: ignore[attr-defined]
    assert api(lab.harness.url, token, "POST", "/api/v1/applications/prod-web/sync")[0] == 403


@pytest.mark.usefixtures("dex")
def test_the_operators_ldap_group_may_sync_prod_and_not_stage(lab: Lab) -> None:
    token = _login(lab, "otto")
    assert api(lab.harness.url, token, "POST", "/api/v1/applications/stage-web/sync")[0] == 403
    status, answer = api(lab.harness.url, token, "POST", "/api/v1/applications/prod-web/sync")
    assert status == 200, answer
