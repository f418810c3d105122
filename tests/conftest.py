"""Test setup shared by every tier.

pyinfra's CLI package monkey-patches the whole process with gevent when imported (pyinfra_testing
imports it). Patching first, here, makes that order the same for every test run.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402

import pytest  # noqa: E402

from lab import lifecycle  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lab tests skip with a reason outside CI when the machine cannot run the lab; in CI they fail."""
    problems = lifecycle.missing_prerequisites()
    if not problems:
        return
    reason = "lab unavailable: " + "; ".join(problems)
    for item in items:
        if "lab" in item.keywords:
            if IN_CI:
                item.add_marker(pytest.mark.usefixtures("_lab_prerequisites_in_ci"))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def _lab_prerequisites_in_ci() -> None:
    pytest.fail("CI=true: " + "; ".join(lifecycle.missing_prerequisites()), pytrace=False)


@pytest.fixture(scope="session")
def lab() -> object:
    """A freshly booted lab for the whole session, stopped with every trace removed afterwards."""
    lifecycle.up()
    try:
        yield lifecycle
    finally:
        lifecycle.down()
