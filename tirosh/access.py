"""Who may do what in Argo CD: the accounts, RBAC and SSO a site declares. Pure.

``sites/<site>/argocd/access.toml`` (read by ``tirosh.site.access_file``)::

    [admin]
    enabled = true                       # false retires admin (only with another admin way in)

    [[accounts]]
    name = "ops"
    capabilities = ["login"]             # login, apiKey
    password_env = "ARGOCD_OPS_PASSWORD" # a login account's password: set through the API

    [[accounts]]
    name = "ci"
    capabilities = ["apiKey"]            # tokens: make argocd/account/token ACCOUNT=ci

    [rbac]
    default = "role:readonly"            # policy.default ("" for none)
    scopes = ["groups", "email"]         # the claims matched as subjects

    [[rbac.roles]]
    name = "deployer"                    # role:deployer in the policy
    permissions = ["applications, get, prod/*", "applications, sync, prod/*"]

    [[rbac.bindings]]
    role = "deployer"                    # a declared role, or admin / readonly (built in)
    groups = ["ops-team"]
    accounts = ["ci"]

    [sso]
    issuer = "https://idp.example/realms/ops"
    client_id = "argocd"
    client_secret_env = "ARGOCD_OIDC_CLIENT_SECRET"
    scopes = ["openid", "profile", "email", "groups"]
    groups_claim = "groups"
    url = "https://argocd.example"        # Argo CD's external URL (the redirect's base)

What it renders are the keys of ``argocd-cm``, ``argocd-rbac-cm`` and ``argocd-secret`` the
site owns (``rendered``); the local phase applies only those (``tirosh.access_plan``). Account
passwords and tokens never become keys here: passwords go through Argo CD's API, tokens are
issued on request. The client secret is only ever named: ``oidc.config`` refers to it as
``$oidc.clientSecret``, the way Argo CD documents, and its value is a key of argocd-secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from tirosh.rbac import BUILTIN_ROLES, Permission, role_subject

__all__ = [
    "ACCESS_FILE",
    "CAPABILITIES",
    "CLIENT_SECRET_KEY",
    "Access",
    "Account",
    "Binding",
    "Dex",
    "Rendered",
    "Role",
    "Sso",
    "admin_ways_in",
    "policy_csv",
    "rendered",
]

ACCESS_FILE: Final = "argocd/access.toml"
CAPABILITIES: Final = ("login", "apiKey")
ARGOCD_CM: Final = "argocd-cm"
RBAC_CM: Final = "argocd-rbac-cm"
ARGOCD_SECRET: Final = "argocd-secret"
CLIENT_SECRET_KEY: Final = "oidc.clientSecret"
# policy.default values that grant no more than reading.
READ_ONLY_DEFAULTS: Final = ("", "role:readonly")


@dataclass(frozen=True)
class Account:
    """A local account (``accounts.<name>`` in argocd-cm)."""

    name: str
    capabilities: tuple[str, ...]
    enabled: bool = True
    password_env: str | None = None  # login accounts: the variable holding the password


@dataclass(frozen=True)
class Role:
    """A role of the policy: ``role:<name>`` and its grants."""

    name: str
    permissions: tuple[Permission, ...]

    @property
    def subject(self) -> str:
        return role_subject(self.name)


@dataclass(frozen=True)
class Binding:
    """Groups (SSO claims) and local accounts given a role."""

    role: str  # the subject, role:<name>
    groups: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sso:
    """One OIDC provider Argo CD logs users in with (``oidc.config``)."""

    issuer: str
    client_id: str
    client_secret_env: str
    url: str
    scopes: tuple[str, ...] = ("openid", "profile", "email", "groups")
    groups_claim: str = "groups"
    name: str = "SSO"
    root_ca: str | None = None  # PEM of the CA that signed the issuer's certificate


@dataclass(frozen=True)
class Dex:
    """Argo CD's bundled Dex (``dex.config``): its connectors, and the argocd-secret keys their
    ``$references`` name, each filled from an environment variable."""

    url: str
    connectors: tuple[dict[str, Any], ...]
    secrets: tuple[tuple[str, str], ...] = ()  # argocd-secret key, variable


@dataclass(frozen=True)
class Access:
    """Everything ``argocd/access.toml`` declares; an absent file declares nothing."""

    admin_enabled: bool | None = None  # None: admin.enabled is not the site's
    accounts: tuple[Account, ...] = ()
    roles: tuple[Role, ...] = ()
    bindings: tuple[Binding, ...] = ()
    policy_default: str | None = None
    scopes: tuple[str, ...] | None = None
    sso: Sso | None = None
    dex: Dex | None = None
    # Whether the file declares an [rbac] table (then policy.csv is the site's).
    rbac: bool = False

    @property
    def declares_anything(self) -> bool:
        return bool(
            self.admin_enabled is not None
            or self.accounts
            or self.rbac
            or self.sso is not None
            or self.dex is not None
        )

    def account(self, name: str) -> Account | None:
        return next((a for a in self.accounts if a.name == name), None)


@dataclass(frozen=True)
class Rendered:
    """The keys the site owns, per object. ``secret`` values are secrets: never shown."""

    argocd_cm: dict[str, str] = field(default_factory=dict)
    rbac_cm: dict[str, str] = field(default_factory=dict)
    secret: dict[str, str] = field(default_factory=dict)


def policy_csv(access: Access) -> str:
    """The ``policy.csv`` of the declared roles and bindings (one line each, in file order)."""
    lines = [p.line(role.subject) for role in access.roles for p in role.permissions]
    for binding in access.bindings:
        lines += [f"g, {group}, {binding.role}" for group in binding.groups]
        lines += [f"g, {account}, {binding.role}" for account in binding.accounts]
    return "\n".join(lines) + "\n" if lines else ""


def oidc_config(sso: Sso) -> str:
    """``oidc.config``: the secret by reference only (``$oidc.clientSecret``)."""
    config: dict[str, object] = {
        "name": sso.name,
        "issuer": sso.issuer,
        "clientID": sso.client_id,
        "clientSecret": f"${CLIENT_SECRET_KEY}",
        "requestedScopes": list(sso.scopes),
        "requestedIDTokenClaims": {sso.groups_claim: {"essential": True}},
    }
    if sso.root_ca:
        config["rootCA"] = sso.root_ca
    return yaml.safe_dump(config, sort_keys=False)


def scopes_value(scopes: tuple[str, ...]) -> str:
    """argocd-rbac-cm ``scopes`` as Argo CD reads it (a YAML list: ``[groups, email]``)."""
    return "[" + ", ".join(scopes) + "]"


def rendered(access: Access, environ: Mapping[str, str]) -> Rendered:
    """The keys of argocd-cm, argocd-rbac-cm and argocd-secret the site declares.

    + environ: where the client secret's variable is read (a missing one is rendered empty;
      ``missing_variables`` names it before anything runs)
    """
    result = Rendered()
    if access.admin_enabled is not None:
        result.argocd_cm["admin.enabled"] = str(access.admin_enabled).lower()
    for account in access.accounts:
        result.argocd_cm[f"accounts.{account.name}"] = ", ".join(account.capabilities)
        result.argocd_cm[f"accounts.{account.name}.enabled"] = str(account.enabled).lower()
    if access.sso is not None:
        result.argocd_cm["url"] = access.sso.url
        result.argocd_cm["oidc.config"] = oidc_config(access.sso)
        result.secret[CLIENT_SECRET_KEY] = environ.get(access.sso.client_secret_env, "")
    if access.dex is not None:
        result.argocd_cm["url"] = access.dex.url
        config = {"connectors": [dict(c) for c in access.dex.connectors]}
        result.argocd_cm["dex.config"] = yaml.safe_dump(config, sort_keys=False)
        for key, variable in access.dex.secrets:
            result.secret[key] = environ.get(variable, "")
    if access.rbac:
        result.rbac_cm["policy.csv"] = policy_csv(access)
        if access.policy_default is not None:
            result.rbac_cm["policy.default"] = access.policy_default
        scopes = access_scopes(access)
        if scopes is not None:
            result.rbac_cm["scopes"] = scopes_value(scopes)
    return result


def access_scopes(access: Access) -> tuple[str, ...] | None:
    """The declared scopes, with the SSO groups claim added (its groups are subjects)."""
    if access.scopes is None and (access.sso is None or access.sso.groups_claim == "groups"):
        return None  # Argo CD's default, [groups]
    scopes = access.scopes if access.scopes is not None else ("groups",)
    if access.sso is not None and access.sso.groups_claim not in scopes:
        scopes = (*scopes, access.sso.groups_claim)
    return scopes


def missing_variables(access: Access, environ: Mapping[str, str]) -> list[str]:
    """The variables the site names that are not set (passwords, the client secret)."""
    names = [a.password_env for a in access.accounts if a.password_env and a.enabled]
    if access.sso is not None:
        names.append(access.sso.client_secret_env)
    if access.dex is not None:
        names += [variable for _, variable in access.dex.secrets]
    return [name for name in names if name and not environ.get(name)]


def admin_ways_in(access: Access) -> tuple[list[Account], list[str]]:
    """Ways in with admin rights besides admin: login accounts with a password, SSO groups."""
    admin_roles = {"role:admin"} | {
        r.subject
        for r in access.roles
        if any(p.resource == "*" and p.action == "*" for p in r.permissions)
    }
    accounts: list[Account] = []
    groups: list[str] = []
    for binding in access.bindings:
        if binding.role not in admin_roles:
            continue
        for name in binding.accounts:
            account = access.account(name)
            if (
                account
                and account.enabled
                and "login" in account.capabilities
                and account.password_env
            ):
                accounts.append(account)
        if access.sso is not None or access.dex is not None:
            groups.extend(binding.groups)
    return accounts, groups


def default_warning(default: str | None) -> str | None:
    """policy.default broader than read-only: everyone who logs in gets it."""
    if default is None or default in READ_ONLY_DEFAULTS:
        return None
    wide = "every user who logs in gets it" + (" (full admin)" if default == "role:admin" else "")
    return f"rbac.default = {default!r} is broader than role:readonly: {wide}"


def is_builtin(role: str) -> bool:
    return role in BUILTIN_ROLES
