"""A small client for the Argo CD REST API (grpc-gateway in front of argocd-server).

(Over 300 lines on purpose: the one class holds every call the project makes and the mapping of
every failure to its line, so all calls share one transport, one set of bounds and one wording.)

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
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from tirosh.answers import decode_json, sanitized
from tirosh.errors import OperatorError
from tirosh.redact import Redacted

__all__ = ["PORT_FORWARD_HINT", "ArgoCDError", "Client", "LoginFailed"]

JSON: Final = "application/json"
TIMEOUT: Final = 60.0  # above repo-server's own 60 s connection test, so its answer arrives
# The largest answer read: Argo CD's biggest (a list of a few thousand repositories or
# clusters) is a few MB; a proxy's endless or huge answer is cut here, not held in memory.
MAX_ANSWER: Final = 16 * 1024 * 1024
PORT_FORWARD_HINT: Final = (
    "run `make argocd/port-forward SITE=<site>` and set ARGOCD_SERVER=127.0.0.1:8080, or set "
    "ARGOCD_AUTO_PORT_FORWARD=true"
)


# Repository requests a command keeps in flight at once: Argo CD's API server serves them
# concurrently, and each waits on a connection test.
PARALLEL_REQUESTS: Final = 4
# How often to ask again for an object Argo CD does not know yet (a Secret just applied).
UNKNOWN_POLL: Final = 0.25


class ArgoCDError(OperatorError):
    """A failed API call; ``str()`` is one actionable line, ``status`` the HTTP status if any."""

    def __init__(self, message: str, status: int | None = None, api_message: str = "") -> None:
        super().__init__(" ".join(message.split()))
        self.status = status
        self.api_message = api_message


class LoginFailed(ArgoCDError):
    """Argo CD refused the user name or password."""


class _Slow(Exception):
    """The answer did not finish within the request's time."""


class _TooLarge(Exception):
    """The answer is larger than MAX_ANSWER."""


def _read(response: Any, until: float) -> bytes:
    """The whole answer, read in chunks against a wall clock and a size cap: a server that
    drips a byte just inside each socket timeout, or sends without end, cannot hold the
    command or fill its memory."""
    chunks: list[bytes] = []
    size = 0
    while True:
        left = until - time.monotonic()
        if left <= 0:
            raise _Slow
        _set_timeout(response, left)
        # read1: what one socket read brings, so the clock is checked between reads (read()
        # would wait for the whole length, byte by dripped byte).
        read = getattr(response, "read1", None) or response.read
        chunk = read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER:
            raise _TooLarge
        chunks.append(chunk)


def _set_timeout(response: Any, seconds: float) -> None:
    # http.client reads through the socket's own timeout, set at connect; lower it to what is
    # left of the request's time so that one slow read cannot outlast it.
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.01))


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


def _api_message(body: bytes, secrets: tuple[str, ...] = ()) -> str:
    try:
        data = decode_json(body)
    except ValueError:
        return sanitized(body.decode(errors="replace"), secrets)
    if isinstance(data, Mapping):
        return sanitized(str(data.get("message") or data.get("error") or ""), secrets, 500)
    return ""


