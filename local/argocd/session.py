"""An authenticated Argo CD API client for a site, for the length of one command.

The server and transport come from the site profile and the environment
(``tirosh.argocd_login``); with ``auto_port_forward`` the API is reached through ``kubectl
port-forward`` over the management context, started here and stopped (nothing left running)
when the command ends. Credentials, in this order, never written anywhere:

1. ``ARGOCD_AUTH_TOKEN``;
2. ``ARGOCD_PASSWORD`` for ``admin`` (or ``--username``);
3. ``argocd-initial-admin-secret``, read over SSH while it exists (first bootstrap; admin only);
4. a prompt, when stdin is a terminal and ``--prompts-enabled`` is in the login words;
5. otherwise one line saying which of these to provide.
"""

from __future__ import annotations

import getpass
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass

from local.argocd.api import ArgoCDError, Client
from local.kube import port_forward
from tirosh.argocd_login import Settings, settings
from tirosh.errors import OperatorError
from tirosh.redact import Redacted
from tirosh.site import Site

__all__ = [
    "Login",
    "NoCredentials",
    "OnDemand",
    "endpoint",
    "log_in",
    "open_session",
    "site_settings",
]

InitialPassword = Callable[[], "str | None"]
DEFAULT_DEADLINE = 900.0


class NoCredentials(ArgoCDError):
    """No source of credentials was available."""


@dataclass
class Login:
    """How this run logged in. ``password`` is kept (in memory) for a password change."""

    username: str
    source: str
    password: Redacted | None = None


def site_settings(site: Site, environ: Mapping[str, str]) -> Settings:
    argocd = site.argocd
    return settings(
        argocd.server,
        argocd.login_args,
        argocd.auto_port_forward,
        environ,
        f"sites/{site.name}/profile.toml",
    )


def command_deadline(environ: Mapping[str, str]) -> float:
    """Seconds one command may spend on Argo CD's API in all (``TIROSH_COMMAND_DEADLINE``,
    default 900): each request has its own bound as well, this one holds them all."""
    text = environ.get("TIROSH_COMMAND_DEADLINE") or str(DEFAULT_DEADLINE)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ArgoCDError(f"TIROSH_COMMAND_DEADLINE: must be a number of seconds > 0, got {text!r}")
    return seconds


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def endpoint(site: Site, config: Settings) -> Iterator[str]:
    """The API base URL; with auto_port_forward, a port-forward that lasts as long as the block."""
    if not config.auto_port_forward:
        yield config.url()
        return
    port = _free_port()  # not 8080: the operator's own `make argocd/port-forward` may hold it
    with ExitStack() as stack:
        try:
            stack.enter_context(
                port_forward.argocd_server(
                    site.kubeconfig, site.argocd_context, site.argocd.namespace, local_port=port
                )
            )
        except (port_forward.NoServerPod, port_forward.PortForwardError) as exc:
            raise ArgoCDError(f"auto port-forward (context {site.argocd_context}): {exc}") from None
        except Exception as exc:  # the kubernetes client's config and API errors
            raise ArgoCDError(
                f"auto port-forward: cannot reach the management cluster through context "
                f"{site.argocd_context} of {site.kubeconfig}: {type(exc).__name__}: {exc}"
            ) from None
        yield config.url(f"127.0.0.1:{port}")


def _prompt_allowed(config: Settings, stdin_tty: bool | None) -> bool:
    tty = sys.stdin.isatty() if stdin_tty is None else stdin_tty
    return config.prompts and tty


def log_in(
    client: Client,
    config: Settings,
    environ: Mapping[str, str],
    initial_password: InitialPassword | None,
    stdin_tty: bool | None = None,
) -> Login:
    """Log ``client`` in from the first available source (see the module docstring)."""
    user = config.username
    token = environ.get("ARGOCD_AUTH_TOKEN")
    if token:
        client.use_token(token)
        info = client.userinfo()
        if not info.get("loggedIn"):
            raise ArgoCDError(
                "ARGOCD_AUTH_TOKEN is not a valid Argo CD session (expired, or the password "
                "changed since it was issued): unset it or provide a new one"
            )
        return Login(str(info.get("username") or user), "ARGOCD_AUTH_TOKEN")
    password = environ.get("ARGOCD_PASSWORD")
    if password:
        client.login(user, password, "ARGOCD_PASSWORD")
        return Login(user, "ARGOCD_PASSWORD", Redacted(password))
    unreadable = ""
    if user == "admin" and initial_password is not None:
        try:
            initial = initial_password()
        except OperatorError as exc:  # SSH or API failure: the next source may still work
            initial, unreadable = None, f" ({exc})"
        if initial:
            source = "argocd-initial-admin-secret"
            client.login(user, initial, source)
            return Login(user, source, Redacted(initial))
    if _prompt_allowed(config, stdin_tty):
        typed = getpass.getpass(f"Argo CD password for {user} at {client.base_url}: ")
        if typed:
            client.login(user, typed, "the prompt")
            return Login(user, "the prompt", Redacted(typed))
    gone = ""
    if user == "admin" and initial_password is not None:
        gone = unreadable or " (argocd-initial-admin-secret no longer exists)"
    raise NoCredentials(
        f"no Argo CD credentials for {user}{gone}: set ARGOCD_PASSWORD or ARGOCD_AUTH_TOKEN, or "
        "run from a terminal with --prompts-enabled in argocd.login_args / ARGOCD_LOGIN_ARGS"
    )


@contextmanager
def open_session(
    site: Site,
    environ: Mapping[str, str] | None = None,
    initial_password: InitialPassword | None = None,
    stdin_tty: bool | None = None,
) -> Iterator[tuple[Client, Login]]:
    """A logged-in client for the site, and how it logged in."""
    env = os.environ if environ is None else environ
    config = site_settings(site, env)
    deadline = time.monotonic() + command_deadline(env)
    with endpoint(site, config) as url:
        client = Client(url, verify=not config.insecure, deadline=deadline)
        login = log_in(client, config, env, initial_password, stdin_tty)
        yield client, login


class OnDemand:
    """A logged-in client made the first time it is asked for, so that a command whose parts
    find nothing to change never logs in; it lasts as long as ``stack``.

    + stack: closes the session (and its port-forward) when the command ends
    + opener: the session to enter, e.g. ``lambda: local.phase.argocd_session(site, env)``
    """

    def __init__(
        self, stack: ExitStack, opener: Callable[[], AbstractContextManager[Client]]
    ) -> None:
        self._stack = stack
        self._opener = opener
        self._client: Client | None = None

    def __call__(self) -> Client:
        if self._client is None:
            self._client = self._stack.enter_context(self._opener())
        return self._client
