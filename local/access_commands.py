"""The access commands: API tokens of automation accounts, and what a subject may do.

``make argocd/account/token SITE=… ACCOUNT=… [EXPIRES=24h] TOKEN_FILE=…|TOKEN_STDOUT=yes``
issues a token with an expiry (never one without) for an ``apiKey`` account of
``argocd/access.toml`` and writes it to a new 0600 file, or to stdout only when asked.
``argocd/account/tokens`` lists them (id, issued, expiry), ``argocd/account/token/revoke``
(``TOKEN_ID=``) revokes one. ``argocd/access/check SITE=… ACCOUNT=…|GROUP=… [ACTION=…
RESOURCE=… OBJECT=…]`` answers from the declared policy by Argo CD's own Casbin model
(``tirosh.rbac_eval``), and for an account whose password variable is set, from Argo CD itself
(``/api/v1/account/can-i``) too; the two disagreeing is a failure.

Make-line values reach these commands through the environment (never a recipe's shell text).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from local.argocd import accounts, initial_secret
from local.argocd.session import open_session
from local.cli import Invocation, command
from tirosh import kubeconfig, rbac
from tirosh.access import Account
from tirosh.errors import OperatorError
from tirosh.rbac_eval import Evaluator
from tirosh.site import Site

__all__ = ["expiry_seconds"]

DEFAULT_EXPIRES = "24h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EXPIRES = re.compile(r"([1-9][0-9]{0,8})([smhd]?)", re.ASCII)


def expiry_seconds(text: str) -> int:
    """``90m``, ``24h``, ``30d`` or seconds; 0 or "never" are refused (a token must expire)."""
    match = _EXPIRES.fullmatch(text.strip())
    if not match:
        raise OperatorError(
            f"EXPIRES: must be a duration such as 3600, 90m, 24h or 30d (a token always "
            f"expires), got {text[:30]!r}"
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def _account(site: Site, environ: Mapping[str, str], capability: str) -> Account:
    name = environ.get("ACCOUNT", "")
    if not name:
        raise OperatorError("ACCOUNT=<name> is required (an account of argocd/access.toml)")
    found = site.access.account(name)
    declared = ", ".join(a.name for a in site.access.accounts) or "none"
    if found is None:
        raise OperatorError(
            f"no account {name!r} in sites/{site.name}/argocd/access.toml (declared: {declared})"
        )
    if capability not in found.capabilities:
        raise OperatorError(f"account {name} has no {capability} capability in access.toml")
    return found


def _initial(site: Site, environ: Mapping[str, str]) -> Callable[[], str | None]:
    return lambda: initial_secret.read(site, environ)


def _write_token(path: Path, token: str) -> None:
    if path.exists() or path.is_symlink():
        raise OperatorError(f"TOKEN_FILE {path} exists: not replaced (remove it or name another)")
    kubeconfig.write_atomic(path, token + "\n", 0o600)


@command("argocd/account/token", "issue an API token for an apiKey account (ACCOUNT, EXPIRES)")
def account_token(run: Invocation) -> int:
    site, env = run.site, run.environ
    account = _account(site, env, "apiKey")
    seconds = expiry_seconds(env.get("EXPIRES") or DEFAULT_EXPIRES)
    target = env.get("TOKEN_FILE", "")
    to_stdout = env.get("TOKEN_STDOUT", "").lower() in ("yes", "true", "1")
    if bool(target) == to_stdout:
        raise OperatorError("say where the token goes: TOKEN_FILE=<new file> or TOKEN_STDOUT=yes")
    path = Path(target).expanduser()
    if target and (path.exists() or path.is_symlink()):
        # Before asking: a token issued and then not written would be one nobody holds.
        raise OperatorError(f"TOKEN_FILE {path} exists: not replaced (remove it or name another)")
    with open_session(site, env, _initial(site, env)) as (argocd, _):
        token = accounts.create_token(argocd, account.name, seconds)
    if to_stdout:
        print(token, flush=True)
        return 0
    _write_token(path, token)
    print(f"account {account.name}: token written to {path} (0600), expires in {seconds} s")
    return 0


def _when(epoch: object) -> str:
    if not isinstance(epoch, int) or epoch <= 0:
        return "never"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@command("argocd/account/tokens", "the API tokens of the site's accounts (ACCOUNT for one)")
def account_tokens(run: Invocation) -> int:
    site, env = run.site, run.environ
    chosen = (
        [_account(site, env, "apiKey")]
        if env.get("ACCOUNT")
        else [a for a in site.access.accounts if "apiKey" in a.capabilities]
    )
    if not chosen:
        print(f"site {site.name}: no apiKey account declared")
        return 0
    never = 0
    with open_session(site, env, _initial(site, env)) as (argocd, _):
        for account in chosen:
            tokens = accounts.account(argocd, account.name).get("tokens") or []
            if not tokens:
                print(f"account {account.name}: no token")
            for token in tokens:
                expires = _when(token.get("expiresAt"))
                never += expires == "never"
                print(
                    f"account {account.name}: token {token.get('id')} issued "
                    f"{_when(token.get('issuedAt'))}, expires {expires}"
                )
    if never:
        print(f"warning: {never} token(s) never expire: revoke them", file=sys.stderr)
    return 0


@command("argocd/account/token/revoke", "revoke an API token (ACCOUNT, TOKEN_ID)")
def account_token_revoke(run: Invocation) -> int:
    site, env = run.site, run.environ
    account = _account(site, env, "apiKey")
    token_id = env.get("TOKEN_ID", "")
    if not token_id:
        raise OperatorError("TOKEN_ID=<id> is required (make argocd/account/tokens lists them)")
    with open_session(site, env, _initial(site, env)) as (argocd, _):
        listed = accounts.account(argocd, account.name).get("tokens") or []
        if not any(t.get("id") == token_id for t in listed):
            raise OperatorError(f"account {account.name} has no token {token_id!r}")
        accounts.delete_token(argocd, account.name, token_id)
    print(f"account {account.name}: token {token_id} revoked")
    return 0


def _requests(env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """The (resource, action, object) to answer: the one asked, or every one Argo CD has."""
    resource, action = env.get("RESOURCE", ""), env.get("ACTION", "")
    if resource or action:
        if not (resource and action):
            raise OperatorError("RESOURCE and ACTION go together (OBJECT is optional)")
        if problem := rbac.action_problem(resource, action):
            raise OperatorError(f"RESOURCE/ACTION: {problem}")
        default = "*/*" if resource in rbac.PROJECT_SCOPED else "*"
        return [(resource, action, env.get("OBJECT") or default)]
    return [
        (resource, verb, "*/*" if resource in rbac.PROJECT_SCOPED else "*")
        for resource, (verbs, _) in rbac.RESOURCES.items()
        for verb in verbs
    ]


@command(
    "argocd/access/check",
    "what ACCOUNT or GROUP may do (ACTION RESOURCE OBJECT), by the declared policy and Argo CD",
)
def access_check(run: Invocation) -> int:
    site, env = run.site, run.environ
    name, group = env.get("ACCOUNT", ""), env.get("GROUP", "")
    if bool(name) == bool(group):
        raise OperatorError("name one subject: ACCOUNT=<account> or GROUP=<SSO group>")
    subject = f"account {name}" if name else f"group {group}"
    evaluator = Evaluator.of(site.access)
    asked = _requests(env)
    declared = [
        (r, evaluator.allowed(name, *r) if name else evaluator.allowed("", *r, groups=[group]))
        for r in asked
    ]
    live = _live_answers(site, env, name, asked)
    differ = 0
    for index, ((resource, action, obj), allowed) in enumerate(declared):
        if len(asked) > 1 and not allowed and live is None:
            continue  # the grid shows what is allowed
        line = (
            f"{subject}: {action} {resource} {obj}: {'yes' if allowed else 'no'} (declared policy)"
        )
        if live is not None:
            differ += live[index] != allowed
            line += f", {'yes' if live[index] else 'no'} (Argo CD)"
        print(line)
    if differ:
        print(f"{differ} answer(s) of Argo CD differ from the declared policy", file=sys.stderr)
        return 1
    return 0


def _live_answers(
    site: Site, env: Mapping[str, str], name: str, asked: list[tuple[str, str, str]]
) -> list[bool] | None:
    """Argo CD's own answers for an account that can log in with its variable set."""
    account = site.access.account(name) if name else None
    if account is None or not account.password_env or not env.get(account.password_env):
        return None
    with open_session(site, env, _initial(site, env)) as (argocd, _):
        other = accounts.log_in_as(
            argocd, account.name, env[account.password_env], account.password_env
        )
        return [accounts.can_i(other, *request) for request in asked]
