"""Render the files under templates/ with Jinja2; a missing variable is an error, not blank."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Read once, at import: rendering then needs no file system (pyinfra's fixture tests patch it).
_TEMPLATES = {
    path.relative_to(TEMPLATE_DIR).as_posix(): path.read_text()
    for path in TEMPLATE_DIR.rglob("*.j2")
}

_environment = jinja2.Environment(
    loader=jinja2.DictLoader(_TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


def render(name: str, **variables: Any) -> str:
    return _environment.get_template(name).render(**variables)
