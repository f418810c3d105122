"""tirosh.tfvars: HCL literals read as Terraform reads a .tfvars file, everything else refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tirosh.tfvars import TfvarsError, loads, loads_cached


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('a = "x\\"y\\\\z\\n\\u00e9"', 'x"y\\z\né'),
        ('a = "$${literal} %%{literal}"', "${literal} %{literal}"),
        ('a = "%%{%%{}"', "%{%{}"),
        ('a = "$${a\\\\}"', "${a\\}"),
        ("a = <<EOT\n$${x} %%{y}\nEOT\n", "${x} %{y}\n"),
        # A heredoc keeps each line's newline; <<- removes the common indentation.
        ("a = <<EOT\nline1\n  line2\nEOT\n", "line1\n  line2\n"),
        ("a = <<-EOT\n    line1\n      line2\n    EOT\n", "line1\n  line2\n"),
        ("a = <<EOT\nx\nEOT", "x\n"),
        ("a = -3", -3),
        ("a = 2e3", 2000),
        ("a = 2.5", 2.5),
        ("a = true", True),
        ("a = null", None),
        ("a = [1, 2,]", [1, 2]),
        ('a = { "x" : 1, y = 2, }', {"x": 1, "y": 2}),
        ('a = "4"', "4"),  # a string; the site reader converts it where a number is wanted
    ],
)
def test_literals_read_as_terraform_reads_them(text: str, value: object) -> None:
    assert loads(text) == {"a": value}


def test_comments_of_every_kind_are_ignored() -> None:
    text = '# one\na = 1 // two\n/* three\n   lines */\nb = [ # four\n  "x",\n]\n'
    assert loads(text) == {"a": 1, "b": ["x"]}


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("a = var.x", "a", "only literal values"),
        ("a = argocd", "a", "only literal values"),  # a bare word is a reference, not a string
        ('a = upper("x")', "a", "only literal values"),
        ("a = 1 + 2", "a", "only literal values"),
        ('a = "a${1}b"', "a", "templates are not evaluated"),
        ('a = "%{ if true }x%{ endif }"', "a", "templates are not evaluated"),
        ("a = <<EOT\n${x}\nEOT\n", "a", "templates are not evaluated"),
        # python-hcl2 lexes "$${${x}" as one token: the real ${ inside is still found.
        ('a = "$${${x}}"', "a", "templates are not evaluated"),
        ("a = 1\na = 2\n", "a", "set twice (line 1 and line 2)"),
        ('a = { x = 1, "x" = 2 }', "a.x", "set twice"),
        ("vm {\n  a = 1\n}\n", "vm", "blocks are not allowed"),
        ("a = [1, 2\n", "-", "invalid HCL: unexpected end of file at line 2"),
        ('a = "\\q"', "a", "invalid escape sequence \\q"),
    ],
)
def test_what_terraform_would_evaluate_or_refuse_is_refused(
    text: str, key: str, words: str
) -> None:
    with pytest.raises(TfvarsError) as info:
        loads(text)
    assert info.value.key == key
    assert words in info.value.message


def test_a_file_is_parsed_once_per_content(tmp_path: Path) -> None:
    text = 'vms = [{ name = "argocd" }]\n'
    assert loads_cached(text, tmp_path) == {"vms": [{"name": "argocd"}]}
    (entry,) = tmp_path.glob("*.json")
    # The next read of the same content is the cache entry's: proven by changing the entry.
    entry.write_text('{"vms": []}')
    assert loads_cached(text, tmp_path) == {"vms": []}
    entry.write_text("not json")
    assert loads_cached(text, tmp_path) == {"vms": [{"name": "argocd"}]}
    assert loads_cached(text.replace("argocd", "other"), tmp_path) == {"vms": [{"name": "other"}]}
    with pytest.raises(TfvarsError):
        loads_cached("a = var.x\n", tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2  # errors are not cached


def _hcl_string(value: str) -> str:
    """``value`` as an HCL quoted string, escaped as Terraform's own formatter writes it."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    out = out.replace("\r", "\\r").replace("\t", "\\t")
    return '"' + out.replace("${", "$${").replace("%{", "%%{") + '"'


@settings(max_examples=150)
@example("${var.x}")
@example("%{ if x }")
@example("$${already}")
@example('a\\"b\\\\')
@example("\u2028\x00\x1b")
@example("$")
@example("%")
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
def test_any_string_written_as_a_literal_reads_back(value: str) -> None:
    # python-hcl2 lexes $${ and %%{ only with a closing brace after them (see below).
    assume(not re.search(r"[$%]\{[^}]*$", value))
    assert loads(f"a = {_hcl_string(value)}\n") == {"a": value}


@pytest.mark.parametrize("text", ['a = "$${"', 'a = "%%{x"'])
def test_an_escaped_template_start_without_its_brace_is_refused_not_misread(text: str) -> None:
    # Terraform reads these as "${" and "%{x"; python-hcl2 8.1.4's lexer cannot, so the file is
    # refused as invalid HCL (with the position) rather than read as something else.
    with pytest.raises(TfvarsError, match=r"invalid HCL: unexpected .* at line 1, column 6"):
        loads(text)


@settings(max_examples=50)
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_whole_numbers_read_back(value: int) -> None:
    assert loads(f"a = {value}\nb = [{value}]\n") == {"a": value, "b": [value]}


@settings(max_examples=300)
@given(st.text(alphabet='${}%\\"ab\n\t', max_size=24))
def test_strings_dense_in_escapes_and_template_marks_read_back(value: str) -> None:
    # The alphabet that found "%%{\\}" and "%%{%%{}" read wrongly (one python-hcl2 token each).
    assume(not re.search(r"[$%]\{[^}]*$", value))
    assert loads(f"a = {_hcl_string(value)}\n") == {"a": value}
