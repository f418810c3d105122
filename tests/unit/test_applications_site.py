"""applications.toml as the site model reads it: projects, applications, [gitops], and every
refusal checked against the site's registered repositories and clusters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tirosh.applications import Application, Destination, GitOps, Project, SyncWindow
from tirosh.clusters import WorkloadCluster
from tirosh.repositories import Credentials, Repository, Template
from tirosh.site import SiteError, load_site
from tirosh.site.applications_file import Declared, read_applications
from tirosh.site.reader import Report

REPO_ROOT = Path(__file__).resolve().parents[2]
GITOPS = "https://git.example/org/gitops.git"
REPOSITORIES = (Repository("gitops", GITOPS),)
TEMPLATES = (Template("https://git.example/private", Credentials("bot", "TOKEN")),)
CLUSTERS = (WorkloadCluster("ctx/gpu", "gpu"),)
PROJECT = f"""
[[projects]]
name = "platform"
source_repos = ["{GITOPS}"]
destinations = [{{ cluster = "in-cluster", namespace = "argocd" }}, {{ cluster = "gpu", namespace = "apps-*" }}]
"""
APP = f"""
[[applications]]
name = "root"
project = "platform"
repo_url = "{GITOPS}"
path = "clusters/site"
target_revision = "main"
cluster = "in-cluster"
namespace = "argocd"
"""


def _read(tmp_path: Path, text: str) -> tuple[Declared, list[str]]:
    path = tmp_path / "applications.toml"
    path.write_text(text)
    report = Report(tmp_path, {})
    declared = read_applications(report, path, REPOSITORIES, TEMPLATES, CLUSTERS)
    return declared, [f"{p.key}: {p.message}" for p in report.problems]


def _problems(tmp_path: Path, text: str) -> list[str]:
    return _read(tmp_path, text)[1]


def test_no_file_declares_nothing(tmp_path: Path) -> None:
    report = Report(tmp_path, {})
    assert read_applications(report, tmp_path / "absent.toml") == Declared()
    assert not report.problems


def test_a_full_declaration(tmp_path: Path) -> None:
    text = f"""
[gitops]
reconciliation_timeout = "30s"
webhook_secret_env = "HOOK_SECRET"

[[projects]]
name = "platform"
description = "root and children"
source_repos = ["{GITOPS}", "https://git.example/private/one.git"]
source_patterns = ["https://git.example/org/*"]
destinations = [{{ cluster = "gpu", namespace = "*" }}, {{ cluster = "in-cluster", namespace = "argocd" }}]
cluster_resources = ["Namespace", "rbac.authorization.k8s.io/ClusterRole", "*"]

[[projects.sync_windows]]
kind = "deny"
schedule = "0 22 * * 1-5"
duration = "10h"
applications = ["*-prd"]
manual_sync = true
time_zone = "Asia/Seoul"

[[applications]]
name = "root"
project = "platform"
repo_url = "https://git.example/org/other.git"
path = "clusters/site"
target_revision = "release/1.x"
cluster = "gpu"
namespace = "apps"
sync = "automated"
prune = true
self_heal = true
sync_options = ["CreateNamespace=true", "ServerSideApply=true"]
finalizer = "background"
"""
    # other.git is under no template and not registered: only the project's pattern and ...
    declared, problems = _read(tmp_path, text)
    assert problems == [
        "applications[0].repo_url: 'https://git.example/org/other.git' is not a repository the "
        "site registers (argocd/repositories.toml: https://git.example/org/gitops), nor under "
        "one of its credential templates; a pattern on purpose goes in source_patterns"
    ]
    declared, problems = _read(tmp_path, text.replace("org/other.git", "org/gitops"))
    assert problems == []
    assert declared.gitops == GitOps("30s", "HOOK_SECRET")
    assert declared.projects == (
        Project(
            "platform",
            "root and children",
            (GITOPS, "https://git.example/private/one.git"),
            ("https://git.example/org/*",),
            (Destination("gpu", "*"), Destination("in-cluster", "argocd")),
            (("", "Namespace"), ("rbac.authorization.k8s.io", "ClusterRole"), ("*", "*")),
            (
                SyncWindow(
                    "deny",
                    "0 22 * * 1-5",
                    "10h",
                    ("*-prd",),
                    manual_sync=True,
                    time_zone="Asia/Seoul",
                ),
            ),
        ),
    )
    assert declared.applications == (
        Application(
            "root",
            "platform",
            "https://git.example/org/gitops",
            "clusters/site",
            "release/1.x",
            "gpu",
            "apps",
            True,
            True,
            True,
            ("CreateNamespace=true", "ServerSideApply=true"),
            "background",
        ),
    )


def test_the_minimal_application_is_manual_without_finalizer(tmp_path: Path) -> None:
    declared, problems = _read(tmp_path, PROJECT + APP)
    assert problems == []
    (app,) = declared.applications
    assert (app.automated, app.prune, app.self_heal, app.finalizer) == (False, False, False, "none")


def test_a_project_naming_an_unregistered_repository_or_cluster_is_refused(tmp_path: Path) -> None:
    text = """
