"""A small client for the Argo CD REST API (grpc-gateway in front of argocd-server).

No ``argocd`` CLI is needed: every call is one HTTP request with ``Content-Type:
application/json`` (Argo CD answers 415 to anything else, even on a bodiless DELETE) and the
login token in an ``Authorization: Bearer`` header. The token lives in this object for one run
and is never written anywhere. Every failure becomes an ``ArgoCDError`` whose message is one
line saying what to do.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from tirosh.errors import OperatorError
from tirosh.redact import Redacted

__all__ = ["PORT_FORWARD_HINT", "ArgoCDError", "Client", "LoginFailed"]

JSON: Final = "application/json"
TIMEOUT: Final = 60.0  # above repo-server's own 60 s connection test, so its answer arrives
PORT_FORWARD_HINT: Final = (
    "run `make argocd/port-forward SITE=<site>` and set ARGOCD_SERVER=127.0.0.1:8080, or set "
    "ARGOCD_AUTO_PORT_FORWARD=true"
)


# Repository requests a command keeps in flight at once: Argo CD's API server serves them
# concurrently, and each waits on a connection test.
PARALLEL_REQUESTS: Final = 4


class ArgoCDError(OperatorError):
    """A failed API call; ``str()`` is one actionable line, ``status`` the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None, api_message: str = "") -> None:
        super().__init__(" ".join(message.split()))
        self.status = status
        self.api_message = api_message


