"""Operator overrides from the environment; each replaces a profile.toml value, checked like it."""

from __future__ import annotations

import os
from pathlib import Path

from tirosh.site.files import ProfileDraft
from tirosh.site.model import ENVIRONMENT
from tirosh.site.reader import Report


def apply_environment(report: Report, draft: ProfileDraft) -> None:
    """KUBECONFIG, KUBECTX, K3S_TARGET_NAME / ARGOCD_TARGET_NAME (K3S_ wins), K3S_KUBECONFIG_PATH."""
    env = report.environ
    cwd = Path.cwd()
    # Like kubectl, a KUBECONFIG list is searched in order; we merge into its first entry.
    entries = [entry for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
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
