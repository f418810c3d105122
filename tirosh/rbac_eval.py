"""What a subject may do, by Argo CD's own Casbin model and built-in policy, in pycasbin. Pure.

Argo CD's RBAC is Casbin (``tirosh/argocd_rbac/model.conf``, ``builtin-policy.csv``, copied
from Argo CD) with its glob matcher (``tirosh.rbac.glob_regex``: gobwas/glob, no separators)
and an enforce wrapper this module repeats (``util/rbac/rbac.go`` ``enforce`` and
``server/rbacpolicy`` ``EnforceClaims``): the ``policy.default`` role is tried first, then the
subject itself (a local account's name), then each of the subject's groups that some ``g``
line names. Project roles (AppProject ``spec.roles``) are not modelled.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Final

import casbin

from tirosh import rbac
from tirosh.access import Access, policy_csv

__all__ = ["Evaluator", "builtin_policy"]

ASSETS: Final = Path(__file__).with_name("argocd_rbac")


@cache
def _pattern(pattern: str) -> object:
    try:
        return rbac.glob_regex(pattern)
    except ValueError:
        return None  # Argo CD logs the compile error and denies


def _glob_match(value: str, pattern: str) -> bool:
    compiled = _pattern(pattern)
    return bool(compiled is not None and compiled.fullmatch(value))  # type: ignore[attr-defined]


def builtin_policy() -> str:
    return (ASSETS / "builtin-policy.csv").read_text()


def _rows(policy: str) -> Iterable[list[str]]:
    for line in policy.splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if problem := rbac.policy_line_problem(text):
            raise ValueError(problem)
        yield rbac.csv_fields(text) or []


class Evaluator:
    """Argo CD's enforcer over the built-in policy and a user policy (``policy.csv``)."""

    def __init__(self, user_policy: str, default_role: str = "") -> None:
        model = casbin.Model()
        model.load_model_from_text((ASSETS / "model.conf").read_text())
        self._enforcer = casbin.Enforcer(model)
        self._enforcer.add_function("globOrRegexMatch", _glob_match)
        for row in (*_rows(builtin_policy()), *_rows(user_policy)):
            kind, values = row[0], row[1:]
            if kind == "p":
                self._enforcer.add_named_policy("p", values)
            else:
                self._enforcer.add_named_grouping_policy("g", values)
        self.default_role = default_role
        self._grouped = {values[0] for values in self._enforcer.get_named_grouping_policy("g")}

    @classmethod
    def of(cls, access: Access) -> Evaluator:
        """The site's declared policy."""
        return cls(policy_csv(access), access.policy_default or "")

    def _enforce(self, subject: str, resource: str, action: str, obj: str) -> bool:
        return bool(self._enforcer.enforce(subject, resource, action, obj))

    def allowed(
        self, subject: str, resource: str, action: str, obj: str, groups: Iterable[str] = ()
    ) -> bool:
        """Argo CD's answer for a logged-in ``subject`` (a local account's name; "" for an SSO
        user known only by groups) with ``groups``."""
        if self.default_role and self._enforce(self.default_role, resource, action, obj):
            return True
        if subject and self._enforce(subject, resource, action, obj):
            return True
        return any(
            self._enforce(group, resource, action, obj)
            for group in groups
            if group in self._grouped
        )
