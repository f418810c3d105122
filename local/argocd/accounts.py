"""Argo CD's account API: what a subject may do (can-i), tokens, and a login of an account.

``can_i`` asks Argo CD itself for the logged-in subject (``/api/v1/account/can-i``). Tokens
are issued with an expiry, listed and revoked through ``/api/v1/account/<name>/token``; a token
is returned to the caller and never printed here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from local.argocd.api import ArgoCDError, Client

__all__ = ["account", "can_i", "create_token", "delete_token", "log_in_as"]


def can_i(client: Client, resource: str, action: str, subresource: str) -> bool:
    """Argo CD's answer for the logged-in subject: may it ``action`` ``resource`` ``subresource``?"""
    # The gateway matches one path segment each: a '/' of an object (prod/app) is escaped.
    parts = "/".join(quote(part, safe="") for part in (resource, action, subresource))
    answer = client.request_object("GET", f"/api/v1/account/can-i/{parts}")
    value = answer.get("value")
    if value not in ("yes", "no"):
        raise ArgoCDError(f"Argo CD answered can-i with {value!r}, not yes or no")
    return value == "yes"


def account(client: Client, name: str) -> dict[str, Any]:
    """The account as Argo CD knows it: name, enabled, capabilities, tokens (id, issuedAt,
    expiresAt: 0 for none)."""
    return client.request_object("GET", f"/api/v1/account/{quote(name, safe='')}")


def create_token(client: Client, name: str, expires_in: int, token_id: str = "") -> str:
    """A new API token of account ``name`` valid ``expires_in`` seconds (0: Argo CD's "never",
    which the command refuses before asking)."""
    body: dict[str, Any] = {"name": name, "expiresIn": expires_in}
    if token_id:
        body["id"] = token_id
    answer = client.request_object("POST", f"/api/v1/account/{quote(name, safe='')}/token", body)
    token = answer.get("token")
    if not isinstance(token, str) or not token:
        raise ArgoCDError("Argo CD answered the token request without a token")
    return token


def delete_token(client: Client, name: str, token_id: str) -> None:
    path = f"/api/v1/account/{quote(name, safe='')}/token/{quote(token_id, safe='')}"
    client.request("DELETE", path)


def log_in_as(base: Client, username: str, password: str, source: str) -> Client:
    """A new client at the same Argo CD, logged in as ``username`` (LoginFailed if refused)."""
    other = Client(base.base_url, verify=base.verify, timeout=base.timeout, deadline=base.deadline)
    other.login(username, password, source)
    return other
