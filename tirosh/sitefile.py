"""Reading the local phase's optional site files (``sites/<site>/argocd/*.toml``).

Each reader collects every problem as ``file: key: problem`` (``tirosh.site.Problem``) before
failing, like the site loader, so an operator fixes a file in one pass. Nothing here connects.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from tirosh import regular_file
from tirosh.site import Problem
from tirosh.site.reader import MAX_TOML_DEPTH, nesting_depth

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

__all__ = ["Entries", "K8S_NAME", "load_toml", "read_entries"]

K8S_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_toml(path: Path, file: str, problems: list[Problem]) -> dict[str, Any] | None:
    """The parsed file, ``{}`` when it does not exist (nothing declared), None when broken."""
    # Deep nesting is refused as in the other site files (tirosh.site.reader.read_toml).
    deep = f"invalid TOML: nested deeper than {MAX_TOML_DEPTH} levels"
    try:
        data = tomllib.loads(regular_file.read_text(path))
        if nesting_depth(data) <= MAX_TOML_DEPTH:
            return data
        problems.append(Problem(file, "-", deep))
    except RecursionError:  # tomllib recurses once per nested array or inline table
        problems.append(Problem(file, "-", deep))
    except FileNotFoundError:
        return {}
    except OSError as exc:
        problems.append(Problem(file, "-", f"cannot read file: {exc.strerror}"))
    except tomllib.TOMLDecodeError as exc:  # before ValueError: it is one
        problems.append(Problem(file, "-", f"invalid TOML: {' '.join(str(exc).split())}"))
    except UnicodeDecodeError:
        problems.append(Problem(file, "-", "cannot read file: not UTF-8 text"))
    except ValueError as exc:  # a FIFO, device or directory: refused without blocking
        problems.append(Problem(file, "-", str(exc)))
    return None


class Entries:
    """Typed access to one ``[[table]]`` entry; accessors record a Problem and return None."""

    def __init__(self, file: str, prefix: str, data: Mapping[str, Any], problems: list[Problem]):
        self.file, self.prefix, self.data, self.problems = file, prefix, data, problems

    def problem(self, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, f"{self.prefix}.{key}", message))

    def allow(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = (
                    f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(allowed)}"
                )
                self.problem(str(key), f"unknown key ({hint})")

    def string(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        if key not in self.data:
            if required:
                self.problem(key, "required key is missing")
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            self.problem(key, f"must be a non-empty string, got {value!r}"[:120])
            return None
        return value

    def env_name(
        self, key: str, *, required: bool = False, default: str | None = None
    ) -> str | None:
        """The name of an environment variable (the value is never in a site file)."""
        value = self.string(key, required=required, default=default)
        if value is not None and not ENV_NAME.fullmatch(value):
            self.problem(key, f"must name an environment variable (A-Z, 0-9, _), got {value!r}")
            return None
        return value

    def k8s_name(
        self, key: str, *, required: bool = False, default: str | None = None
    ) -> str | None:
        value = self.string(key, required=required, default=default)
        if value is not None and not K8S_NAME.fullmatch(value):
            self.problem(key, f"must be a Kubernetes name (lowercase, digits, '-'), got {value!r}")
            return None
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {value!r}")
            return default
        return value

    def string_list(self, key: str) -> list[str] | None:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(key, "must be a list of non-empty strings")
            return None
        return list(value)


def read_entries(
    data: Mapping[str, Any],
    table: str,
    file: str,
    allowed_tables: tuple[str, ...],
    problems: list[Problem],
) -> list[Entries]:
    """The entries of ``[[table]]`` (an array of tables); other top-level keys are problems."""
    for key in data:
        if key not in allowed_tables:
            problems.append(
                Problem(file, str(key), f"unknown table (known: {', '.join(allowed_tables)})")
            )
    raw = data.get(table, [])
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append(Problem(file, table, f"must be an array of tables ([[{table}]])"))
        return []
    return [Entries(file, f"{table}[{index}]", item, problems) for index, item in enumerate(raw)]
