"""Argo CD's RBAC grammar: resources, actions, object patterns, policy lines. Pure.

The resources and the actions each takes are Argo CD v3.5's (``util/rbac/rbac.go`` and the
strict check of ``argocd admin settings rbac can``, ``cmd/argocd/commands/admin/
settings_rbac.go``), with ``write-repositories`` (a v3.5 resource that check's table misses).
Patterns are matched the way Argo CD's ``globOrRegexMatch`` does in its default glob mode:
``github.com/gobwas/glob`` without separators, so ``*`` matches ``/`` as well; ``?`` one
character, ``[abc]``/``[a-z]``/``[!a]`` a class, ``{a,b}`` alternatives, ``\\`` an escape.
A pattern gobwas cannot compile never matches in Argo CD (it logs a warning and denies), which
is why one is refused here before anything is applied.

Policy lines are read as Argo CD's adapter reads them (``loadPolicyLine``): a CSV record with
leading blanks trimmed; ``p`` takes five fields, ``g`` two; blank and ``#`` lines are skipped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ACTIONS",
    "BUILTIN_ROLES",
    "PROJECT_SCOPED",
    "RESOURCES",
    "Permission",
    "action_problem",
    "csv_field",
    "csv_fields",
    "glob_problem",
    "glob_regex",
    "parse_permission",
    "policy_line_problem",
    "role_subject",
]

_CRUD: Final = ("create", "get", "update", "delete")
_CRD: Final = ("create", "get", "delete")
# resource -> (actions, actions that take a path: update/<group>/<kind>/<ns>/<name>)
RESOURCES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "accounts": (("get", "create", "update"), ()),
    "applications": (
        ("create", "get", "update", "delete", "action", "override", "sync"),
        ("update", "delete", "action"),
    ),
    "applicationsets": (_CRUD, ()),
    "certificates": (_CRD, ()),
    "clusters": (_CRUD, ()),
    "extensions": (("invoke",), ()),
    "gpgkeys": (_CRD, ()),
    "logs": (("get",), ()),
    "exec": (("create",), ()),
    "projects": (_CRUD, ()),
    "repositories": (_CRUD, ()),
    "write-repositories": (_CRUD, ()),
}
ACTIONS: Final = ("get", "create", "update", "delete", "sync", "override", "action", "invoke")
# Objects of these are <project>/<name> (clusters and repositories may be either).
PROJECT_SCOPED: Final = ("applications", "applicationsets", "logs", "exec")
BUILTIN_ROLES: Final = ("role:admin", "role:readonly")
EFFECTS: Final = ("allow", "deny")


@dataclass(frozen=True)
class Permission:
    """One ``p`` line's grant: ``resource, action, object, effect`` (the subject is the role's)."""

    resource: str
    action: str
    object: str
    effect: str = "allow"

    def line(self, subject: str) -> str:
        fields = (subject, self.resource, self.action, self.object, self.effect)
        return "p, " + ", ".join(csv_field(field) for field in fields)


def csv_field(text: str) -> str:
    """One field of a policy line: quoted when it holds a comma or a quote (``{a,b}/*``), as
    Argo CD's CSV reader expects."""
    if "," in text or '"' in text:
        return '"' + text.replace('"', '""') + '"'
    return text


def role_subject(name: str) -> str:
    """A role's subject in a policy: ``role:<name>`` (a name already so prefixed is kept)."""
    return name if name.startswith("role:") else f"role:{name}"


# --------------------------------------------------------------------------- glob patterns


def _class(pattern: str, start: int) -> tuple[str, int]:
    """The regex of the ``[...]`` class opening at ``start``, and the index after it."""
    index = start + 1
    negate = index < len(pattern) and pattern[index] == "!"
    index += negate
    items: list[str] = []
    while index < len(pattern) and pattern[index] != "]":
        char = pattern[index]
        if char == "\\":
            index += 1
            if index >= len(pattern):
                raise ValueError("an escape '\\' ends the pattern")
            char = pattern[index]
        if index + 2 < len(pattern) and pattern[index + 1] == "-" and pattern[index + 2] != "]":
            high = pattern[index + 2]
            if high < char:
                raise ValueError(f"range {char}-{high} is backwards")
            items.append(f"{re.escape(char)}-{re.escape(high)}")
            index += 3
            continue
        items.append(re.escape(char))
        index += 1
    if index >= len(pattern):
        raise ValueError("'[' is not closed by ']'")
    if not items:
        raise ValueError("an empty class '[]'")
    return f"[{'^' if negate else ''}{''.join(items)}]", index + 1


def _translate(pattern: str, index: int, depth: int) -> tuple[str, int]:
    """The regex of ``pattern`` from ``index`` up to an unmatched ``,``/``}`` at ``depth`` > 0."""
    out: list[str] = []
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if index + 1 >= len(pattern):
                raise ValueError("an escape '\\' ends the pattern")
            out.append(re.escape(pattern[index + 1]))
            index += 2
        elif char == "*":
            out.append(".*")
            index += 1
        elif char == "?":
            out.append(".")
            index += 1
        elif char == "[":
            text, index = _class(pattern, index)
            out.append(text)
        elif char == "{":
            branches = []
            index += 1
            while True:
                text, index = _translate(pattern, index, depth + 1)
                branches.append(text)
                if index >= len(pattern):
                    raise ValueError("'{' is not closed by '}'")
                index += 1
                if pattern[index - 1] == "}":
                    break
            out.append(f"(?:{'|'.join(branches)})")
        elif char in ",}" and depth:
            return "".join(out), index
        elif char == "}":
            raise ValueError("'}' without '{'")
        else:
            out.append(re.escape(char))
            index += 1
    return "".join(out), index


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The pattern as a regular expression (ValueError: gobwas/glob would not compile it)."""
    text, _ = _translate(pattern, 0, 0)
    return re.compile(text, re.DOTALL)


def glob_problem(pattern: str) -> str | None:
    """Why Argo CD's glob could not use ``pattern`` (it would deny silently), or None."""
    try:
        glob_regex(pattern)
    except ValueError as exc:
        return f"malformed pattern {pattern[:60]!r}: {exc}"
    return None


# --------------------------------------------------------------------------- permissions


def action_problem(resource: str, action: str) -> str | None:
    """Whether ``action`` is one ``resource`` takes (``*`` and patterns are checked as globs)."""
    if resource == "*" or any(char in resource for char in "*?[{"):
        return glob_problem(resource)
    if resource not in RESOURCES:
        return f"unknown resource {resource[:60]!r} (Argo CD's: {', '.join(RESOURCES)})"
    if action == "*" or any(char in action for char in "?[{"):
        return glob_problem(action)
    actions, with_path = RESOURCES[resource]
    verb, slash, path = action.partition("/")
    if verb not in actions:
        return f"unknown action {action[:60]!r} for {resource} (its actions: {', '.join(actions)})"
    if slash and verb not in with_path:
        return f"action {verb} of {resource} takes no path, got {action[:60]!r}"
    if slash and not path:
        return f"action {action!r} has an empty path"
    return glob_problem(path) if path else None


def object_problem(resource: str, pattern: str) -> str | None:
    if not pattern.strip():
        return "the object pattern is empty"
    if problem := glob_problem(pattern):
        return problem
    if resource in PROJECT_SCOPED and pattern != "*" and "/" not in pattern:
        return f"{resource} objects are <project>/<name>, got {pattern[:60]!r}"
    return None


def parse_permission(text: str) -> tuple[Permission | None, str | None]:
    """``"resource, action, object[, allow|deny]"`` as a Permission, or the problem with it."""
    fields = csv_fields(text)
    if fields is None or len(fields) not in (3, 4):
        return None, (
            f"must be 'resource, action, object[, allow|deny]', got {text[:60]!r} "
            f"({'unreadable' if fields is None else len(fields)} fields)"
        )
    resource, action, pattern = fields[:3]
    effect = fields[3] if len(fields) == 4 else "allow"
    problem = (
        action_problem(resource, action)
        or object_problem(resource, pattern)
        or (None if effect in EFFECTS else f"effect must be allow or deny, got {effect[:20]!r}")
    )
    if problem:
        return None, problem
    return Permission(resource, action, pattern, effect), None


def csv_fields(line: str) -> list[str] | None:
    """One CSV record, leading blanks of each field trimmed (Go's TrimLeadingSpace)."""
    try:
        rows = list(csv.reader([line], skipinitialspace=True, strict=True))
    except csv.Error:
        return None
    return [field.strip() for field in rows[0]] if rows else []


def policy_line_problem(line: str) -> str | None:
    """Whether Argo CD's policy loader refuses ``line`` (it then refuses the whole policy)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    fields = csv_fields(text)
    if fields is None:
        return f"error parsing policy line {text[:60]!r}"
    if (
        not fields[0]
        or (fields[0] == "p" and len(fields) != 6)
        or (fields[0] == "g" and len(fields) != 3)
    ):
        return f"invalid RBAC policy: {text[:60]}"
    if fields[0] not in ("p", "g"):
        return f"invalid RBAC policy: {text[:60]}"
    return None
