"""Test setup shared by every tier.

pyinfra's CLI package monkey-patches the whole process with gevent when imported (pyinfra_testing
imports it). Patching first, here, makes that order the same for every test run.
"""

from gevent import monkey

monkey.patch_all()

import os  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from lab import lifecycle  # noqa: E402

# Property tests assert behaviour, not speed: a busy CI machine must not fail them on a deadline.
settings.register_profile("tirosh", deadline=None)
settings.load_profile("tirosh")

# Caches the code keeps in the operator's home (parsed manifests) go to a throwaway place.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="tirosh-test-cache-")

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
    with lifecycle.exclusive():
        try:
            lifecycle.up()
            yield lifecycle
        finally:
            lifecycle.down()


import shutil  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from lab.loopback import loopback_cluster  # noqa: E402


@pytest.fixture(scope="session")
def loopback_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Admin kubeconfig (context ``default``) of a real kube-apiserver, kube-controller-manager
    and kine on 127.0.0.1 for the session (lab/loopback.py): API-level tests without the lab's
    hosts. Everything is stopped, checked gone and removed afterwards."""
    tmp = tmp_path_factory.mktemp("loopback")
    try:
        with loopback_cluster(tmp) as kubeconfig:
            yield kubeconfig
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
