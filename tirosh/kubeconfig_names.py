"""Entries and names of a kubeconfig, and the operator's KUBECONFIG paths: the checks that
decide whether a merge may replace what is there (``tirosh.kubeconfig`` applies them).

Kept apart from the file handling so that each module stays small; ``tirosh.kubeconfig``
re-exports everything here.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "MAX_NAME",
    "REPLACE_VARIABLE",
    "SECTIONS",
    "conflicts",
    "export_list",
    "foreign_names",
    "name_problem",
    "path_warning",
    "replace_requested",
]

# The named lists of a kubeconfig and the key holding each entry's body.
SECTIONS: Final = {"clusters": "cluster", "users": "user", "contexts": "context"}
MAX_NAME: Final = 253
REPLACE_VARIABLE: Final = "TIROSH_REPLACE_CONTEXTS"


def foreign_names(current: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    found = []
    for section in SECTIONS:
        ours = set(_by_name(config, section))
        found += [f"{section} {name!r}" for name in _by_name(current, section) if name not in ours]
    return found


# --------------------------------------------------------------------------- names and conflicts


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a cluster/user/context name, or None. kubectl takes any string,
    but a newline or NUL breaks the YAML readers of other tools and the shell prompts that
    show the context; leading spaces make two names look alike."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_NAME:
        return f"is longer than {MAX_NAME} characters"
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            return f"contains the control character U+{ord(char):04X}"
    if name != name.strip():
        return "has leading or trailing whitespace"
    if name.startswith("-"):
        return "must not start with '-' (kubectl --context would read it as an option)"
    return _lookalike_problem(name)


# Scripts whose letters look like Latin ones (Cyrillic а, Greek ο): a name mixing them is one
# that reads as another name.
_CONFUSABLE_SCRIPTS: Final = ("LATIN", "CYRILLIC", "GREEK")


def _lookalike_problem(name: str) -> str | None:
    """Why ``name`` could be taken for another name, or None: a space other than U+0020 (a
    no-break space), a compatibility form (fullwidth letters, ligatures: NFKC changes them), or
    letters of Latin, Cyrillic and Greek mixed in one word."""
    for char in name:
        if char != " " and unicodedata.category(char) == "Zs":
            return f"contains the space U+{ord(char):04X}, which looks like U+0020"
    if unicodedata.normalize("NFKC", name) != name:
        changed = next((c for c in name if unicodedata.normalize("NFKC", c) != c), None)
        if changed is None:  # a combining sequence that composes (e + U+0301 is é)
            return "is not in its standard Unicode form (NFKC): it looks like another spelling"
        return f"contains U+{ord(changed):04X}, which has another standard form (NFKC)"
    # Per word (a run of letters and digits): "прод/k3s" is two words, "lаb" with a Cyrillic а is one.
    for word in re.findall(r"[^\W_]+", name):
        scripts = {
            script
            for char in word
            for script in _CONFUSABLE_SCRIPTS
            if unicodedata.name(char, "").startswith(script)
        }
        if len(scripts) > 1:
            mixed = " and ".join(sorted(s.title() for s in scripts))
            return f"mixes {mixed} letters in {word!r}, which look alike"
        if scripts and scripts != {"LATIN"} and all(c in _LATIN_LOOKALIKES for c in word):
            return f"{word!r} is written in {scripts.pop().title()} letters that read as Latin ones"
    return None


# Cyrillic and Greek letters drawn like Latin ones: a word made of them alone ("а", "рос")
# reads as a Latin word (Unicode's whole-script confusables); "прод" does not. Written as
# escapes: the letters themselves would read as Latin here too.
_LATIN_LOOKALIKES: Final = frozenset(
    # Cyrillic a e o p c y x i j s h d palochka q w, capital A B E K M H O P C T X I J S G
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u04bb\u0501\u04cf\u051b\u051d\u0410"
    "\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0406\u0408\u0405\u050c"
    # Greek alpha iota kappa nu omicron rho tau upsilon chi, capital A B E Z H I K M N O P T Y X
    "\u03b1\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7"
)


def _by_name(config: Mapping[str, Any], section: str) -> dict[str, dict[str, Any]]:
    entries = config.get(section) or []
    return {e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}


def _body(entry: Mapping[str, Any], key: str) -> dict[str, Any]:
    body = entry.get(key)
    return body if isinstance(body, dict) else {}


def _ref(entry: Mapping[str, Any], key: str) -> str | None:
    # The cluster or user a context names; anything but a string names nothing.
    value = _body(entry, "context").get(key)
    return value if isinstance(value, str) else None


def conflicts(existing: Mapping[str, Any], incoming: Mapping[str, Any]) -> list[str]:
    """Same-named entries of ``existing`` that ``incoming`` would replace although they point
    elsewhere. A cluster is ours when it talks to the same server; a user or context is ours
    when one of its contexts ties it to such a cluster (a k3s reinstall rotates the
    credentials but keeps the server), or when it is already identical."""
    old = {section: _by_name(existing, section) for section in SECTIONS}
    new = {section: _by_name(incoming, section) for section in SECTIONS}
    found: list[str] = []
    same_server: set[str] = set()
    for name, entry in new["clusters"].items():
        if name not in old["clusters"]:
            continue
        before = _body(old["clusters"][name], "cluster").get("server")
        if before == _body(entry, "cluster").get("server"):
            same_server.add(name)
        else:
            found.append(f"cluster {name!r} points at {before!r}, not this site's server")
    ours_users = {
        _ref(c, "user") for c in old["contexts"].values() if _ref(c, "cluster") in same_server
    }
    for name, entry in new["users"].items():
        if name in old["users"] and old["users"][name] != entry and name not in ours_users:
            found.append(f"user {name!r} holds other credentials")
    for name, entry in new["contexts"].items():
        before_ctx = old["contexts"].get(name)
        if before_ctx is None or before_ctx == entry:
            continue
        if _ref(before_ctx, "cluster") not in same_server:
            target = _body(before_ctx, "context").get("cluster")
            found.append(f"context {name!r} points at cluster {target!r}")
    return found


def replace_requested(environ: Mapping[str, str]) -> bool:
    """``TIROSH_REPLACE_CONTEXTS``: "true" replaces entries that point elsewhere; unset, empty
    or "false" refuses them. Anything else raises ValueError (a typo must not replace)."""
    value = environ.get(REPLACE_VARIABLE, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ValueError(f"{REPLACE_VARIABLE} must be true or false, got {value!r}")
    return value == "true"


# --------------------------------------------------------------------------- paths


def path_warning(key: str, text: str, resolved: Path, home: str | None) -> str | None:
    """A warning for a kubeconfig path the operator may not mean: a relative one (it lands in
    whatever directory the command runs from, or the checkout) or one outside the home
    directory (another user's file, a system path)."""
    if not text.startswith(("/", "~")):
        return f"{key} {text!r} is a relative path; it resolves to {resolved}"
    if home and not Path(os.path.abspath(resolved)).is_relative_to(os.path.abspath(home)):
        return f"{key} {resolved} is outside the home directory {home}"
    return None


def export_list(first: list[Path], site_files: list[Path]) -> str:
    """A KUBECONFIG value: ``first`` (the files the operator's KUBECONFIG already lists, or the
    merge target), then the site's own files, each once. kubectl writes to the first file and
    reads contexts from all of them. A path holding ``:`` cannot be listed: ValueError."""
    seen: set[str] = set()
    entries: list[str] = []
    for path in [*first, *site_files]:
        text = str(path)
        if os.pathsep in text:
            raise ValueError(f"{text} contains {os.pathsep!r} and cannot be listed in KUBECONFIG")
        key = os.path.realpath(text)
        if key not in seen:
            seen.add(key)
            entries.append(text)
    return os.pathsep.join(entries)
