"""The local phase's access part: accounts, RBAC, SSO and admin as ``argocd/access.toml`` says.

(Over 300 lines: the access part's steps are ordered against each other, so they stay in one
place: the secret before the config that names it, admin retired last, after its proof.)

``plan`` reads the management cluster only: the keys of argocd-cm / argocd-rbac-cm /
argocd-secret the site owns (``tirosh.access_plan``) and, per login account, whether its
password is already the one in its variable (checked against the bcrypt hash Argo CD keeps in
argocd-secret, so a plan never spends one of Argo CD's five failed logins). ``apply``:

1. applies argocd-secret's keys (the client secret argocd-cm refers to), then argocd-cm's
   (admin kept enabled for now when the site retires it);
2. sets each login account's password through the API (``PUT /api/v1/account/password``,
   with the password this run logged in with as the current one);
3. applies argocd-rbac-cm's keys, then reads the policy back as Argo CD
   loads it (every ``policy*.csv`` key, in Argo CD's order) and asks Argo CD to answer with
   it: a policy Argo CD refuses fails the run with Argo CD's own message;
4. retiring admin (``admin.enabled = false``): logs in as each declared admin account and
   asks Argo CD whether it may do what only admins may; only when one is proven is
   ``admin.enabled`` set to false. Otherwise it refuses, naming what is missing.

Secrets (passwords, the client secret) are gathered before anything changes and never shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Final

import bcrypt
from kubernetes import client

from local.argocd.accounts import can_i, log_in_as
from local.argocd.api import ArgoCDError, Client
from local.argocd.session import Login
from local.kube import access_keys
from local.kube import client as kubeclient
from tirosh import rbac
from tirosh.access import (
    ARGOCD_CM,
    ARGOCD_SECRET,
    RBAC_CM,
    Access,
    Account,
    admin_ways_in,
    missing_variables,
    rendered,
)
from tirosh.access_plan import ACCESS_MANAGER, SUBJECT, Live, Target, key_changes, targets
from tirosh.errors import OperatorError
from tirosh.plan import Action, Change, Plan
from tirosh.site import Site

__all__ = [
    "ADMIN_PROOF",
    "AdminNotRetired",
    "apply",
    "plan",
    "policy_problems",
    "read_back_policy",
]

# What only role:admin may do among Argo CD's built-in roles: the proof of an admin way in.
ADMIN_PROOF: Final = (("accounts", "update", "*"), ("projects", "create", "*"))
# How long Argo CD may take to see a ConfigMap change (its informers), per wait.
SETTLE_SECONDS: Final = 30.0


# Argo CD v3.5 builds the HTTP client and provider that verify SSO session tokens once, when
# argocd-server starts (util/session NewSessionManager): a new issuer or root CA reaches the
# login but not the API until it restarts. The restart is `kubectl rollout restart`'s.
SERVER_DEPLOYMENT: Final = "argocd-server"
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"


class AdminNotRetired(OperatorError):
    """admin.enabled = false refused: no other admin way in was proven."""


def _core(site: Site) -> tuple[client.ApiClient, client.CoreV1Api]:
    api = kubeclient.api_client(kubeclient.kubeconfig_files(site.kubeconfig), site.argocd_context)
    return api, client.CoreV1Api(api)


def _check_variables(site: Site, environ: Mapping[str, str]) -> None:
    if missing := missing_variables(site.access, environ):
        raise OperatorError(
            f"sites/{site.name}/argocd/access.toml names variables that are not set: "
            f"{', '.join(missing)}; nothing was applied"
        )


def _password_action(hash_text: str | None, password: str) -> Action:
    if not hash_text:
        return "create"
    try:
        same = bcrypt.checkpw(password.encode(), hash_text.encode())
    except ValueError:  # not a bcrypt hash: Argo CD would not accept it either
        same = False
    return "unchanged" if same else "update"


def _login_accounts(access: Access) -> list[Account]:
    return [a for a in access.accounts if a.enabled and a.password_env]


def password_changes(
    core: client.CoreV1Api, site: Site, environ: Mapping[str, str]
) -> list[tuple[Account, Change]]:
    """Per login account: whether its password in Argo CD is the one its variable holds."""
    result = []
    for account in _login_accounts(site.access):
        assert account.password_env
        hash_text = access_keys.read_secret_key(
            core, site.argocd.namespace, ARGOCD_SECRET, f"accounts.{account.name}.password"
        )
        action = _password_action(hash_text, environ[account.password_env])
        result.append((account, Change(SUBJECT, action, f"password of account {account.name}")))
    return result


def _read_all(core: client.CoreV1Api, namespace: str, wanted: list[Target]) -> list[Live | None]:
    return [access_keys.read_live(core, namespace, target) for target in wanted]


def _restart_change(namespace: str) -> Change:
    return Change(
        SUBJECT,
        "update",
        f"Deployment {namespace}/{SERVER_DEPLOYMENT} restarted (Argo CD reads SSO settings at start)",
    )


def _sso_changes(changes: list[Change]) -> bool:
    keys = (" key oidc.config", " key dex.config", " key url")
    return any(c.changes and c.what.endswith(keys) for c in changes)


def restart_server(core_api: client.ApiClient, namespace: str) -> str | None:
    """Restart argocd-server as ``kubectl rollout restart`` does; a note when it has no
    Deployment (argocd-server run otherwise must be restarted by whoever runs it)."""
    apps = client.AppsV1Api(core_api)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    try:
        apps.patch_namespaced_deployment(
            SERVER_DEPLOYMENT, namespace, patch, field_manager=ACCESS_MANAGER
        )
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        return (
            f"access: no Deployment {namespace}/{SERVER_DEPLOYMENT}: restart argocd-server so "
            "that it verifies SSO sessions with the new settings"
        )
    return None


def plan(site: Site, environ: Mapping[str, str]) -> Plan:
    """What the access part would change, key by key; reads the management cluster only."""
    if not site.access.declares_anything:
        return Plan()
    _check_variables(site, environ)
    namespace = site.argocd.namespace
    api, core = _core(site)
    try:
        wanted = targets(rendered(site.access, environ))
        changes = [
            change
            for target, live in zip(wanted, _read_all(core, namespace, wanted), strict=True)
            for change in key_changes(namespace, target, live)
        ]
        changes += [change for _, change in password_changes(core, site, environ)]
        if _sso_changes(changes):
            changes.append(_restart_change(namespace))
    finally:
        api.close()
    return Plan(changes)


def _staged_argocd_cm(target: Target, live: Live | None) -> Target:
    """argocd-cm with admin left enabled until another way in is proven."""
    if target.wanted.get("admin.enabled") != "false":
        return target
    if live is not None and live.data.get("admin.enabled") == "false":
        return target  # already retired: nothing to prove again
    return Target(target.kind, target.name, dict(target.wanted, **{"admin.enabled": "true"}))


def _until(what: Callable[[], str | None], seconds: float = SETTLE_SECONDS) -> str | None:
    """Call ``what`` until it returns None (done) or ``seconds`` pass; its last reason."""
    deadline = time.monotonic() + seconds
    while True:
        reason = what()
        if reason is None or time.monotonic() > deadline:
            return reason
        time.sleep(0.5)


def _set_password(argocd: Client, login: Login, account: Account, password: str) -> None:
    if login.password is None:
        raise OperatorError(
            f"setting the password of account {account.name} needs a password login "
            f"(ARGOCD_PASSWORD for {login.username}), not {login.source}"
        )
    current = str(login.password)

    def attempt() -> str | None:
        try:
            argocd.update_password(account.name, current, password)
        except ArgoCDError as exc:
            # Until Argo CD's settings informer has seen the new accounts.<name> key.
            if exc.status == 404 or "not found" in exc.api_message:
                return str(exc)
            raise
        return None

    if reason := _until(attempt):
        raise OperatorError(f"account {account.name}: Argo CD did not take the password: {reason}")


def policy_problems(data: Mapping[str, str]) -> list[str]:
    """Argo CD's loader over the policy it would load from argocd-rbac-cm's ``data``:
    ``policy.csv`` first, then every other ``policy.*.csv`` key in sorted order."""
    keys = ["policy.csv"] if "policy.csv" in data else []
    keys += sorted(
        k for k in data if k.startswith("policy.") and k.endswith(".csv") and k != "policy.csv"
    )
    problems = []
    for key in keys:
        for number, line in enumerate(data[key].splitlines(), 1):
            if problem := rbac.policy_line_problem(line):
                problems.append(f"{RBAC_CM} {key} line {number}: {problem}")
    return problems


def _argocd_policy_error(argocd: Client) -> str | None:
    """Argo CD's own error while it answers with the policy it loaded, or None."""
    try:
        can_i(argocd, "applications", "get", "*/*")
    except ArgoCDError as exc:
        return str(exc)
    return None


