"""local.argocd.api's one-line messages for faults this machine cannot produce for real.

Every other error path runs against the real argocd-server in tests/local/test_argocd_api.py.
A DNS failure would need a resolver answering NXDOMAIN, and the tests stay off the network: the
error is constructed (named fault injection), the mapping is what is tested.
"""

from __future__ import annotations

import socket
import urllib.error

from local.argocd.api import Client


def test_dns_failure_names_the_host_and_the_settings_to_check() -> None:
    client = Client("https://gitops.example.internal")
    error = client._transport_error(
        urllib.error.URLError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    )
    assert str(error) == (
        "cannot resolve gitops.example.internal (Name or service not known): check "
        "argocd.server / ARGOCD_SERVER and DNS, or run `make argocd/port-forward SITE=<site>` "
        "and set ARGOCD_SERVER=127.0.0.1:8080, or set ARGOCD_AUTO_PORT_FORWARD=true"
    )


def test_a_timeout_names_the_url_and_the_bound() -> None:
    client = Client("http://10.0.0.1:80", timeout=5)
    error = client._transport_error(urllib.error.URLError(TimeoutError("timed out")))
    assert str(error) == "no answer from http://10.0.0.1:80 within 5 s: check the server address"


def test_the_token_is_never_in_the_clients_repr() -> None:
    client = Client("http://127.0.0.1:1")
    client.use_token("canary-token-1b2c3d")
    assert "canary" not in repr(client) and "canary" not in repr(vars(client))
