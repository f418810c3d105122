"""The last screen of ``make demo``: what a newcomer needs next, on one screen.

Usage: ``python -m lab.welcome`` (the Makefile's ``demo/report`` runs it last). It reads the lab
site (contexts, kubeconfig, Argo CD version and name) and the lab's addresses; it prints no
secret: the admin password is one command away, never on the screen.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lab import config, edge
from tirosh.site import Site, SiteError, load_site

SITE = "lab"


def _home_relative(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def screen(site: Site) -> str:
    """The screen for ``site`` (the lab's), as plain text of at most 24 lines."""
    proxy = config.host(config.EDGE_HOST).address
    name = edge.ARGOCD_SERVER_NAME
    ca = edge.SECRETS.ca_cert.relative_to(config.REPO_ROOT)
    kubeconfig = _home_relative(site.kubeconfig)
    width = max(len(site.argocd_context), len(site.rke2_context))
    return "\n".join(
        [
            f"The lab is up: Argo CD {site.argocd.version} runs on the management VM "
            f"{site.target.ansible_host} (k3s).",
            "",
            f"Argo CD      https://{name}  (the lab's TLS proxy {proxy}, lab CA {ca})",
            f"  try        curl --cacert {ca} --resolve {name}:443:{proxy} \\",
            f"               https://{name}/api/version",
            "  or         make argocd/port-forward SITE=lab   then http://127.0.0.1:8080",
            "             (API, gRPC and the argocd CLI; the lab's build has no web UI)",
            "Login        user admin, password: make argocd/password SITE=lab",
            f"Contexts     {site.argocd_context:<{width}}  management cluster (k3s, Argo CD)",
            f"             {site.rke2_context:<{width}}  workload cluster (API only)",
            f"             in {kubeconfig}, beside the contexts that were there",
            "",
            "Commands to try",
            f"  .venv/bin/kubectl --context {site.argocd_context} -n argocd get pods",
            "  make argocd/status SITE=lab      health of every Argo CD workload",
            "  make plan SITE=lab               the deploy again, --dry: nothing to change",
            "  make lab-ssh HOST=argocd         a shell on the management VM",
            "  make lab-down                    stop the lab and remove every trace",
            "",
            "Next: README.md (a site of your own: sites/<site>/), lab/README.md (the lab).",
        ]
    )


def main() -> int:
    try:
        site = load_site(SITE)  # its warnings were shown by the deploy already
    except SiteError as error:
        print(error, file=sys.stderr)
        return 2
    print(screen(site))
    return 0


if __name__ == "__main__":
    sys.exit(main())
