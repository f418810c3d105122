"""The lines argocd/app/list and the doctor print for an application, from what Argo CD returns."""

from __future__ import annotations

from local.argocd.app_commands import conditions, deployed_revision, revision_line

HEAD = "a" * 40
OLD = "b" * 40


def _app(
    head: str, history: list[str], extra: dict[str, object] | None = None
) -> dict[str, object]:
    status: dict[str, object] = {
        "sync": {"status": "Synced", "revision": head},
        "history": [{"revision": r} for r in history],
    }
    status.update(extra or {})
    return {"spec": {"source": {"targetRevision": "main"}}, "status": status}


def test_deployed_at_the_branch_head() -> None:
    assert revision_line(_app(HEAD, [OLD, HEAD])) == "main@aaaaaaa, deployed aaaaaaa"


def test_behind_the_branch() -> None:
    assert revision_line(_app(HEAD, [OLD])) == "main@aaaaaaa, deployed bbbbbbb (behind the branch)"


def test_never_synced_falls_back_to_the_operation() -> None:
    app = _app(HEAD, [], {"operationState": {"syncResult": {"revision": OLD}}})
    assert deployed_revision(app) == OLD
    assert revision_line({"status": {}}) == "HEAD@-, deployed -"


def test_conditions_are_one_line_each() -> None:
    app = _app(
        HEAD, [], {"conditions": [{"type": "ComparisonError", "message": "rpc error:\n  x"}]}
    )
    assert conditions(app) == ["ComparisonError: rpc error: x"]