def read_back_policy(core: client.CoreV1Api, namespace: str, argocd: Client) -> None:
    """The RBAC policy as Argo CD loads it: a policy it refuses fails the run with its words.

    Argo CD refuses the whole policy for one bad line of any ``policy*.csv`` key (someone
    else's overlay too) and then fails every request it authorizes (HTTP 500, "error creating
    casbin enforcer: ..."); its informer takes a moment to load a change, hence the wait when
    Argo CD's loader, run here, finds such a line.
    """
    live = access_keys.read_live(core, namespace, Target("ConfigMap", RBAC_CM, {}))
    problems = policy_problems(live.data if live else {})
    if problems:
        error = _until(lambda: None if _argocd_policy_error(argocd) else "still answering")
        said = _argocd_policy_error(argocd) if error is None else None
        raise OperatorError(
            "Argo CD refuses the RBAC policy: "
            + (said or "; ".join(problems) + " (Argo CD still answers with its previous policy)")
        )
    if said := _argocd_policy_error(argocd):
        raise OperatorError(f"Argo CD's answer with the RBAC policy: {said}")


def prove_admin(argocd: Client, account: Account, password: str) -> str | None:
    """None when ``account`` logs in and Argo CD says it may do what only admins may; else why."""
    try:
        other = log_in_as(argocd, account.name, password, f"{account.password_env}")
    except ArgoCDError as exc:
        return f"account {account.name} cannot log in: {exc}"
    denied = []
    for resource, action, obj in ADMIN_PROOF:
        try:
            if not can_i(other, resource, action, obj):
                denied.append(f"{action} {resource}")
        except ArgoCDError as exc:
            return f"account {account.name}: {exc}"
    return f"account {account.name} may not {', '.join(denied)}" if denied else None


