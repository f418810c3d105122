"""A YAML loader for files an operator writes by hand: what it reads is what they meant.

PyYAML's safe loader takes the last of two equal keys without a word, expands aliases (a few
lines of anchors expand into gigabytes: the "billion laughs"), and recurses once per nesting
level (a deep enough document ends in RecursionError). Site files need none of that: this
loader refuses duplicate keys, anchors, aliases and merge keys (``<<``), and nesting deeper
than ``MAX_DEPTH``, each with its line and column. It uses libyaml's parser (CSafeLoader).
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode

__all__ = ["MAX_DEPTH", "load"]

MAX_DEPTH: Final = 32
_BASE: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


class _Loader(_BASE):  # type: ignore[misc,valid-type]
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                raise ConstructorError(
                    None, None, "merge keys (<<) are not allowed", key_node.start_mark
                )
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: SafeConstructor reports it
            if first is not None:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at {_where(first)})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return dict(super().construct_mapping(node, deep=deep))


def _check_events(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, yaml.AliasEvent):
            raise ValueError(f"YAML at {_where(event.start_mark)}: aliases (*name) are not allowed")
        if getattr(event, "anchor", None):
            raise ValueError(f"YAML at {_where(event.start_mark)}: anchors (&name) are not allowed")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(
                    f"YAML at {_where(event.start_mark)}: nested deeper than {MAX_DEPTH} levels"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        context = f" ({exc.context})" if exc.context else ""
        return f"invalid YAML at {_where(exc.problem_mark)}: {exc.problem}{context}"
    return "invalid YAML: " + " ".join(str(exc).split())


def load(text: str | bytes) -> Any:
    """The one document in text; ValueError with a one-line reason (position, never content
    beyond the offending key) when it is not plain YAML as described above."""
    try:
        _check_events(text if isinstance(text, str) else text.decode("utf-8"))
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(_message(exc)) from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
