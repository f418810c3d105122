"""Operator overrides from the environment; each replaces a profile.toml value, checked like it."""

from __future__ import annotations

import os
from pathlib import Path

from tirosh.inputs import excerpt, text_problem
from tirosh.site.files import ProfileDraft
from tirosh.site.model import ENVIRONMENT
from tirosh.site.reader import Report
from tirosh.site.values import host_port_problem


def apply_environment(report: Report, draft: ProfileDraft) -> None:
    """KUBECONFIG, KUBECTX, K3S_TARGET_NAME / ARGOCD_TARGET_NAME (K3S_ wins), K3S_KUBECONFIG_PATH;
    ARGOCD_SERVER is checked like argocd.server (the local phase applies it)."""
    env = report.environ
    cwd = Path.cwd()
    # Like kubectl, a KUBECONFIG list is searched in order; we merge into its first entry.
    entries = [entry for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if entries and not _check_kubeconfig_list(report, entries):
        entries = []
    # The override of argocd.server, checked like it: a '#', '?' or '/' would send the login
    # somewhere else.
    if (server := env.get("ARGOCD_SERVER")) and (problem := host_port_problem(server)):
        report.add(ENVIRONMENT, "ARGOCD_SERVER", problem)
    if entries:
        draft.kube["kubeconfig"] = path = report.resolve(entries[0], cwd)
        report.warn_kubeconfig_path("KUBECONFIG", entries[0], path)
    if env.get("KUBECTX"):
        draft.kube["argocd_context"] = env["KUBECTX"]
        draft.context_source = (ENVIRONMENT, "KUBECTX")
    for variable in ("ARGOCD_TARGET_NAME", "K3S_TARGET_NAME"):  # later wins: K3S_ beats ARGOCD_
        if env.get(variable):
            draft.argocd["target_name"] = env[variable]
            draft.target_source = (ENVIRONMENT, variable)
    if text := env.get("K3S_KUBECONFIG_PATH"):
        draft.k3s["kubeconfig_path"] = path = report.resolve(text, cwd)
        report.warn_kubeconfig_path("K3S_KUBECONFIG_PATH", text, path)


def _check_kubeconfig_list(report: Report, entries: list[str]) -> bool:
    """KUBECONFIG's entries as kubectl reads them: it expands no ``~`` and takes blanks as part
    of a file name, so such an entry names another file than the one we would merge into."""
    for entry in entries:
        problem = text_problem(entry)
        if problem is None and not entry.strip():
            problem = (
                "has a blank entry, which kubectl reads as a file name: name a file or unset it"
            )
        elif problem is None and entry != entry.strip():
            problem = f"entry {excerpt(entry)} has leading or trailing blanks, which kubectl keeps"
        elif problem is None and entry.startswith("~"):
            problem = (
                f"entry {excerpt(entry)} starts with '~', which kubectl does not expand (a shell "
                "does only at the start of a word): write the path with $HOME instead"
            )
        if problem is not None:
            report.add(ENVIRONMENT, "KUBECONFIG", problem)
            return False
    return True
