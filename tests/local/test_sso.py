"""SSO end to end: a real OpenID Connect provider, Argo CD v3.5.8, the groups mapped to roles.

The provider is panva's ``oidc-provider`` from npm (OpenID Certified; lab/oidc_provider.py),
run by Node as its own process over HTTPS with a CA made for it; the lab's only buildable Dex
is v2.13.0 (2018), older than the flow Argo CD 3.5 drives (see the README's SSO notes). The
site declares ``[sso]`` and the group bindings in argocd/access.toml; the local phase converges
them; then a login is driven over HTTP as a browser drives it: Argo CD's ``/auth/login``
redirect, the provider's login and consent forms, the callback, Argo CD's session cookie.
A read-only group lists applications and gets 403 on sync; the operators group may sync an
application of project ``prod`` and not one of ``stage``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.argocd_harness import (
    NAMESPACE,
    SITE,
    Harness,
    argocd_harness,
    git_http_server,
)
from lab.oidc_provider import Provider, oidc_provider
from local.argocd.accounts import can_i
from local.argocd.api import Client
from tests.local.operator import leaks, run
from tests.local.sso_browser import Browser, api, applications, restart_argocd_server
from tirosh import rbac
from tirosh.rbac_eval import Evaluator

pytestmark = pytest.mark.lab

CLIENT_ID = "argo-cd"
CLIENT_SECRET = "canary-sso-client-secret-71c4e2"
USERS = {"vera": ["viewers"], "otto": ["operators"]}


@dataclass
class Sso:
    harness: Harness
    provider: Provider
    git: str


def _access(provider: Provider, url: str) -> str:
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

[sso]
name = "Lab OIDC"
issuer = "{provider.issuer}"
client_id = "{CLIENT_ID}"
client_secret_env = "ARGOCD_OIDC_CLIENT_SECRET"
scopes = ["openid", "profile", "email", "groups"]
groups_claim = "groups"
url = "{url}"
root_ca_file = "{provider.ca_file}"
"""


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    tmp = tmp_path_factory.mktemp("sso")
    with (
        argocd_harness(tmp / "argocd") as harness,
        git_http_server(tmp / "git") as git,
        oidc_provider(
            tmp / "oidc", CLIENT_ID, CLIENT_SECRET, f"{harness.url}/auth/callback", USERS
        ) as provider,
    ):
        (harness.sites / SITE / "argocd/clusters.toml").write_text("clusters = []\n")
        (harness.sites / SITE / "argocd/access.toml").write_text(_access(provider, harness.url))
        applications(harness, git)
        yield Sso(harness, provider, git)


def _sso_login(sso: Sso, user: str) -> str:
    """Argo CD's session token after a browser-like login of ``user``."""
    browser = Browser(sso.provider.ca_file)
    url, page = browser.open(
        f"{sso.harness.url}/auth/login?return_url="
        + urllib.parse.quote(f"{sso.harness.url}/applications")
    )
    assert url.startswith(sso.provider.issuer), (url, page[:300])
    url, page = browser.submit(url, page, login=user, password="any")  # the provider's form
    if "consent" in page:
        try:
            url, page = browser.submit(url, page)
        except urllib.error.HTTPError as exc:  # /applications: this harness serves no UI
            detail = (exc.url, exc.read()[:400])
            assert exc.code == 404 and exc.url.startswith(sso.harness.url), detail
    token = browser.cookie("argocd.token")
    assert token, (url, page[:300])
    return token


def test_the_phase_converges_sso_with_the_secret_only_in_argocd_secret(sso: Sso) -> None:
    harness = sso.harness
    env = harness.env(
        ARGOCD_PASSWORD=harness.initial_password() or "", ARGOCD_OIDC_CLIENT_SECRET=CLIENT_SECRET
    )
    result = run("local", "local/phase", SITE, env=env)
    assert result.code == 0, result.output
    assert "access: create    Secret argocd/argocd-secret key oidc.clientSecret" in result.stdout
    found = leaks(result, [CLIENT_SECRET], [harness.home, harness.sites])
    assert not found, found
    cm = json.loads(
        harness.kubectl("loop/k3s", "-n", NAMESPACE, "get", "cm", "argocd-cm", "-o", "json").stdout
    )
    assert CLIENT_SECRET not in json.dumps(cm)
    assert "clientSecret: $oidc.clientSecret" in cm["data"]["oidc.config"]
    assert "access: update    Deployment argocd/argocd-server restarted" in result.stdout
    # The harness runs argocd-server as a process, not a Deployment: the phase says so.
    assert "access: no Deployment argocd/argocd-server: restart argocd-server" in result.stdout
    restart_argocd_server(harness)


def test_a_read_only_group_lists_applications_and_may_not_sync(sso: Sso) -> None:
    token = _sso_login(sso, "vera")
    status, info = api(sso.harness.url, token, "GET", "/api/v1/session/userinfo")
    assert status == 200 and info.get("groups") == ["viewers"], info
    status, listed = api(sso.harness.url, token, "GET", "/api/v1/applications")
    assert status == 200
    names = sorted(item["metadata"]["name"] for item in listed.get("items") or [])  # type: ignore[attr-defined]
    assert names == ["prod-web", "stage-web"]
    assert api(sso.harness.url, token, "POST", "/api/v1/applications/prod-web/sync")[0] == 403


@pytest.mark.parametrize("user", sorted(USERS))
def test_argocd_answers_sso_groups_as_pycasbin(sso: Sso, user: str) -> None:
    """The group bindings, over every resource and action: Argo CD's can-i for the SSO session
    equals Argo CD's model in pycasbin with the user's groups."""
    client = Client(sso.harness.url)
    client.use_token(_sso_login(sso, user))
    policy = sso.harness.kubectl(
        "loop/k3s",
        "-n",
        NAMESPACE,
        "get",
        "cm",
        "argocd-rbac-cm",
        "-o",
        "jsonpath={.data.policy\\.csv}",
    ).stdout
    evaluator = Evaluator(policy)
    differ = [
        (resource, action, obj)
        for resource, (actions, _) in rbac.RESOURCES.items()
        for action in actions
        for obj in (("prod/web", "stage/web") if resource in rbac.PROJECT_SCOPED else ("*",))
        if can_i(client, resource, action, obj)
        != evaluator.allowed(user, resource, action, obj, groups=USERS[user])
    ]
    assert not differ, differ


def test_the_operators_group_may_sync_prod_and_not_stage(sso: Sso) -> None:
    token = _sso_login(sso, "otto")
    assert api(sso.harness.url, token, "POST", "/api/v1/applications/stage-web/sync")[0] == 403
    status, answer = api(sso.harness.url, token, "POST", "/api/v1/applications/prod-web/sync")
    assert status == 200, answer


def test_the_doctor_says_argocds_sso_login_reaches_the_provider(sso: Sso) -> None:
    harness = sso.harness
    env = harness.env(ARGOCD_PASSWORD=harness.initial_password() or "")
    result = run("local", "argocd/doctor", SITE, env=env)
    assert f"ok    SSO: Argo CD's login goes on to {sso.provider.issuer}" in result.stdout, (
        result.stdout
    )
