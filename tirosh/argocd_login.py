"""How the local phase reaches the Argo CD API: server, transport words, user, port-forward.

Operators already write the ``argocd`` CLI's login flags in ``argocd.login_args``; they keep a
documented meaning here, for a REST client:

- ``--plaintext``: HTTP, no TLS (argocd-server with ``server.insecure`` or a plain-HTTP proxy)
- ``--insecure``: HTTPS without verifying the certificate (a self-signed argocd-server)
- ``--skip-test-tls``, ``--grpc-web``: accepted; REST over HTTP/1.1 needs neither
- ``--prompts-enabled``: a password may be asked on the terminal
- ``--username NAME`` / ``--username=NAME``: log in as NAME instead of ``admin``

Any other word is an error that names it. HTTPS with verification is the default.
Environment overrides: ``ARGOCD_SERVER``, ``ARGOCD_LOGIN_ARGS``, ``ARGOCD_AUTO_PORT_FORWARD``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from tirosh.inputs import excerpt
from tirosh.login_args import DEFAULT_USERNAME, LoginArgsError, parse_login_args
from tirosh.site.values import host_port_problem

__all__ = ["LoginArgsError", "Settings", "parse_login_args", "settings"]

_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class Settings:
    server: str  # HOST or HOST:PORT, as the argocd CLI takes it
    plaintext: bool = False
    insecure: bool = False
    prompts: bool = False
    username: str = DEFAULT_USERNAME
    auto_port_forward: bool = False

    @property
    def scheme(self) -> str:
        return "http" if self.plaintext else "https"

    def url(self, host_port: str | None = None) -> str:
        """The API base URL, at ``host_port`` (a port-forward) or at the configured server."""
        return f"{self.scheme}://{host_port or self.server}"


def _server(value: str, source: str) -> str:
    value = value.strip()
    if "://" in value:
        raise LoginArgsError(
            f"{source}: give HOST or HOST:PORT, got {excerpt(value)}; the scheme follows --plaintext"
        )
    # As site/validate checks argocd.server: a '#', '?' or '/' would send the login elsewhere.
    problem = host_port_problem(value) if value else "must not be empty"
    if problem:
        raise LoginArgsError(f"{source}: give HOST or HOST:PORT; {problem}")
    return value


def _boolean(value: str, source: str) -> bool:
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise LoginArgsError(f"{source}: must be true or false, got {value!r}")


def settings(
    server: str, login_args: str, auto_port_forward: bool, environ: Mapping[str, str], profile: str
) -> Settings:
    """The site profile's settings with the environment's overrides applied."""
    server_source, args_source = f"{profile}: argocd.server", f"{profile}: argocd.login_args"
    if environ.get("ARGOCD_SERVER"):
        server, server_source = environ["ARGOCD_SERVER"], "ARGOCD_SERVER"
    if "ARGOCD_LOGIN_ARGS" in environ:
        login_args, args_source = environ["ARGOCD_LOGIN_ARGS"], "ARGOCD_LOGIN_ARGS"
    if environ.get("ARGOCD_AUTO_PORT_FORWARD") is not None:
        auto_port_forward = _boolean(
            environ["ARGOCD_AUTO_PORT_FORWARD"], "ARGOCD_AUTO_PORT_FORWARD"
        )
    words = parse_login_args(login_args, args_source)
    return Settings(
        server=_server(server, server_source),
        plaintext=bool(words.get("plaintext")),
        insecure=bool(words.get("insecure")),
        prompts=bool(words.get("prompts_enabled")),
        username=str(words.get("username", DEFAULT_USERNAME)),
        auto_port_forward=auto_port_forward,
    )
