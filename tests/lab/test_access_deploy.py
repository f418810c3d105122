"""Access (argocd/access.toml) through the whole deploy against the lab's Argo CD, at -vvv.

Runs after test_local_phase (see conftest.py): Argo CD runs on the lab's VM. A copy of the lab
site declares two login accounts, an automation account and a role; ``pyinfra -y -vvv`` of
deploy.py converges them in its local phase (through the profile's automatic port-forward,
logging in with the initial admin password read over SSH). Canaries (the passwords, a token)
appear 0 times in the output, in ``ps`` samples taken during the run, and in files written
outside 0600. Argo CD's answers for the accounts equal pycasbin's over every resource and
action; a second deploy changes nothing. Afterwards the keys are given up again.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from lab import config
from local.argocd.accounts import can_i
from local.argocd.api import Client
from local.argocd.session import endpoint, site_settings
from tests.lab.operator import KUBECTL, Operator
from tests.local.operator import _command_lines
from tirosh import rbac
from tirosh.access_plan import ACCESS_MANAGER
from tirosh.rbac_eval import Evaluator
from tirosh.site import load_site

pytestmark = pytest.mark.lab
MANAGEMENT = ("--context", "lab/k3s")
PASSWORDS = {
    "LAB_OPS_PASSWORD": "canary-lab-ops-5e2a7c",
    "LAB_DEV_PASSWORD": "canary-lab-dev-1b9f3d",
}
ACCESS = """
[[accounts]]
name = "ops"
capabilities = ["login"]
password_env = "LAB_OPS_PASSWORD"

[[accounts]]
name = "dev"
capabilities = ["login"]
password_env = "LAB_DEV_PASSWORD"

[[accounts]]
name = "ci"
capabilities = ["apiKey"]

[rbac]
default = ""

[[rbac.roles]]
name = "deployer"
permissions = ["applications, get, prod/*", "applications, sync, prod/*", "clusters, get, *"]

[[rbac.bindings]]
role = "deployer"
accounts = ["dev", "ci"]

[[rbac.bindings]]
role = "admin"
accounts = ["ops"]
"""


@pytest.fixture(scope="module")
def access_operator(
    operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    sites = tmp_path_factory.mktemp("access") / "sites"
    shutil.copytree(config.REPO_ROOT / "sites", sites)
    (sites / "lab" / "argocd" / "clusters.toml").write_text("clusters = []\n")
    (sites / "lab" / "argocd" / "access.toml").write_text(ACCESS)
    # Run alone on a fresh lab, the first deploy is from nothing: the phase then waits for the
    # rollout, server.insecure's restart included (no old argocd-server Pod left to reach).
    yield Operator(home=operator.home, env={"TIROSH_SITES_DIR": str(sites), **PASSWORDS})
    _give_up_the_keys(operator)


def _give_up_the_keys(operator: Operator) -> None:
    """An apply under the access manager with no data: every key it owned is removed."""
    for kind, name in (
        ("ConfigMap", "argocd-cm"),
        ("ConfigMap", "argocd-rbac-cm"),
        ("Secret", "argocd-secret"),
    ):
        body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "argocd"}}
        subprocess.run(
            [
                KUBECTL,
                *MANAGEMENT,
                "apply",
                "--server-side",
                "--force-conflicts",
                f"--field-manager={ACCESS_MANAGER}",
                "-f",
                "-",
            ],
            input=json.dumps(body),
            text=True,
            capture_output=True,
            env=operator.environ(),
            timeout=60,
            check=False,
        )


def _sampled_deploy(
    operator: Operator, *flags: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    samples: set[str] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.update(_command_lines())
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        result = operator.deploy(*flags)
    finally:
        done.set()
        thread.join()
    return result, samples


def test_the_deploy_converges_access_and_no_secret_shows_at_vvv(access_operator: Operator) -> None:
    result, samples = _sampled_deploy(access_operator, "-vvv")
    output = result.stdout + result.stderr
    assert "access: create    ConfigMap argocd/argocd-cm key accounts.ops" in output
    assert "access: create    password of account dev" in output
    for canary in PASSWORDS.values():
        assert output.count(canary) == 0
        assert not [line for line in samples if canary in line]
    assert any("inventories/lab.py" in line for line in samples)  # the samples saw the deploy
    for path in access_operator.home.rglob("*"):
        if path.is_file() and path.stat().st_mode & 0o077:
            data = path.read_bytes()
            assert not any(c.encode() in data for c in PASSWORDS.values()), path


def test_argocd_on_the_lab_answers_as_pycasbin_for_each_account(access_operator: Operator) -> None:
    stored = access_operator.kubectl(
        *MANAGEMENT,
        "-n",
        "argocd",
        "get",
        "cm",
        "argocd-rbac-cm",
        "-o",
        "jsonpath={.data.policy\\.csv}",
    ).stdout
    evaluator = Evaluator(stored)
    env = access_operator.environ()
    site = load_site("lab", environ=env)
    config = site_settings(site, env)
    with endpoint(site, config) as url:  # the profile's automatic port-forward
        for user, variable in (("ops", "LAB_OPS_PASSWORD"), ("dev", "LAB_DEV_PASSWORD")):
            client = Client(url, verify=not config.insecure)
            client.login(user, PASSWORDS[variable], variable)
            differ = []
            for resource, (actions, _) in rbac.RESOURCES.items():
                for action in actions:
                    obj = "prod/web" if resource in rbac.PROJECT_SCOPED else "*"
                    theirs = can_i(client, resource, action, obj)
                    if theirs != evaluator.allowed(user, resource, action, obj):
                        differ.append((user, resource, action, theirs))
            assert not differ, differ


def test_a_second_deploy_changes_no_access_key(access_operator: Operator) -> None:
    result = access_operator.deploy()
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "access: " in line]
    assert not [line for line in lines if " create " in line or " update " in line], lines


def test_argocd_keeps_its_own_keys(access_operator: Operator) -> None:
    secret = json.loads(
        access_operator.kubectl(
            *MANAGEMENT, "-n", "argocd", "get", "secret", "argocd-secret", "-o", "json"
        ).stdout
    )["data"]
    assert "server.secretkey" in secret and "admin.password" in secret
    assert base64.b64decode(secret["accounts.dev.password"]).startswith(b"$2")
