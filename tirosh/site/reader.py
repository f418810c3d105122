"""Reading site files: every problem is recorded and reading goes on, so one run reports all.

(Over 300 lines: the one table reader of every site file, each accessor beside the others.)

``Report`` collects the problems and warnings of one load; ``Table`` is one mapping of a file,
whose accessors record a problem and return None instead of raising; ``Table.read`` reads a
table's declared settings (``model.Setting``) at once.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from tirosh import inputs, kubeconfig, regular_file, strict_yaml
from tirosh.site.model import Problem, Setting, SiteError
from tirosh.site.values import k8s_name_problem

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11 only
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

_MISSING: Final = object()
T = TypeVar("T")
ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_MESSAGE: Final = 400
# As for YAML (strict_yaml.MAX_DEPTH): site files nest a few levels; tomllib recurses per level.
MAX_TOML_DEPTH: Final = strict_yaml.MAX_DEPTH


def describe(value: Any) -> str:
    """Short, operator-facing description of a wrongly typed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f"string {json.dumps(text)}"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _capped(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    return f"{message[:MAX_MESSAGE]}... ({len(message)} characters)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Report:
    """Problems and warnings of one load, with file names shown relative to the repo root."""

    def __init__(
        self, repo_root: Path, environ: Mapping[str, str], parse_manifest: bool = True
    ) -> None:
        self.repo_root = repo_root
        self.environ = environ
        self.parse_manifest = parse_manifest  # False: the pin is checked, the YAML not parsed
        self.problems: list[Problem] = []
        self.warnings: list[str] = []

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.repo_root).as_posix()
        except ValueError:
            return str(path)

    def add(self, file: str, key: str, message: str) -> None:
        # A message quoting a 10 MB value must not put 10 MB on stderr: the checks cut the
        # value they repeat (inputs.excerpt); this catches any that does not.
        self.problems.append(Problem(file, key, _capped(message)))

    def warn_kubeconfig_path(self, where: str, text: str, path: Path) -> None:
        """A relative kubeconfig path, or one outside the home directory, is a warning."""
        if warning := kubeconfig.path_warning(where, text, path, self.environ.get("HOME")):
            self.warnings.append(_capped(warning))

    def resolve(self, text: str, base: Path) -> Path:
        """Expand ``~`` (HOME from the given environment) and anchor relative paths at base."""
        home = self.environ.get("HOME")
        if home and (text == "~" or text.startswith("~/")):
            text = home + text[1:]
        path = Path(os.path.expanduser(text))
        return path if path.is_absolute() else base / path


