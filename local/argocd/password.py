"""The Argo CD admin password: show the initial one, or change it.

``make argocd/password`` prints the initial admin
password from ``argocd-initial-admin-secret``: the only command that ever prints a password,
and only on this request. ``make argocd/password/update`` logs in, takes the new password twice from the terminal (or
``ARGOCD_NEW_PASSWORD``), changes it through the API, proves it by logging in with it, then
offers to delete ``argocd-initial-admin-secret`` (``--yes`` / ``ARGOCD_DELETE_INITIAL_SECRET=true``).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Mapping

from local.argocd import initial_secret
from local.argocd.api import Client
from local.argocd.session import open_session
from tirosh.site import Site

__all__ = ["new_password", "show", "update"]

_TRUE = ("1", "true", "yes")


def show(site: Site, environ: Mapping[str, str]) -> int:
    password = initial_secret.read(site, environ)
    if password is None:
        print(
            f"{initial_secret.INITIAL_SECRET} no longer exists in namespace "
            f"{site.argocd.namespace}: the admin password was changed and the Secret deleted; "
            "use the password that was set (make argocd/password/update changes it)",
            file=sys.stderr,
        )
        return 1
    print(password)
    return 0


def new_password(
    environ: Mapping[str, str], tty: bool, ask: Callable[[str], str] = getpass.getpass
) -> str:
    """ARGOCD_NEW_PASSWORD, else typed twice on the terminal; ValueError with what to do."""
    if environ.get("ARGOCD_NEW_PASSWORD"):
        return environ["ARGOCD_NEW_PASSWORD"]
    if not tty:
        raise ValueError("no new password: set ARGOCD_NEW_PASSWORD or run from a terminal")
    first = ask("New Argo CD password: ")
    if not first:
        raise ValueError("the new password is empty; nothing was changed")
    if ask("New Argo CD password again: ") != first:
        raise ValueError("the two passwords differ; nothing was changed")
    return first


def _delete_wanted(yes: bool, environ: Mapping[str, str], tty: bool) -> bool | None:
    """True/False when decided, None when the operator should be told how."""
    if yes or environ.get("ARGOCD_DELETE_INITIAL_SECRET", "").lower() in _TRUE:
        return True
    if not tty:
        return None
    answer = input(f"Delete {initial_secret.INITIAL_SECRET} now? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def update(site: Site, environ: Mapping[str, str], yes: bool, tty: bool | None = None) -> int:
    interactive = sys.stdin.isatty() if tty is None else tty
    with open_session(site, environ, lambda: initial_secret.read(site, environ), interactive) as (
        client,
        login,
    ):
        if login.password is None:
            print(
                f"changing the password needs the current one; {login.source} is a token: "
                "set ARGOCD_PASSWORD (or unset ARGOCD_AUTH_TOKEN and use a prompt)",
                file=sys.stderr,
            )
            return 2
        try:
            new = new_password(environ, interactive)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        client.update_password(login.username, str(login.password), new)
        # Proof: a fresh login with the new password (the old token is invalid from now on).
        Client(client.base_url, verify=client.verify).login(login.username, new, "the new password")
        print(f"password of {login.username} changed; a login with the new one works")
    if login.username != "admin" or initial_secret.read(site, environ) is None:
        return 0
    decision = _delete_wanted(yes, environ, interactive)
    if decision is None:
        print(
            f"kept {initial_secret.INITIAL_SECRET} (it still holds the old password): delete it "
            "with make argocd/password/update ... --yes or ARGOCD_DELETE_INITIAL_SECRET=true"
        )
    elif decision:
        initial_secret.delete(site, environ)
        print(f"deleted {initial_secret.INITIAL_SECRET}")
    return 0
