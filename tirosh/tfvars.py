"""Reading a Terraform variable definitions file (``*.tfvars``) as plain values.

python-hcl2 parses the HCL; its dict form loses what a site file check needs (a duplicate
attribute silently wins, a bare word reads like a string, a heredoc keeps its markers), so the
values are taken from its parse tree here, with Terraform's rules for literals:

- strings with HCL's escapes (``\\n``, ``\\"``, ``\\uNNNN``, ``$${`` for a literal ``${``);
- heredocs ``<<EOT`` (each line keeps its newline) and ``<<-EOT`` (common indentation removed);
- numbers (``-3``, ``2.5``, ``2e3``), ``true``, ``false``, ``null``; lists and objects;
- comments (``#``, ``//``, ``/* */``) are ignored.

Refused, each with its line: anything Terraform would have to evaluate (a reference such as
``var.x``, a bare word, a function call, arithmetic, ``${...}`` templates and ``%{...}``
directives), blocks (``vm { ... }``: "Blocks are not allowed here" in Terraform), and an
attribute or object key given twice (Terraform: "Attribute redefined").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from tirosh.errors import TfvarsError

__all__ = ["TfvarsError", "loads", "loads_cached"]

# Part of the cache key: a change to how values are read makes every cached file stale.
_READER_VERSION: Final = "2"


def loads(text: str) -> dict[str, Any]:
    """The attributes of a tfvars file as Python values (int, float, str, bool, None, list, dict).

    Raises TfvarsError for a syntax error (with line and column) or a value that is not a literal.
    """
    # Imported here: python-hcl2 and lark take ~0.1 s to import and ~0.2 s to load the parser,
    # which a cached file (loads_cached) or a site without vms.tfvars does not pay.
    from tirosh import hcl_literals

    return hcl_literals.read(text)


def cache_dir() -> Path:
    """Where read tfvars files are kept between runs, by sha256 (the operator's cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tirosh-infra" / "tfvars"


def loads_cached(text: str, directory: Path | None = None) -> dict[str, Any]:
    """``loads``, read once per content and machine: python-hcl2's parser takes ~0.3 s to load,
    which every later run of an unchanged file (each deploy validates the site) skips."""
    parser = metadata.version("python-hcl2")
    key = hashlib.sha256(f"{_READER_VERSION}\0{parser}\0{text}".encode()).hexdigest()
    entry = (directory or cache_dir()) / f"{key}.json"
    try:
        cached = json.loads(entry.read_text())
    except (OSError, ValueError):
        cached = None
    if isinstance(cached, dict):
        return cached
    values = loads(text)  # errors are not cached: a broken file is parsed again, and fixed
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".", suffix=".json")
        with os.fdopen(fd, "w") as stream:
            json.dump(values, stream)
        os.replace(temporary, entry)
    except (OSError, TypeError, ValueError):  # a cache that cannot be written costs a parse
        pass
    return values
