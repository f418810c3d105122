"""The parse tree of python-hcl2 read as Terraform literals (``tirosh.tfvars`` is the API).

Imported only when a tfvars file is actually parsed: hcl2 and lark are slow to load.
"""

from __future__ import annotations

import re
from typing import Any, Final

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError

from tirosh.errors import TfvarsError

__all__ = ["read"]

_ESCAPE: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL)
_SIMPLE_ESCAPES: Final = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_HEREDOC: Final = re.compile(
    r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n(.*?)[ \t]*\2\r?\n?\Z", re.DOTALL
)
# "$${" / "%%{" (a literal "${" / "%{") or "${" / "%{" (a template), longest first.
_TEMPLATE_MARK: Final = re.compile(r"(\$\$\{|%%\{|\$\{|%\{)")


def read(text: str) -> dict[str, Any]:
    """``tirosh.tfvars.loads``."""
    try:
        tree = hcl2.parses_to_tree(text)
    except LarkError as exc:
        raise TfvarsError("-", f"invalid HCL: {_syntax_message(exc)}") from None
    body = tree.children[0] if tree.children else Tree("body", [])
    return _body(body)


def _syntax_message(exc: LarkError) -> str:
    line, column = getattr(exc, "line", None), getattr(exc, "column", None)
    token = getattr(exc, "token", None)
    if isinstance(token, Token):
        what = "unexpected end of file" if token.type == "$END" else f"unexpected {str(token)!r}"
    else:
        what = "unexpected character"
    where = f" at line {line}, column {column}" if line not in (None, -1) else ""
    return f"{what}{where}"


def _line(node: Tree | Token) -> str:
    if isinstance(node, Token):
        return f"line {node.line}"
    meta = node.meta
    return f"line {meta.line}" if not meta.empty else "unknown line"


def _body(body: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for child in body.children:
        if not isinstance(child, Tree) or child.data == "new_line_or_comment":
            continue
        if child.data == "block":
            name = _identifier(child.children[0])
            raise TfvarsError(
                name,
                f"blocks are not allowed in a tfvars file ({_line(child)}); write {name} = {{ ... }}",
            )
        if child.data != "attribute":
            raise TfvarsError("-", f"unexpected {child.data} at {_line(child)}")
        name = _identifier(child.children[0])
        if name in seen:
            raise TfvarsError(name, f"set twice ({seen[name]} and {_line(child)})")
        seen[name] = _line(child)
        out[name] = _value(child.children[-1], name)
    return out


def _identifier(node: Tree | Token) -> str:
    if isinstance(node, Tree):
        return "".join(str(token) for token in node.scan_values(lambda _: True))
    return str(node)


def _value(node: Tree | Token, key: str) -> Any:
    if isinstance(node, Token):
        raise TfvarsError(key, f"not a literal value ({_line(node)})")
    kind = node.data
    if kind == "expr_term":
        parts = [c for c in node.children if isinstance(c, Tree)]
        if len(node.children) != 1 or len(parts) != 1:
            raise _expression(key, node)
        return _value(parts[0], key)
    if kind == "int_lit":
        return int(str(node.children[0]))
    if kind == "float_lit":
        number = float(str(node.children[0]))
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "unary_op" and str(node.children[0]) == "-":
        number = _value(node.children[1], key)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise _expression(key, node)
        return -number
    if kind == "literal_value":
        return {"true": True, "false": False, "null": None}[str(node.children[0])]
    if kind == "string":
        return _string(node, key)
    if kind in ("heredoc_template", "heredoc_template_trim"):
        return _heredoc(str(node.children[0]), key, node)
    if kind == "tuple":
        items = [
            c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"
        ]
        return [_value(item, f"{key}[{index}]") for index, item in enumerate(items)]
    if kind == "object":
        return _object(node, key)
    raise _expression(key, node)


def _expression(key: str, node: Tree) -> TfvarsError:
    return TfvarsError(
        key,
        f"only literal values are read here, not an expression ({_line(node)}): "
        "write the value itself (a quoted string, a number, true/false, a list or an object)",
    )


def _object(node: Tree, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for elem in node.children:
        if not isinstance(elem, Tree) or elem.data != "object_elem":
            continue
        name = _object_key(elem.children[0], key)
        where = f"{key}.{name}"
        if name in seen:
            raise TfvarsError(where, f"set twice ({seen[name]} and {_line(elem)})")
        seen[name] = _line(elem)
        out[name] = _value(elem.children[-1], where)
    return out


def _object_key(node: Tree, key: str) -> str:
    # object_elem_key: an identifier or a quoted string (Terraform takes both).
    term = node.children[0] if node.children else node
    inner = term.children[0] if isinstance(term, Tree) and term.children else term
    if isinstance(inner, Tree) and inner.data == "identifier":
        return _identifier(inner)
    if isinstance(inner, Tree) and inner.data == "string":
        return str(_string(inner, key))
    if isinstance(inner, Token):
        return str(inner)
    raise TfvarsError(key, f"an object key must be a name or a quoted string ({_line(node)})")


def _string(node: Tree, key: str) -> str:
    out = []
    for part in node.children:
        if not isinstance(part, Tree):
            continue  # the quotes
        for piece in part.children:
            if isinstance(piece, Tree):  # interpolation or template directive
                raise _template(key, node)
            text = str(piece)
            # python-hcl2 lexes "$${" up to the next "}" as one token, so escapes, more
            # "$${" and even a real "${" can sit inside one: each piece is read on its own.
            for chunk in _TEMPLATE_MARK.split(text):
                if chunk in ("$${", "%%{"):
                    out.append(chunk[1:])
                elif chunk in ("${", "%{"):
                    raise _template(key, node)
                else:
                    out.append(_unescape(chunk, key, node))
    return "".join(out)


def _template(key: str, node: Tree) -> TfvarsError:
    return TfvarsError(
        key,
        f"${{...}} and %{{...}} templates are not evaluated here ({_line(node)}): write the "
        "literal value, or $${ for a literal ${",
    )


def _unescape(text: str, key: str, node: Tree) -> str:
    def one(match: re.Match[str]) -> str:
        short, long, simple = match.groups()
        if short or long:
            return chr(int(short or long, 16))
        if simple in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[simple]
        raise TfvarsError(key, f"invalid escape sequence \\{simple} ({_line(node)})")

    return _ESCAPE.sub(one, text)


def _heredoc(text: str, key: str, node: Tree) -> str:
    match = _HEREDOC.fullmatch(text.rstrip("\n") + "\n") or _HEREDOC.fullmatch(text)
    if match is None:
        raise TfvarsError(key, f"unreadable heredoc ({_line(node)})")
    trim, _, body = match.groups()
    lines = body.splitlines(keepends=True)
    if trim:
        # <<-: the smallest indentation of the non-blank lines is removed from every line.
        indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
        cut = min(indents, default=0)
        lines = [line[cut:] if line.strip() else line.lstrip(" \t") for line in lines]
    out = []
    for chunk in _TEMPLATE_MARK.split("".join(lines)):
        if chunk in ("${", "%{"):
            raise _template(key, node)
        out.append(chunk[1:] if chunk in ("$${", "%%{") else chunk)  # no \ escapes in heredocs
    return "".join(out)