[[projects]]
name = "p"
source_repos = ["https://elsewhere.example/x.git"]
destinations = [{ cluster = "nowhere", namespace = "default" }]
"""
    problems = _problems(tmp_path, text)
    assert len(problems) == 2
    assert problems[0].startswith(
        "projects[0].source_repos[0]: 'https://elsewhere.example/x.git' is not a repository the site registers"
    )
    assert problems[1] == (
        "projects[0].destinations[0].cluster: 'nowhere' is not a cluster the site registers "
        "(known: in-cluster, gpu; argocd/clusters.toml or profile.toml's argocd.cluster_name)"
    )


def test_a_repository_under_a_template_and_a_pattern_are_allowed(tmp_path: Path) -> None:
    text = """
[[projects]]
name = "p"
source_repos = ["https://git.example/private/any.git"]
source_patterns = ["https://elsewhere.example/*"]
destinations = [{ cluster = "gpu", namespace = "default" }]
"""
    assert _problems(tmp_path, text) == []


def test_an_application_whose_project_forbids_its_destination_is_refused(tmp_path: Path) -> None:
    text = PROJECT + APP.replace('cluster = "in-cluster"', 'cluster = "gpu"')
    assert _problems(tmp_path, text) == [
        "applications[0].namespace: project platform does not allow the destination gpu/argocd "
        "(its destinations)"
    ]
    allowed = APP.replace('cluster = "in-cluster"', 'cluster = "gpu"').replace(
        'namespace = "argocd"', 'namespace = "apps-web"'
    )
    assert _problems(tmp_path, PROJECT + allowed) == []


def test_an_application_whose_project_forbids_its_source_is_refused(tmp_path: Path) -> None:
    text = PROJECT.replace(
        f'source_repos = ["{GITOPS}"]', 'source_repos = ["https://git.example/private/a.git"]'
    )
    assert _problems(tmp_path, text + APP) == [
        f"applications[0].repo_url: project platform does not allow '{GITOPS}' "
        "(its source_repos / source_patterns)"
    ]


def test_an_unknown_project_is_refused(tmp_path: Path) -> None:
    assert _problems(tmp_path, APP) == [
        "applications[0].project: 'platform' is not a project of this file (declared: none)"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'target_revision = "0123456789abcdef0123456789abcdef01234567"',
            "target_revision: must be a branch",
        ),
        ('target_revision = "HEAD"', "target_revision: must be a branch"),
        ('target_revision = "refs/tags/v1"', "target_revision: must be a branch"),
        ('target_revision = "a..b"', "target_revision: is not a Git branch name"),
        ('path = "../etc"', "path: must be a path inside the repository"),
        ('path = "/abs"', "path: must be a path inside the repository"),
        ('sync = "auto"', "sync: must be automated or manual"),
        ("prune = true", 'prune: only with sync = "automated"'),
        ('sync_options = ["CreateNamespace"]', "sync_options[0]: must be Name=value"),
        ('sync_options = ["Bogus=true"]', "sync_options[0]: must be Name=value"),
        ('finalizer = "cascade"', "finalizer: must be one of none, foreground, background"),
        ('name = "Root"', "name: must be a lowercase DNS subdomain name"),
        ('namespace = "Argo CD"', "namespace: "),
        ('cluster = "nowhere"', "cluster: 'nowhere' is not a cluster the site registers"),
        ("colour = 1", "colour: unknown key"),
    ],
)
def test_application_values_are_refused(tmp_path: Path, line: str, expected: str) -> None:
    key = line.split(" =")[0]
    lines = [entry for entry in APP.splitlines() if not entry.startswith(f"{key} =")]
    problems = _problems(tmp_path, PROJECT + "\n".join([*lines, line]) + "\n")
    assert len(problems) >= 1 and problems[0].startswith(f"applications[0].{expected}"), problems


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ('kind = "maybe"', "kind: must be allow or deny"),
        ('schedule = "every night"', "schedule: must be a cron schedule of 5 fields"),
        ('duration = "one hour"', "duration: must be a duration"),
        ("applications = []", "applications: a window matches nothing"),
    ],
)
def test_sync_window_values_are_refused(tmp_path: Path, window: str, expected: str) -> None:
    good = {
        "kind": '"allow"',
        "schedule": '"0 9 * * *"',
        "duration": '"8h"',
        "applications": '["*"]',
    }
    key = window.split(" =")[0]
    good[key] = window.split(" = ", 1)[1]
    text = (
        PROJECT + "[[projects.sync_windows]]\n" + "".join(f"{k} = {v}\n" for k, v in good.items())
    )
    problems = _problems(tmp_path, text)
    assert problems and problems[0].startswith(f"projects[0].sync_windows[0].{expected}"), problems


def test_cluster_resources_and_gitops_values_are_refused(tmp_path: Path) -> None:
    text = PROJECT.replace(
        "destinations =", 'cluster_resources = ["namespace", "Bad Group/Kind"]\ndestinations ='
    )
    text = (
        '[gitops]\nreconciliation_timeout = "3 minutes"\nwebhook_secret_env = "not-a-var"\n' + text
    )
    problems = _problems(tmp_path, text)
    assert (
        problems[0]
        == "gitops.reconciliation_timeout: must be a duration such as 180s or 3m, got '3 minutes'"
    )
    assert problems[1].startswith("gitops.webhook_secret_env: must name an environment variable")
    assert problems[2].startswith("projects[0].cluster_resources[0]: must be Kind, group/Kind or *")
    assert problems[3].startswith("projects[0].cluster_resources[1]: must be Kind, group/Kind or *")


def test_names_declared_twice_are_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, PROJECT + PROJECT + APP + APP)
    assert problems == [
        "projects[1].name: 'platform' is declared twice",
        "applications[1].name: 'root' is declared twice",
    ]


def test_tirosh_home_ships_its_root_application() -> None:
    site = load_site("tirosh-home", REPO_ROOT, {"HOME": "/home/op"})
    assert [p.name for p in site.projects] == ["tirosh-home"]
    (root,) = site.applications
    assert root.repo_url == "https://github.com/tirosh-chain/tirosh-gitops.git"
    assert root.path.startswith("clusters/tirosh-home/")
    assert (root.target_revision, root.cluster, root.namespace) == ("main", "in-cluster", "argocd")
    assert site.gitops.reconciliation_timeout == "60s"


def test_a_site_file_problem_stops_the_load_before_any_connection(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    shutil.copytree(REPO_ROOT / "sites" / "tirosh-home", sites / "tirosh-home")
    path = sites / "tirosh-home/argocd/applications.toml"
    path.write_text(
        path.read_text().replace('namespace = "argocd"\nsync', 'namespace = "default"\nsync')
    )
    with pytest.raises(SiteError) as raised:
        load_site("tirosh-home", REPO_ROOT, {"HOME": "/home/op", "TIROSH_SITES_DIR": str(sites)})
    assert [str(p).removeprefix(f"{sites}/") for p in raised.value.problems] == [
        "tirosh-home/argocd/applications.toml: applications[0].namespace: project "
        "tirosh-home does not allow the destination in-cluster/default (its destinations)"
    ]
