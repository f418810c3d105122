"""A browser's part of an SSO login, driven over HTTP: cookies, redirects, the provider's forms;
and what the SSO tests share (their Applications, Argo CD's API with a session, a restart)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lab.argocd_harness import KUBECTL, NAMESPACE, Harness, Process, wait_http

__all__ = ["Browser", "api", "applications", "restart_argocd_server"]


def applications(harness: Harness, git: str) -> None:
    documents = []
    for project in ("prod", "stage"):
        documents.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "AppProject",
                "metadata": {"name": project, "namespace": NAMESPACE},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                },
            }
        )
        documents.append(
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": f"{project}-web", "namespace": NAMESPACE},
                "spec": {
                    "project": project,
                    "source": {"repoURL": f"{git}/public/gitops.git", "path": "apps"},
                    "destination": {
                        "server": "https://kubernetes.default.svc",
                        "namespace": "default",
                    },
                },
            }
        )
    body = "\n---\n".join(json.dumps(d) for d in documents)
    subprocess.run(
        [KUBECTL, "--kubeconfig", str(harness.management_admin), "apply", "-f", "-"],
        input=body,
        text=True,
        check=True,
        capture_output=True,
    )


class Browser:
    """A cookie jar and redirects, as a browser has; the provider's CA trusted."""

    def __init__(self, ca_file: Path | None = None) -> None:
        self.jar = http.cookiejar.CookieJar()
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=context),
        )

    def open(self, url: str, form: dict[str, str] | None = None) -> tuple[str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(url, data=data, timeout=30) as answer:
            return answer.geturl(), answer.read().decode(errors="replace")

    def submit(self, page_url: str, page: str, **fields: str) -> tuple[str, str]:
        """Submit the page's form: its hidden inputs and ``fields``."""
        action = re.search(r'<form[^>]*action="([^"]+)"', page)
        assert action, page[:500]
        form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        form.update(fields)
        return self.open(urllib.parse.urljoin(page_url, action.group(1)), form)

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)


def api(url: str, token: str, method: str, path: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"{url}{path}",
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def restart_argocd_server(harness: Harness) -> None:
    """What the phase's rollout restart does to a Deployment's Pod, for the harness's process
    (the same argv and environment, a new process)."""
    index, old = next(
        (i, p) for i, p in enumerate(harness.processes) if p.log.name == "argocd-server.log"
    )
    environ = Path(f"/proc/{old.popen.pid}/environ").read_bytes().split(b"\0")
    env = dict(entry.decode().split("=", 1) for entry in environ if b"=" in entry)
    argv = [str(arg) for arg in old.popen.args]  # type: ignore[union-attr]
    cwd = Path(f"/proc/{old.popen.pid}/cwd").resolve()
    old.stop()
    new = Process(argv, old.log.with_name("argocd-server-restarted.log"), env, cwd)
    harness.processes[index] = new
    wait_http(f"{harness.url}/api/version", new)