class Client:
    """Argo CD at ``base_url`` (``https://host[:port]`` or ``http://...``)."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: bool = True,
        timeout: float = TIMEOUT,
        deadline: float | None = None,
    ) -> None:
        """+ timeout: seconds one request may take, answer included (not per socket read)
        + deadline: ``time.monotonic()`` after which no request is sent or waited for (the
          command's own bound), None for none"""
        self.base_url = base_url.rstrip("/")
        self.verify = verify
        self.timeout = timeout
        self.deadline = deadline
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
        """Send one request; the decoded JSON answer, or ArgoCDError (one line)."""
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": JSON, "Accept": JSON}
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        secrets = self._secrets(body)
        limit = self._limit(method, path)
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=limit) as response:
                raw = _read(response, time.monotonic() + limit)
                content_type = response.headers.get("Content-Type", "")
                status = response.status
                expected = response.headers.get("Content-Length", "")
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc, method, path, secrets) from None
        except _Slow:
            raise ArgoCDError(
                f"Argo CD at {self.base_url} did not finish answering {method} {path} "
                f"within {limit:g} s"
            ) from None
        except _TooLarge:
            raise ArgoCDError(
                f"the answer to {method} {path} from {self.base_url} is larger than "
                f"{MAX_ANSWER // (1024 * 1024)} MB: not Argo CD's (a proxy?)"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, limit) from None
        if expected.isdigit() and len(raw) < int(expected):
            raise ArgoCDError(
                f"the answer to {method} {path} from {self.base_url} was cut short "
                f"({len(raw)} of {expected} bytes): the connection dropped, or a proxy cut it"
            )
        return self._decoded(raw, content_type, status, method, path, secrets)

    def _limit(self, method: str, path: str) -> float:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ArgoCDError(
                f"the command's deadline passed before {method} {path} "
                "(TIROSH_COMMAND_DEADLINE seconds)"
            )
        return min(self.timeout, left)

    def _secrets(self, body: Any) -> tuple[str, ...]:
        """What an echo of this request must never show: its string values and the token."""
        found = [str(self._token)] if self._token is not None else []
        if isinstance(body, Mapping):
            found += [v for v in body.values() if isinstance(v, str)]
            config = body.get("config")
            if isinstance(config, Mapping):
                found += [v for v in config.values() if isinstance(v, str)]
        return tuple(found)

    def _decoded(
        self,
        raw: bytes,
        content_type: str,
        status: int,
        method: str,
        path: str,
        secrets: tuple[str, ...],
    ) -> Any:
        if not raw.strip():
            return {}
        unexpected = f"{self.base_url} answered {method} {path} with {status}"
        if JSON not in content_type.lower():
            excerpt = sanitized(raw[:2048].decode(errors="replace"), secrets)
            raise ArgoCDError(
                f"{unexpected} {sanitized(content_type or 'no content type', (), 60)}, not "
                f"Argo CD's JSON (a login portal or proxy?): {excerpt}",
                status,
            )
        try:
            return decode_json(raw)
        except ValueError as exc:
            raise ArgoCDError(f"{unexpected}, {exc}: not Argo CD's answer", status) from None

    def request_object(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> dict[str, Any]:
        """``request`` whose answer must be a JSON object (ArgoCDError otherwise)."""
        answer = self.request(method, path, body, query, auth)
        if not isinstance(answer, Mapping):
            raise ArgoCDError(
                f"{self.base_url} answered {method} {path} with JSON "
                f"{type(answer).__name__}, not an object: not Argo CD's answer"
            )
        return dict(answer)

    def _items(self, path: str) -> list[dict[str, Any]]:
        """The ``items`` of a list answer, each an object (ArgoCDError otherwise)."""
        items = self.request_object("GET", path).get("items") or []
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            raise ArgoCDError(
                f"{self.base_url} answered GET {path} with items that are not a list of "
                "objects: not Argo CD's answer"
            )
        return [dict(item) for item in items]

    def _http_error(
        self,
        exc: urllib.error.HTTPError,
        method: str,
        path: str,
        secrets: tuple[str, ...] = (),
    ) -> ArgoCDError:
        status = exc.code
        try:
            body = _read(exc, time.monotonic() + min(self.timeout, 10.0))
        except (_Slow, _TooLarge, OSError, http.client.HTTPException):
            body = b""
        message = _api_message(body, secrets)
        where = f"{method} {path}"
        if status in (301, 302, 307, 308):
            location = sanitized(exc.headers.get("Location", "?"), secrets, 200)
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

    def _transport_error(self, exc: BaseException, within: float | None = None) -> ArgoCDError:
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
            seconds = self.timeout if within is None else within
            text = f"no answer from {self.base_url} within {seconds:g} s: check the server address"
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
            answer = self.request_object("POST", "/api/v1/session", body, auth=False)
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
        token = answer.get("token")
        if not isinstance(token, str) or not token:
            raise ArgoCDError(f"Argo CD at {self.base_url} answered the login without a token")
        self._token = Redacted(token)

    def userinfo(self) -> dict[str, Any]:
        return self.request_object("GET", "/api/v1/session/userinfo")

    def version(self) -> str:
        return str(self.request_object("GET", "/api/version", auth=False).get("Version", ""))

    def update_password(self, name: str, current: str, new: str) -> None:
        body = {"name": name, "currentPassword": current, "newPassword": new}
        self.request("PUT", "/api/v1/account/password", body)

    # ----------------------------------------------------------------------- clusters

    def get_cluster(self, server: str) -> dict[str, Any] | None:
        """The cluster registered at ``server``, None when there is none (Argo CD: 403)."""
        try:
            return self.request_object("GET", f"/api/v1/clusters/{quote(server, safe='')}")
        except ArgoCDError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def test_cluster(self, server: str, name: str, settle: float = 0.0) -> dict[str, Any] | None:
        """Have Argo CD test the stored credentials of the cluster at ``server`` now, and the
        cluster as it answers; None when it does not know the cluster within ``settle`` s.

        An update of the cluster's ``name`` field alone, to the name it has: the API server
        tests the connection before it stores anything (and fails with its message), then
        caches the state. A Secret applied moments ago reaches the API server through its
        informer, so a 403 (Argo CD's answer for an unknown cluster) is asked again.
        """
        path = f"/api/v1/clusters/{quote(server, safe='')}"
        body = {"server": server, "name": name}
        deadline = time.monotonic() + settle
        while True:
            try:
                return self.request_object("PUT", path, body, {"updatedFields": "name"})
            except ArgoCDError as exc:
                if exc.status not in (403, 404):
                    raise
                if time.monotonic() >= deadline:
                    return None
            time.sleep(UNKNOWN_POLL)

    def list_clusters(self) -> list[dict[str, Any]]:
        return self._items("/api/v1/clusters")

    def upsert_cluster(self, cluster: Mapping[str, Any]) -> dict[str, Any]:
        return self.request_object("POST", "/api/v1/clusters", cluster, {"upsert": "true"})

    # ----------------------------------------------------------------------- repositories

    def list_repositories(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        """Every repository with its connection state; ``force_refresh``: each tested now."""
        query = "?forceRefresh=true" if force_refresh else ""
        return self._items(f"/api/v1/repositories{query}")

    def get_repository(self, url: str, force_refresh: bool = False) -> dict[str, Any] | None:
        query = {"forceRefresh": "true"} if force_refresh else None
        try:
            return self.request_object(
                "GET", f"/api/v1/repositories/{quote(url, safe='')}", query=query
            )
        except ArgoCDError as exc:
            if exc.status in (403, 404):
                return None
            raise

    def upsert_repository(self, repository: Mapping[str, Any]) -> None:
        # The answer to an upsert-update echoes the request, password included: discarded.
        self.request("POST", "/api/v1/repositories", repository, {"upsert": "true"})

    def list_repocreds(self) -> list[dict[str, Any]]:
        return self._items("/api/v1/repocreds")

    def upsert_repocreds(self, creds: Mapping[str, Any]) -> None:
        self.request("POST", "/api/v1/repocreds", creds, {"upsert": "true"})

    def ssh_known_hosts(self, host: str) -> list[dict[str, Any]]:
        query = {"hostNamePattern": host, "certType": "ssh"}
        items = self.request_object("GET", "/api/v1/certificates", query=query).get("items")
        return [dict(i) for i in items or [] if isinstance(i, Mapping)]

    def add_ssh_known_hosts(self, items: list[dict[str, Any]], upsert: bool = False) -> None:
        """Add known-hosts entries (``argocd cert add-ssh``); ``upsert`` replaces a changed key."""
        query = {"upsert": "true" if upsert else "false"}
        self.request("POST", "/api/v1/certificates", {"items": items}, query)
