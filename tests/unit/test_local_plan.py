"""tirosh.plan: the local phase as data, and how it reads on screen."""

from __future__ import annotations

import pytest

from tirosh.plan import Change, Connection, Plan, connection_state


def test_a_change_reads_as_today_with_and_without_its_subject() -> None:
    change = Change("cluster gpu", "create", "ServiceAccount kube-system/argocd-manager")
    assert str(change) == "cluster gpu: create    ServiceAccount kube-system/argocd-manager"
    assert change.text == "create    ServiceAccount kube-system/argocd-manager"
    assert str(Change("", "unchanged", "Secret a/b key k")) == "unchanged Secret a/b key k"


@pytest.mark.parametrize(
    ("actions", "pending"),
    [
        ((), False),
        (("unchanged", "unchanged"), False),
        (("unchanged", "create"), True),
        (("update",), True),
        (("delete",), True),
    ],
)
def test_pending_means_something_would_change(actions: tuple[str, ...], pending: bool) -> None:
    plan = Plan([Change("s", a, "x") for a in actions])  # type: ignore[arg-type]
    assert plan.pending is pending


def test_lines_put_each_connection_after_its_subjects_changes() -> None:
    plan = Plan(
        [
            Change("cluster a", "unchanged", "ServiceAccount x"),
            Change("cluster a", "update", "Argo CD cluster a"),
            Change("repo", "create", "repository https://g/r"),
        ],
        [Connection("repo", "Failed", "auth"), Connection("cluster a", "Successful")],
        ["a note"],
    )
    assert plan.lines() == [
        "a note",
        "cluster a: unchanged ServiceAccount x",
        "cluster a: update    Argo CD cluster a",
        "cluster a: connection Successful",
        "repo: create    repository https://g/r",
        "repo: connection Failed: auth",
    ]
    assert plan.failed


def test_extend_keeps_order() -> None:
    first = Plan([Change("a", "create", "x")], notes=["n"])
    first.extend(Plan([Change("b", "unchanged", "y")], [Connection("b", "Successful")]))
    assert [str(c) for c in first.changes] == ["a: create    x", "b: unchanged y"]
    assert first.notes == ["n"] and not first.failed


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ({"info": {"connectionState": {"status": "Successful"}}}, ("Successful", "")),
        ({"connectionState": {"status": "Failed", "message": "no"}}, ("Failed", "no")),
        # A cluster whose info has none yet: the deprecated top-level one, as older servers fill.
        ({"info": {}, "connectionState": {"status": "Failed"}}, ("Failed", "")),
        ({}, ("Unknown", "")),
        (None, ("Unknown", "")),
        ({"info": "not a mapping", "connectionState": ["a", "list"]}, ("Unknown", "")),
    ],
)
def test_connection_state_is_read_one_way(answer: object, state: tuple[str, str]) -> None:
    assert connection_state(answer) == state  # type: ignore[arg-type]
