"""Bounds on a kubeconfig's YAML before it is built: nesting depth and alias expansion.

kubectl (sigs.k8s.io/yaml over go-yaml) refuses a document that nests deeper than 10000 levels
and one with "excessive aliasing": more aliases, relative to the nodes they expand to, than
go-yaml's ``allowedAliasRatio`` allows. PyYAML has neither bound. Its C composer recurses once
per level (a few thousand ``[`` crash the process), the dumper and every comparison recurse in
Python (``RecursionError`` at a few hundred levels), and a chain of aliases that PyYAML builds
as shared objects in linear time turns each comparison of the merge into an exponential walk.

So the text is first read as a stream of parser events (libyaml keeps its own stack, nothing
recurses), counting the depth and what every anchor expands to, and refused, with its line,
before any node exists. The depth bound is far below kubectl's, where this process can still
handle the document; kubeconfigs nest about six levels.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

__all__ = ["MAX_DEPTH", "MAX_EXPANDED_NODES", "check"]

MAX_DEPTH: Final = 100
# With aliases, the nodes the document expands to: beyond this it is refused whatever the ratio
# (go-yaml would spend minutes and gigabytes on it, then kubectl would too).
MAX_EXPANDED_NODES: Final = 5_000_000

_START: Final = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_END: Final = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _allowed_alias_ratio(decoded: int) -> float:
    # go-yaml v3 decode.go allowedAliasRatio: 0.99 up to 400000 decoded nodes, 0.10 from
    # 4000000, linear in between.
    if decoded <= 400_000:
        return 0.99
    if decoded >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decoded - 400_000) / 3_600_000


def check(text: str, loader: Any) -> None:
    """Raise ValueError when ``text`` nests deeper than ``MAX_DEPTH`` or its aliases expand
    as kubectl refuses (or beyond ``MAX_EXPANDED_NODES``). Syntax errors are left to the
    loader that parses it next (``yaml.YAMLError`` from here too).

    + text: the YAML document
    + loader: the PyYAML loader class whose parser reads the events
    """
    # Per open collection: [nodes, aliases] it expands to so far, and its anchor.
    stack: list[tuple[list[int], str | None]] = [([0, 0], None)]
    anchors: dict[str, tuple[int, int]] = {}
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, _START):
            if len(stack) > MAX_DEPTH:
                raise ValueError(f"nests deeper than {MAX_DEPTH} levels{_where(event)}")
            stack.append(([1, 0], event.anchor))
            continue
        if isinstance(event, _END):
            (nodes, aliases), anchor = stack.pop()
        elif isinstance(event, yaml.ScalarEvent):
            nodes, aliases, anchor = 1, 0, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            # go-yaml counts the alias node and then every node of its target again.
            target = anchors.get(event.anchor or "", (0, 0))
            nodes, aliases, anchor = 1 + target[0], 1 + target[1], None
        else:
            continue
        if anchor is not None:
            anchors[anchor] = (nodes, aliases)
        total = stack[-1][0]
        total[0] += nodes
        total[1] += aliases
        if aliases and total[0] > MAX_EXPANDED_NODES:
            raise ValueError(
                f"expands through aliases to more than {MAX_EXPANDED_NODES} nodes{_where(event)}"
            )
    decoded, aliases = stack[0][0]
    if aliases > 100 and decoded > 1000 and aliases / decoded > _allowed_alias_ratio(decoded):
        raise ValueError("contains excessive aliasing (kubectl refuses it too)")


def _where(event: Any) -> str:
    mark = getattr(event, "start_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
