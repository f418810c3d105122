"""local.argocd.api against the real argocd-server v3.5.8: answers, and the one-line errors."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from lab.argocd_harness import free_port
from local.argocd.api import ArgoCDError, Client, LoginFailed
from tests.local.conftest import Harness

pytestmark = pytest.mark.lab


def test_version_is_argocd_v3_5_8(harness: Harness) -> None:
    assert Client(harness.url).version().startswith("v3.5.8")


def test_login_and_userinfo(harness: Harness) -> None:
    client = Client(harness.url)
    password = harness.initial_password()
    assert password
    client.login("admin", password, "test")
    assert client.userinfo()["loggedIn"] is True
    assert "admin" in repr(client.userinfo().get("username"))
    assert password not in repr(client)


def test_a_wrong_password_says_where_it_came_from_and_warns_of_the_lockout(
    harness: Harness,
) -> None:
    with pytest.raises(LoginFailed) as error:
        Client(harness.url).login("admin", "not-the-password", "ARGOCD_PASSWORD")
    text = str(error.value)
    assert "refused the password of user admin from ARGOCD_PASSWORD" in text
    assert "Invalid username or password" in text
    assert "after 5 failures in a row" in text
    assert "\n" not in text


def test_an_unknown_cluster_is_none_not_an_error(harness: Harness) -> None:
    client = Client(harness.url)
    client.login("admin", harness.initial_password() or "", "test")
    assert client.get_cluster("https://10.255.255.1:6443") is None
    with pytest.raises(
        ArgoCDError, match=r"permission denied .*Argo CD answers 403 both for an object"
    ):
        client.request("DELETE", "/api/v1/clusters/https%3A%2F%2F10.255.255.1%3A6443")


def test_a_wrong_content_type_is_explained(harness: Harness) -> None:
    # The client itself always sends application/json; this request shows what Argo CD answers
    # otherwise, and that the client turns that answer into its one line.
    request = urllib.request.Request(
        f"{harness.url}/api/v1/session",
        data=json.dumps({}).encode(),
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(request, timeout=10)
    assert answer.value.code == 415
    error = Client(harness.url)._http_error(answer.value, "POST", "/api/v1/session")
    assert "server.api.content.types" in str(error) and "Invalid content type" in str(error)


def test_tls_verification_failure_suggests_insecure(harness: Harness) -> None:
    with pytest.raises(ArgoCDError, match=r"TLS verification of 127.0.0.1:.* failed .*--insecure"):
        Client(harness.tls_url).version()
    assert Client(harness.tls_url, verify=False).version().startswith("v3.5.8")


def test_plain_http_to_a_tls_server_says_drop_plaintext(harness: Harness) -> None:
    plain = harness.tls_url.replace("https://", "http://")
    with pytest.raises(ArgoCDError, match=r"redirects to https://.* drop --plaintext"):
        Client(plain).version()


def test_tls_to_a_plain_http_server_suggests_plaintext(harness: Harness) -> None:
    with pytest.raises(ArgoCDError, match=r"add --plaintext"):
        Client(harness.url.replace("http://", "https://")).version()


def test_connection_refused_suggests_the_port_forward(harness: Harness) -> None:
    with pytest.raises(ArgoCDError, match=r"connection refused at http://127.0.0.1:.*port-forward"):
        Client(f"http://127.0.0.1:{free_port()}").version()