class Table:
    """One mapping of a site file. Accessors record a Problem and return None instead of
    raising, so that a single run reports every mistake."""

    def __init__(
        self, report: Report, file: str, data: Mapping[Any, Any], prefix: str = ""
    ) -> None:
        self.report = report
        self.file = file
        self.data = data
        self.prefix = prefix

    def key_path(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def problem(self, key: str, message: str) -> None:
        self.report.add(self.file, self.key_path(key), message)

    def read(self, settings: Iterable[Setting], extra: tuple[str, ...] = ()) -> dict[str, Any]:
        """The values of ``settings`` by attribute, after the unknown keys are reported.

        A value that is missing or has a problem is its default (None without one); ``extra``
        are keys the caller reads itself.
        """
        settings = tuple(settings)
        self.allow(tuple(s.key for s in settings) + extra)
        return {s.attribute: self.value(s) for s in settings}

    def value(self, s: Setting) -> Any:
        value = self._read_kind(s)
        if value is not None and s.check is not None and (reason := s.check(value)):
            self.problem(s.key, reason)
            value = None
        return s.default if value is None else value

    def _read_kind(self, s: Setting) -> Any:
        if s.kind in ("string", "text", "name"):
            value = self.string(s.key, required=s.required, allow_empty=s.kind == "text")
            if s.kind == "name" and value is not None and (reason := k8s_name_problem(value)):
                self.problem(s.key, reason)
                return None
            return value
        if s.kind == "boolean":
            return self.boolean(s.key, required=s.required)
        if s.kind in ("integer", "port"):
            maximum = 65535 if s.kind == "port" else None
            return self.integer(s.key, required=s.required, maximum=maximum)
        if s.kind == "path":
            return self.path(s.key, required=s.required)
        if s.kind == "strings":
            listed = self.string_list(s.key, required=s.required)
            return None if listed is None else tuple(listed)
        return self.table(s.key, required=s.required)

    def allow(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(allowed)}"
            self.problem(str(key), f"unknown key ({hint})")

    def _raw(self, key: str, required: bool) -> Any:
        if key in self.data:
            return self.data[key]
        if required:
            self.problem(key, "required key is missing")
        return _MISSING

    def string(self, key: str, *, required: bool = False, allow_empty: bool = False) -> str | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.problem(key, f"must be a string, got {describe(value)}")
            return None
        return self.string_value(key, value, allow_empty)

    def string_value(self, key: str, value: str, allow_empty: bool = False) -> str | None:
        """``value`` (read from ``key``) when it is a usable string, else None and a problem."""
        if not value.strip() and not allow_empty:
            self.problem(key, "must not be empty")
            return None
        if problem := inputs.text_problem(value):  # NUL, newlines, escapes, bidi
            self.problem(key, problem)
            return None
        return value

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, got {describe(value)}")
            return None
        return value

    def integer(
        self, key: str, *, required: bool = False, minimum: int = 1, maximum: int | None = None
    ) -> int | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        # bool is an int subclass in Python; `true` is never a meaningful port or timeout.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be an integer, got {describe(value)}")
            return None
        return self.integer_value(key, value, minimum, maximum)

    def integer_value(
        self, key: str, value: int, minimum: int = 1, maximum: int | None = None
    ) -> int | None:
        """``value`` (read from ``key``) when it is within the bounds, else None and a problem."""
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            self.problem(key, f"must be {bounds}, got {value}")
            return None
        return value

    def string_list(self, key: str, *, required: bool = False) -> list[str] | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, list):
            self.problem(key, f"must be a list of strings, got {describe(value)}")
            return None
        ok = True
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(f"{key}[{index}]", f"must be a non-empty string, got {describe(item)}")
                ok = False
            elif problem := inputs.text_problem(item):
                self.problem(f"{key}[{index}]", problem)
                ok = False
        return list(value) if ok else None

    def path(self, key: str, *, required: bool = False) -> Path | None:
        text = self.string(key, required=required)
        return None if text is None else self.report.resolve(text, self.report.repo_root)

    def warn_kubeconfig_path(self, key: str, path: Path | None) -> None:
        """``Report.warn_kubeconfig_path`` for the path read from ``key``."""
        text = self.data.get(key)
        if path is not None and isinstance(text, str):
            self.report.warn_kubeconfig_path(f"{self.file}: {self.key_path(key)}", text, path)

    def env_name(self, key: str, *, required: bool = False) -> str | None:
        """The name of an environment variable (the value itself is never in a site file)."""
        value = self.string(key, required=required)
        if value is not None and not ENV_NAME.fullmatch(value):
            self.problem(key, f"must name an environment variable (A-Z, 0-9, _), got {value!r}")
            return None
        return value

    def k8s_name(self, key: str, *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        if value is not None and (reason := k8s_name_problem(value)):
            self.problem(key, reason)
            return None
        return value

    def entries(self, key: str) -> list[Table]:
        """The tables of the array ``[[key]]`` (none when absent), each prefixed ``key[i]``."""
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.problem(key, f"must be an array of tables ([[{key}]])")
            return []
        return [
            Table(self.report, self.file, item, self.key_path(f"{key}[{index}]"))
            for index, item in enumerate(value)
        ]

    def allow_tables(self, allowed: tuple[str, ...]) -> None:
        """Top-level keys of a file made of arrays of tables: anything else is unknown."""
        for key in self.data:
            if key not in allowed:
                self.problem(str(key), f"unknown table (known: {', '.join(allowed)})")

    def table(self, key: str, *, required: bool = False) -> Table | None:
        value = self._raw(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a table/mapping, got {describe(value)}")
            return None
        return Table(self.report, self.file, value, self.key_path(key))


# --------------------------------------------------------------------------- files


def _read_file(report: Report, path: Path, optional: bool = False) -> str | None:
    file = report.rel(path)
    try:
        return regular_file.read_text(path)
    except FileNotFoundError:
        if optional:
            return ""
        report.add(file, "-", "required file is missing")
    except OSError as exc:
        report.add(file, "-", f"cannot read file: {exc.strerror}")
    except UnicodeDecodeError:
        report.add(file, "-", "cannot read file: not UTF-8 text")
    except ValueError as exc:  # a FIFO, device or directory: refused without blocking
        report.add(file, "-", str(exc))
    return None


def read_toml(report: Report, path: Path, optional: bool = False) -> Table | None:
    """The file's top table; ``optional``: an absent file is an empty one (nothing declared)."""
    text = _read_file(report, path, optional)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line N, column M)".
        report.add(report.rel(path), "-", f"invalid TOML: {_one_line(str(exc))}")
        return None
    except RecursionError:
        # tomllib's parser recurses once per nested array or inline table.
        data = None
    if data is None or nesting_depth(data) > MAX_TOML_DEPTH:
        report.add(
            report.rel(path), "-", f"invalid TOML: nested deeper than {MAX_TOML_DEPTH} levels"
        )
        return None
    return Table(report, report.rel(path), data)


def nesting_depth(data: Any) -> int:
    """How deep lists and tables nest in ``data`` (without recursion)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        value, depth = stack.pop()
        children = (
            value.values()
            if isinstance(value, dict)
            else value
            if isinstance(value, list)
            else None
        )
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_TOML_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def read_yaml(report: Report, path: Path) -> Table | None:
    text = _read_file(report, path)
    if text is None:
        return None
    try:
        data = strict_yaml.load(text)  # no duplicate keys, anchors, aliases, deep nesting
    except ValueError as exc:
        report.add(report.rel(path), "-", str(exc))
        return None
    if data is None:
        data = {}  # An empty file is an empty mapping: its missing keys are reported one by one.
    if not isinstance(data, dict):
        report.add(report.rel(path), "-", f"must be a mapping of variables, got {describe(data)}")
        return None
    return Table(report, report.rel(path), data)


def read_alone(
    read: Callable[[Report, Path], T],
    path: Path,
    root: Path,
    environ: Mapping[str, str] | None = None,
) -> T:
    """One site file read by ``read`` on its own (tools and tests): what it declares, or
    SiteError listing its problems; file names are shown relative to ``root``."""
    report = Report(root, environ or {})
    value = read(report, path)
    if report.problems:
        raise SiteError(report.problems)
    return value
