"""The PVE API client: proxmoxer with API-token auth, TLS always verified.

The certificate is checked against ``[proxmox] ca_file`` (PVE's own CA, the node's
``/etc/pve/pve-root-ca.pem``), or its SHA-256 must equal ``[proxmox] fingerprint`` (the pin
replaces the chain and name checks, and is checked before a request is sent), or, with
neither, against the system's CA store. There is no way to turn verification off.

The token secret comes from ``PROXMOX_TOKEN_SECRET`` only; it travels in the
``Authorization`` header, never in a URL, argv or output, and is cut out of every message.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import requests
from proxmoxer import ProxmoxAPI, ResourceException
from requests.adapters import HTTPAdapter

from tirosh import regular_file
from tirosh.errors import OperatorError
from tirosh.site import Problem, SiteError
from tirosh.vms import TOKEN_SECRET_VARIABLE, ProxmoxAccess

__all__ = ["ProxmoxError", "connect", "describe_error"]

TIMEOUT = 30  # seconds for one API request


class ProxmoxError(OperatorError):
    """A failure the operator can act on, as one line (a PVE answer, TLS, a missing secret)."""


class _PinnedAdapter(HTTPAdapter):
    """HTTPS whose server certificate must have this SHA-256 fingerprint (urllib3 checks it
    right after the handshake, before the request): the chain is not consulted."""

    def __init__(self, fingerprint: str) -> None:
        self._pin = fingerprint.replace(":", "").lower()
        super().__init__()

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        pool.pop("ca_certs", None)
        pool.pop("ca_cert_dir", None)
        pool.update(cert_reqs="CERT_NONE", assert_fingerprint=self._pin)
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        # The pin is the verification; requests would put the system CAs back here.
        conn.cert_reqs = "CERT_NONE"
        conn.ca_certs = None
        conn.assert_fingerprint = self._pin


def _check_ca_file(access: ProxmoxAccess) -> str | bool:
    if access.ca_file is None:
        return True
    try:
        text = regular_file.read_text(access.ca_file, "CA file")
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except ValueError as exc:
        reason = str(exc)
    else:
        if "-----BEGIN CERTIFICATE-----" in text:
            return str(access.ca_file)
        reason = "holds no PEM certificate"
    raise SiteError(
        [Problem(access.file, "proxmox.ca_file", f"cannot use '{access.ca_file}': {reason}")]
    )


def token_secret(access: ProxmoxAccess, environ: Mapping[str, str]) -> str:
    secret = environ.get(TOKEN_SECRET_VARIABLE, "")
    if not secret.strip():
        raise ProxmoxError(
            f"{TOKEN_SECRET_VARIABLE} is not set: export the secret of API token "
            f"{access.token_id} (it is read from the environment only)"
        )
    return secret.strip()


def connect(
    access: ProxmoxAccess,
    environ: Mapping[str, str],
    verbose: int = 0,
    log: TextIO | None = None,
) -> ProxmoxAPI:
    """A client for ``access``; nothing is sent yet.

    + verbose: 1 logs each request's method, path and status to ``log``; 2 adds its form
      fields (never a header: the token is only there)
    """
    verify = _check_ca_file(access)
    secret = token_secret(access, environ)
    user, _, token = access.token_id.partition("!")
    # proxmoxer logs request bodies at INFO; keep its loggers quiet whatever the root logger.
    for name in ("proxmoxer", "proxmoxer.core", "proxmoxer.backends.https"):
        logging.getLogger(name).setLevel(logging.WARNING)
    api = ProxmoxAPI(
        access.host,
        port=access.port,
        user=user,
        token_name=token,
        token_value=secret,
        verify_ssl=verify,
        timeout=TIMEOUT,
        service="PVE",
    )
    session: requests.Session = api._store["session"]
    if access.fingerprint:
        session.mount(
            f"https://{_url_host(access.host)}:{access.port}/", _PinnedAdapter(access.fingerprint)
        )
    if verbose:
        session.hooks["response"].append(_logger(verbose, log or sys.stderr))
    return api


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _logger(verbose: int, log: TextIO) -> Any:
    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = requests.utils.urlparse(request.url or "").path
        line = f"proxmox: {request.method} {path} -> {response.status_code}"
        if verbose > 1 and request.body:
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
            line += f" [{body}]"
        print(line, file=log)

    return hook


def describe_error(exc: BaseException, access: ProxmoxAccess, secret: str | None = None) -> str:
    """One line for a failed request: PVE's own message, or what went wrong on the way."""
    if isinstance(exc, ResourceException):
        text = _pve_message(exc)
    elif isinstance(exc, requests.exceptions.SSLError):
        how = (
            f"ca_file {access.ca_file}"
            if access.ca_file
            else "fingerprint"
            if access.fingerprint
            else "the system CA store"
        )
        text = (
            f"the API certificate of {access.api_url} does not verify against {how} "
            f"({_root_cause(exc)}); check [proxmox] in {access.file}"
        )
    elif isinstance(exc, requests.exceptions.Timeout):
        text = f"{access.api_url} did not answer within {TIMEOUT} s"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        text = f"cannot reach {access.api_url}: {_root_cause(exc)}"
    else:
        text = str(exc)
    text = " ".join(text.split())
    return text.replace(secret, "***") if secret else text


def _pve_message(exc: ResourceException) -> str:
    # PVE answers with its message as the HTTP reason and in the body; errors are per field.
    message = str(exc.content or exc.status_message).strip()
    errors = exc.errors if isinstance(exc.errors, dict) else None
    if errors:
        message += " " + "; ".join(f"{k}: {str(v).strip()}" for k, v in errors.items())
    return f"PVE answered {exc.status_code}: {message}"


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    reason = getattr(seen, "reason", None)
    return str(reason or seen).splitlines()[0][:200]
