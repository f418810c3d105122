"""The reader of ``argocd/access.toml``: accounts, RBAC and SSO (shape in ``tirosh.access``).

(Over 300 lines: one file's reader with its cross-checks, accounts to roles to bindings to
the admin way in, which need each other's results.)

Everything is checked here, before any connection: account and role names, capabilities,
each permission against Argo CD's grammar (``tirosh.rbac``: unknown resources and actions,
malformed patterns), bindings to roles nobody declared, a login account without a password
variable, an SSO block without its secret variable, and retiring admin without another admin
way in. ``policy.default`` broader than read-only is a warning naming it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from tirosh import rbac, regular_file
from tirosh.access import (
    CAPABILITIES,
    Access,
    Account,
    Binding,
    Dex,
    Role,
    Sso,
    admin_ways_in,
    default_warning,
)
from tirosh.site.reader import ENV_NAME, Report, Table, read_toml
from tirosh.site.values import download_url_problem

__all__ = ["read_access"]

_TOP: Final = ("admin", "accounts", "rbac", "sso", "dex")
_DEX_KEYS: Final = ("url", "connectors", "secrets")
_CONNECTOR_KEYS: Final = ("type", "id", "name", "config")
# Connector settings that hold a secret: only a $reference to an argocd-secret key there.
_SECRET_WORDS: Final = ("secret", "password", "bindpw", "token", "privatekey")
_ACCOUNT_KEYS: Final = ("name", "capabilities", "enabled", "password_env")
_RBAC_KEYS: Final = ("default", "scopes", "roles", "bindings")
_ROLE_KEYS: Final = ("name", "permissions")
_BINDING_KEYS: Final = ("role", "groups", "accounts")
_SSO_KEYS: Final = (
    "name",
    "issuer",
    "client_id",
    "client_secret_env",
    "scopes",
    "groups_claim",
    "url",
    "root_ca_file",
)
# Argo CD's account names end up in ConfigMap keys (accounts.<name>) and in JWT subjects.
_ACCOUNT_NAME: Final = re.compile(r"[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?", re.ASCII)
_ROLE_NAME: Final = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}", re.ASCII)
# A subject in a policy line: no field separator, no quote, no blank at either end.
_SUBJECT: Final = re.compile(r"[^,\"\s](?:[^,\"]*[^,\"\s])?")


def read_access(report: Report, path: Path, ingress_host: str | None = None) -> Access:
    """What the file declares (nothing when it is absent); problems and warnings recorded.

    + ingress_host: the site's Argo CD host, the default of ``sso.url`` (``https://HOST``)
    """
    top = read_toml(report, path, optional=True)
    if top is None:
        return Access()
    for key in top.data:
        if key not in _TOP:
            top.problem(str(key), f"unknown key (known: {', '.join(_TOP)})")
    admin = top.table("admin")
    admin_enabled = None
    if admin is not None:
        admin.allow(("enabled",))
        admin_enabled = admin.boolean("enabled", required=True)
    accounts = _accounts(top)
    rbac_table = top.table("rbac")
    roles: tuple[Role, ...] = ()
    bindings: tuple[Binding, ...] = ()
    default: str | None = None
    scopes: tuple[str, ...] | None = None
    if rbac_table is not None:
        rbac_table.allow(_RBAC_KEYS)
        roles = _roles(rbac_table)
        default = _default(rbac_table, roles)
        listed = rbac_table.string_list("scopes")
        scopes = None if listed is None else tuple(listed)
        bindings = _bindings(rbac_table, roles, accounts)
    sso = _sso(top, report, path, ingress_host)
    dex = _dex(top, ingress_host)
    if sso is not None and dex is not None:
        top.problem("dex", "declare [sso] or [dex], not both (Argo CD logs in through one)")
    access = Access(
        admin_enabled=admin_enabled,
        accounts=accounts,
        roles=roles,
        bindings=bindings,
        policy_default=default,
        scopes=scopes,
        sso=sso,
        dex=dex,
        rbac=rbac_table is not None,
    )
    if admin_enabled is False:
        _check_retirement(top, access)
    if warning := default_warning(default):
        report.warnings.append(f"{top.file}: {warning}")
    return access


def _accounts(top: Table) -> tuple[Account, ...]:
    accounts: list[Account] = []
    for entry in top.entries("accounts"):
        entry.allow(_ACCOUNT_KEYS)
        name = entry.string("name", required=True)
        if name is not None and (name == "admin" or not _ACCOUNT_NAME.fullmatch(name)):
            why = (
                "admin is built in (see [admin])"
                if name == "admin"
                else ("must be lowercase letters, digits, '-', '_', '.' (at most 63)")
            )
            entry.problem("name", f"{why}, got {name[:60]!r}")
            name = None
        if name is not None and any(a.name == name for a in accounts):
            entry.problem("name", f"account {name} is declared twice")
            name = None
        capabilities = _capabilities(entry)
        enabled = entry.boolean("enabled")
        password_env = entry.env_name("password_env")
        if capabilities is not None and password_env and "login" not in capabilities:
            entry.problem("password_env", "only a login account has a password")
        needs_password = capabilities is not None and "login" in capabilities
        if needs_password and password_env is None and "password_env" not in entry.data:
            entry.problem("password_env", "a login account needs the variable holding its password")
        if name is not None and capabilities is not None:
            accounts.append(
                Account(name, capabilities, True if enabled is None else enabled, password_env)
            )
    return tuple(accounts)


def _capabilities(entry: Table) -> tuple[str, ...] | None:
    listed = entry.string_list("capabilities", required=True)
    if listed is None:
        return None
    wrong = [c for c in listed if c not in CAPABILITIES]
    if wrong or not listed:
        entry.problem(
            "capabilities",
            f"must be some of {', '.join(CAPABILITIES)}, got {', '.join(map(repr, wrong)) or 'none'}",
        )
        return None
    return tuple(dict.fromkeys(listed))


def _roles(table: Table) -> tuple[Role, ...]:
    roles: list[Role] = []
    for entry in table.entries("roles"):
        entry.allow(_ROLE_KEYS)
        name = entry.string("name", required=True)
        if name is not None:
            bare = name.removeprefix("role:")
            if not _ROLE_NAME.fullmatch(bare):
                entry.problem("name", f"must be letters, digits, '-', '_', '.', got {name[:60]!r}")
                name = None
            elif rbac.role_subject(bare) in rbac.BUILTIN_ROLES:
                entry.problem("name", f"role:{bare} is built into Argo CD: bind it instead")
                name = None
            elif any(r.name == bare for r in roles):
                entry.problem("name", f"role {bare} is declared twice")
                name = None
            else:
                name = bare
        permissions = _permissions(entry)
        if name is not None and permissions is not None:
            roles.append(Role(name, permissions))
    return tuple(roles)


def _permissions(entry: Table) -> tuple[rbac.Permission, ...] | None:
    listed = entry.string_list("permissions", required=True)
    if listed is None:
        return None
    if not listed:
        entry.problem("permissions", "a role grants at least one permission")
        return None
    permissions = []
    for index, text in enumerate(listed):
        permission, problem = rbac.parse_permission(text)
        if problem:
            entry.problem(f"permissions[{index}]", problem)
        elif permission is not None:
            permissions.append(permission)
    return tuple(permissions) if len(permissions) == len(listed) else None


def _role_ref(table: Table, key: str, text: str, roles: tuple[Role, ...]) -> str | None:
    subject = rbac.role_subject(text)
    if subject in rbac.BUILTIN_ROLES or any(r.subject == subject for r in roles):
        return subject
    declared = [r.name for r in roles] + ["admin", "readonly"]
    table.problem(key, f"role {text[:60]!r} is not declared (declared: {', '.join(declared)})")
    return None


def _default(table: Table, roles: tuple[Role, ...]) -> str | None:
    text = table.string("default", allow_empty=True)
    if text is None or text == "":
        return text
    return _role_ref(table, "default", text, roles)


def _bindings(
    table: Table, roles: tuple[Role, ...], accounts: tuple[Account, ...]
) -> tuple[Binding, ...]:
    bindings = []
    names = {a.name for a in accounts} | {"admin"}
    for entry in table.entries("bindings"):
        entry.allow(_BINDING_KEYS)
        text = entry.string("role", required=True)
        role = None if text is None else _role_ref(entry, "role", text, roles)
        groups = tuple(entry.string_list("groups") or ())
        listed = tuple(entry.string_list("accounts") or ())
        for index, group in enumerate(groups):
            if not _SUBJECT.fullmatch(group):
                entry.problem(f"groups[{index}]", f"cannot be a policy subject: {group[:60]!r}")
        for index, account in enumerate(listed):
            if account not in names:
                entry.problem(
                    f"accounts[{index}]",
                    f"account {account[:60]!r} is not declared in [[accounts]]",
                )
        if not groups and not listed:
            entry.problem("role", "a binding names groups or accounts")
        if role is not None:
            bindings.append(Binding(role, groups, listed))
    return tuple(bindings)


def _sso(top: Table, report: Report, path: Path, ingress_host: str | None) -> Sso | None:
    table = top.table("sso")
    if table is None:
        return None
    table.allow(_SSO_KEYS)
    issuer = table.string("issuer", required=True)
    if issuer is not None and (problem := _https_problem(issuer)):
        table.problem("issuer", problem)
        issuer = None
    client_id = table.string("client_id", required=True)
    secret_env = table.env_name("client_secret_env", required=True)
    scopes = table.string_list("scopes")
    claim = table.string("groups_claim")
    name = table.string("name")
    url = _url(table, ingress_host)
    root_ca = _root_ca(table, report, path)
    if scopes is not None and "openid" not in scopes:
        table.problem("scopes", "an OIDC login requests the openid scope")
        scopes = None
    if not (issuer and client_id and secret_env and url):
        return None
    return Sso(
        issuer=issuer,
        client_id=client_id,
        client_secret_env=secret_env,
        url=url,
        scopes=tuple(scopes) if scopes else Sso.scopes,
        groups_claim=claim or "groups",
        name=name or "SSO",
        root_ca=root_ca,
    )


def _url(table: Table, ingress_host: str | None) -> str | None:
    url = table.string("url")
    if url is None and ingress_host:
        url = f"https://{ingress_host}"
    if url is None:
        table.problem(
            "url", "required: Argo CD's external URL (no argocd_ingress_host to derive it)"
        )
    elif problem := download_url_problem(url):
        table.problem("url", problem)
        url = None
    return url.rstrip("/") if url else None


def _dex(top: Table, ingress_host: str | None) -> Dex | None:
    table = top.table("dex")
    if table is None:
        return None
    table.allow(_DEX_KEYS)
    url = _url(table, ingress_host)
    connectors = []
    for entry in table.entries("connectors"):
        entry.allow(_CONNECTOR_KEYS)
        fields = {key: entry.string(key, required=True) for key in ("type", "id", "name")}
        config = entry.table("config", required=True)
        if config is not None:
            _secret_references(config, config.data)
        if all(fields.values()) and config is not None:
            connectors.append({**fields, "config": dict(config.data)})
    if not connectors:
        table.problem("connectors", "at least one [[dex.connectors]]")
    secrets = []
    listed = table.table("secrets")
    for key, variable in listed.data.items() if listed is not None else ():
        if not isinstance(variable, str) or not ENV_NAME.fullmatch(variable):
            table.problem(f"secrets.{key}", f"must name an environment variable, got {variable!r}")
        elif not str(key).startswith("dex."):
            table.problem(f"secrets.{key}", "an argocd-secret key for Dex starts with dex.")
        else:
            secrets.append((str(key), variable))
    if url is None or not connectors:
        return None
    return Dex(url, tuple(connectors), tuple(secrets))


def _secret_references(table: Table, data: object, where: str = "") -> None:
    """A connector setting that holds a secret must be ``$<argocd-secret key>``."""
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{where}.{key}" if where else str(key)
            if any(word in str(key).lower() for word in _SECRET_WORDS) and isinstance(value, str):
                if not value.startswith("$"):
                    table.problem(
                        name, "a secret here is a $reference to argocd-secret ([dex.secrets])"
                    )
            else:
                _secret_references(table, value, name)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            _secret_references(table, item, f"{where}[{index}]")


def _https_problem(url: str) -> str | None:
    if problem := download_url_problem(url):
        return problem
    if not url.startswith("https://"):
        return f"an OIDC issuer is https://, got {url[:60]!r}"
    return None


def _root_ca(table: Table, report: Report, path: Path) -> str | None:
    ca = table.path("root_ca_file")
    if ca is None:
        return None
    try:
        text = regular_file.read_text(ca)
    except (OSError, ValueError) as exc:  # ValueError: a FIFO or device, or not UTF-8
        table.problem("root_ca_file", f"cannot read {ca}: {getattr(exc, 'strerror', None) or exc}")
        return None
    if "-----BEGIN CERTIFICATE-----" not in text:
        table.problem("root_ca_file", f"{ca} holds no PEM certificate")
        return None
    return text


def _check_retirement(top: Table, access: Access) -> None:
    """admin.enabled = false needs another way in with admin rights, declared here."""
    accounts, groups = admin_ways_in(access)
    if accounts or groups:
        return
    top.problem(
        "admin.enabled",
        "false would lock everyone out: no other way in has admin rights (bind role admin to "
        "an enabled login account with password_env, or to an SSO group with [sso] or [dex])",
    )