def _retire_admin(site: Site, argocd: Client, environ: Mapping[str, str]) -> None:
    accounts, groups = admin_ways_in(site.access)
    reasons = []
    for account in accounts:
        assert account.password_env
        password = environ[account.password_env]
        reason = _until(partial(prove_admin, argocd, account, password))
        if reason is None:
            return
        reasons.append(reason)
    if groups:
        reasons.append(
            f"SSO groups {', '.join(groups)}: a deploy cannot log in through SSO to prove them"
        )
    raise AdminNotRetired(
        "admin.enabled stays true: no other way in with admin rights was proven ("
        + "; ".join(reasons or ["none declared"])
        + "); bind role admin to a login account with password_env in access.toml"
    )


def apply(site: Site, argocd: Client, login: Login, environ: Mapping[str, str]) -> Plan:
    """Converge the access part through ``argocd`` (logged in as ``login``); what it did."""
    if not site.access.declares_anything:
        return Plan()
    _check_variables(site, environ)
    namespace = site.argocd.namespace
    api, core = _core(site)
    try:
        cm, rbac_cm, secret = targets(rendered(site.access, environ))
        lives = dict(
            zip(
                (ARGOCD_CM, RBAC_CM, ARGOCD_SECRET),
                _read_all(core, namespace, [cm, rbac_cm, secret]),
                strict=True,
            )
        )
        changes = [
            *key_changes(namespace, cm, lives[ARGOCD_CM]),
            *key_changes(namespace, rbac_cm, lives[RBAC_CM]),
            *key_changes(namespace, secret, lives[ARGOCD_SECRET]),
        ]
        # The secret first: argocd-cm's $oidc.clientSecret must resolve when Argo CD reads it.
        if access_keys.pending(key_changes(namespace, secret, lives[ARGOCD_SECRET])):
            access_keys.apply_target(core, namespace, secret)
        staged = _staged_argocd_cm(cm, lives[ARGOCD_CM])
        if access_keys.pending(key_changes(namespace, staged, lives[ARGOCD_CM])):
            access_keys.apply_target(core, namespace, staged)
        for account, change in password_changes(core, site, environ):
            changes.append(change)
            if change.changes:
                assert account.password_env
                _set_password(argocd, login, account, environ[account.password_env])
        if access_keys.pending(key_changes(namespace, rbac_cm, lives[RBAC_CM])):
            access_keys.apply_target(core, namespace, rbac_cm)
        if site.access.rbac:
            read_back_policy(core, namespace, argocd)
        if staged is not cm:
            _retire_admin(site, argocd, environ)
            access_keys.apply_target(core, namespace, cm)
        notes = []
        if _sso_changes(changes):
            changes.append(_restart_change(namespace))
            if note := restart_server(api, namespace):
                notes.append(note)
    finally:
        api.close()
    return Plan(changes, notes=notes)