class LoginFailed(ArgoCDError):
    """Argo CD refused the user name or password."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 307 from argocd-server means TLS is on while we speak HTTP: report it, never follow it
    # (following would also resend a password to another URL).
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _api_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return " ".join(body.decode(errors="replace").split())[:500]
    if isinstance(data, Mapping):
        return " ".join(str(data.get("message") or data.get("error") or "").split())[:1000]
    return ""


class Client:
    """Argo CD at ``base_url`` (``https://host[:port]`` or ``http://...``)."""

    def __init__(self, base_url: str, *, verify: bool = True, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.timeout = timeout
        self._token: Redacted | None = None
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if _is_loopback(urlsplit(self.base_url).hostname or ""):
            # A port-forward or a local server: an HTTP(S)_PROXY must not carry it elsewhere.
            handlers.append(urllib.request.ProxyHandler({}))
        if self.base_url.startswith("https://"):
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    # ----------------------------------------------------------------------- transport

    @property
    def logged_in(self) -> bool:
        return self._token is not None

    def use_token(self, token: str) -> None:
        self._token = Redacted(token)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        """Send one request; the decoded JSON answer, or ArgoCDError."""
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": JSON, "Accept": JSON}
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc) from None
        return json.loads(raw) if raw.strip() else {}

    def _http_error(self, exc: urllib.error.HTTPError, method: str, path: str) -> ArgoCDError:
        status = exc.code
        message = _api_message(exc.read())
        where = f"{method} {path}"
        if status in (301, 302, 307, 308):
            location = exc.headers.get("Location", "?")
            text = (
                f"Argo CD at {self.base_url} redirects to {location}: it runs with TLS, so "
                "drop --plaintext from login_args, or turn server.insecure on "
                "(argocd_server_insecure: true) when a proxy terminates TLS"
            )
        elif status == 401:
            text = (
                f"Argo CD refused the session on {where} ({message}): the token expired or the "
                "password changed since it was issued; log in again"
            )
        elif status == 403:
            text = (
                f"{where}: permission denied ({message}); Argo CD answers 403 both for an "
                "object that does not exist and for a user without the RBAC permission"
            )
        elif status == 415:
            text = (
                f"Argo CD refused the request's Content-Type on {where} ({message}): "
                "server.api.content.types in argocd-cmd-params-cm must allow application/json"
            )
        elif status in (503, 504):
            text = (
                f"Argo CD could not complete {where} ({status}: {message}): a component it "
                "needs (argocd-repo-server, redis) is down or slow; check make argocd/status"
            )
        elif status >= 500:
            text = f"Argo CD failed {where} ({status}): {message}"
        else:
            text = f"Argo CD answered {status} to {where}: {message}"
        return ArgoCDError(text, status, message)

    def _transport_error(self, exc: BaseException) -> ArgoCDError:
        reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        host = urlsplit(self.base_url).netloc
        if isinstance(reason, ssl.SSLCertVerificationError):
            text = (
                f"TLS verification of {host} failed ({reason.verify_message}): trust its CA, "
                "or add --insecure to login_args / ARGOCD_LOGIN_ARGS for a self-signed argocd-server"
            )
        elif isinstance(reason, ssl.SSLError):
            text = (
                f"TLS with {host} failed ({reason.reason}): if it serves plain HTTP "
                "(server.insecure), add --plaintext to login_args / ARGOCD_LOGIN_ARGS"
            )
        elif isinstance(reason, socket.gaierror):
            text = (
                f"cannot resolve {urlsplit(self.base_url).hostname} ({reason.strerror}): check "
                f"argocd.server / ARGOCD_SERVER and DNS, or {PORT_FORWARD_HINT}"
            )
        elif isinstance(reason, ConnectionRefusedError):
            text = f"connection refused at {self.base_url}: {PORT_FORWARD_HINT}"
        elif isinstance(reason, TimeoutError | socket.timeout):
            text = f"no answer from {self.base_url} within {self.timeout:g} s: check the server address"
        elif isinstance(reason, http.client.HTTPException | ConnectionResetError):
            # The usual cause: TLS spoken to a plain-HTTP server, or the other way round.
            change = (
                "add --plaintext to"
                if self.base_url.startswith("https://")
                else "drop --plaintext from"
            )
            text = (
                f"{self.base_url} closed the connection ({type(reason).__name__}): if the server "
                f"speaks {'plain HTTP' if change.startswith('add') else 'HTTPS'}, {change} "
                "login_args / ARGOCD_LOGIN_ARGS"
            )
        else:
            text = f"cannot reach Argo CD at {self.base_url}: {reason}"
        return ArgoCDError(text)

    # ----------------------------------------------------------------------- session

    def login(self, username: str, password: str, source: str) -> None:
        """Log in; LoginFailed naming ``source`` (where the password came from) when refused."""
        body = {"username": username, "password": password}
        try:
            answer = self.request("POST", "/api/v1/session", body, auth=False)
        except ArgoCDError as exc:
            if exc.status == 401:
                raise LoginFailed(
                    f"Argo CD refused the password of user {username} from {source} "
                    f"({exc.api_message}); check it before trying again: after 5 failures in a "
                    "row Argo CD refuses even the right password for 5 minutes",
                    401,
                    exc.api_message,
                ) from None
            raise
        token = answer.get("token") if isinstance(answer, Mapping) else None
        if not token:
            raise ArgoCDError(f"Argo CD at {self.base_url} answered the login without a token")
        self._token = Redacted(token)

    def userinfo(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/session/userinfo"))

    def version(self) -> str:
        return str(self.request("GET", "/api/version", auth=False).get("Version", ""))

    def update_password(self, name: str, current: str, new: str) -> None:
        body = {"name": name, "currentPassword": current, "newPassword": new}
        self.request("PUT", "/api/v1/account/password", body)

    # ----------------------------------------------------------------------- clusters

    def get_cluster(self, server: str) -> dict[str, Any] | None:
        """The cluster registered at ``server``, None when there is none (Argo CD: 403)."""
        try:
            return dict(self.request("GET", f"/api/v1/clusters/{quote(server, safe='')}"))
        except ArgoCDError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def list_clusters(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/clusters").get("items") or [])

    def upsert_cluster(self, cluster: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/api/v1/clusters", cluster, {"upsert": "true"}))

    # ----------------------------------------------------------------------- repositories

    def list_repositories(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/repositories").get("items") or [])

    def get_repository(self, url: str, force_refresh: bool = False) -> dict[str, Any] | None:
        query = {"forceRefresh": "true"} if force_refresh else None
        try:
            return dict(
                self.request("GET", f"/api/v1/repositories/{quote(url, safe='')}", query=query)
            )
        except ArgoCDError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def upsert_repository(self, repository: Mapping[str, Any]) -> None:
        # The answer to an upsert-update echoes the request, password included: discarded.
        self.request("POST", "/api/v1/repositories", repository, {"upsert": "true"})

    def list_repocreds(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/v1/repocreds").get("items") or [])

    def upsert_repocreds(self, creds: Mapping[str, Any]) -> None:
        self.request("POST", "/api/v1/repocreds", creds, {"upsert": "true"})

    def ssh_known_hosts(self, host: str) -> list[dict[str, Any]]:
        query = {"hostNamePattern": host, "certType": "ssh"}
        return list(self.request("GET", "/api/v1/certificates", query=query).get("items") or [])

    def add_ssh_known_hosts(self, items: list[dict[str, Any]], upsert: bool = False) -> None:
        """Add known-hosts entries (``argocd cert add-ssh``); ``upsert`` replaces a changed key."""
        query = {"upsert": "true" if upsert else "false"}
        self.request("POST", "/api/v1/certificates", {"items": items}, query)
