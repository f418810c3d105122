"""Fixtures: a real Argo CD v3.5.8 API server on loopback with a management and a workload
cluster, and a site ``loop`` that points at them (see harness.py).

Everything lives under one temporary directory used as the operator's HOME; every process is
stopped and checked gone at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.argocd_harness import (
    CLUSTER_NAME,
    GIT_TOKEN,
    GIT_USER,
    KUBECTL,
    MANAGEMENT,
    NAMESPACE,
    SITE,
    WORKLOAD,
    Harness,
    argocd_harness,
    git_http_server,
)

__all__ = [
    "CLUSTER_NAME",
    "GIT_TOKEN",
    "GIT_USER",
    "KUBECTL",
    "MANAGEMENT",
    "NAMESPACE",
    "SITE",
    "WORKLOAD",
    "Harness",
]


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with argocd_harness(tmp_path_factory.mktemp("argocd")) as running:
        yield running


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with git_http_server(tmp_path_factory.mktemp("git")) as url:
        yield url
