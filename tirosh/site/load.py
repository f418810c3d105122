"""Load a site: read every file once, apply the overrides, check across files, build the model."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from tirosh.login_args import LoginArgsError, parse_login_args
from tirosh.site import model
from tirosh.site.access_file import read_access
from tirosh.site.applications_file import read_applications
from tirosh.site.checks import check_kubeconfig_files, cross_check
from tirosh.site.clusters_file import read_clusters
from tirosh.site.environment import apply_environment
from tirosh.site.files import (
    ArgoDraft,
    ProfileDraft,
    read_argocd_vars,
    read_inventory,
    read_profile,
)
from tirosh.site.k3s_vars import K3sDraft, read_k3s_vars
from tirosh.site.model import Problem, Site, SiteError, Vm
from tirosh.site.reader import Report
from tirosh.site.repositories_file import read_repositories
from tirosh.site.secrets_file import read_secrets
from tirosh.site.values import NAME, url_host
from tirosh.site.vms_file import read_declared

# The repository root is the parent of the tirosh package directory (it holds sites/).
_DEFAULT_REPO_ROOT: Final = Path(__file__).resolve().parents[2]


def load_site(
    name: str,
    repo_root: Path | None = None,
    environ: Mapping[str, str] | None = None,
    parse_manifest: bool = True,
) -> Site:
    """Load, validate and resolve ``sites/<name>/``; raise SiteError listing every problem.

    ``environ`` (default ``os.environ``) supplies operator overrides: KUBECONFIG, KUBECTX,
    K3S_TARGET_NAME / ARGOCD_TARGET_NAME (K3S_ wins) and K3S_KUBECONFIG_PATH.
    ``parse_manifest`` False (the operator commands, which do not install Argo CD): a manifest
    file is checked against its pin and for being readable, not parsed as YAML.
    """
    root = (repo_root if repo_root is not None else _DEFAULT_REPO_ROOT).absolute()
    report = Report(root, os.environ if environ is None else environ, parse_manifest)
    if not NAME.fullmatch(name):
        message = "site name must be letters, digits, '.', '_' or '-' (no path separators)"
        raise SiteError([Problem(f"sites/{name}", "-", message)])
    # TIROSH_SITES_DIR reads the site files from elsewhere (tests of edited copies); relative
    # paths inside them still resolve against the repository.
    sites_dir = Path(report.environ.get("TIROSH_SITES_DIR") or root / "sites")
    site_dir = sites_dir / name
    if not site_dir.is_dir():
        raise _unknown_site(name, sites_dir)
    profile = read_profile(report, site_dir / model.PROFILE)
    inventory = read_inventory(report, site_dir / model.INVENTORY)
    k3s = read_k3s_vars(report, site_dir / model.K3S_VARS)
    argocd = read_argocd_vars(report, site_dir / model.ARGOCD_VARS)
    apply_environment(report, profile)
    clusters = read_clusters(
        report,
        site_dir / model.CLUSTERS_FILE,
        profile.argocd.get("cluster_context"),
        profile.argocd.get("cluster_name"),
        profile.kube.get("argocd_context"),
    )
    repositories, templates = read_repositories(report, site_dir / model.REPOSITORIES_FILE)
    secrets = read_secrets(report, site_dir / model.SECRETS_FILE)
    declared = read_applications(
        report, site_dir / model.APPLICATIONS_FILE, repositories, templates, clusters
    )
    access = read_access(report, site_dir / model.ACCESS_FILE, argocd.values.get("ingress_host"))
    names = {alias: vm.proxmox_vm_name for alias, vm in inventory.vms.items()}
    proxmox_vms = read_declared(
        profile.data, site_dir, root, report.environ, report.problems, names
    )
    cross_check(report, profile, inventory, k3s, argocd)
    _check_login(report, profile)
    if report.problems:
        raise SiteError(report.problems)
    site = _build_site(name, site_dir, report, profile, inventory.vms, k3s, argocd)
    check_kubeconfig_files(report, site)
    if report.problems:
        raise SiteError(report.problems)
    return dataclasses.replace(
        site,
        warnings=tuple(report.warnings),
        clusters=clusters,
        repositories=repositories,
        templates=templates,
        secrets=secrets,
        projects=declared.projects,
        applications=declared.applications,
        gitops=declared.gitops,
        proxmox_vms=proxmox_vms,
        access=access,
    )


def _check_login(report: Report, profile: ProfileDraft) -> None:
    """The login words are the local phase's, but a word it does not know is a site problem."""
    sources = [(profile.file, "argocd.login_args", profile.argocd.get("login_args"))]
    sources.append(("environment", "ARGOCD_LOGIN_ARGS", report.environ.get("ARGOCD_LOGIN_ARGS")))
    for file, key, text in sources:
        if text is None:
            continue
        try:
            parse_login_args(text, f"{file}: {key}")
        except LoginArgsError as error:
            report.add(file, key, str(error).split(": ", 2)[-1])


def _unknown_site(name: str, sites: Path) -> SiteError:
    known = sorted(p.name for p in sites.iterdir() if p.is_dir()) if sites.is_dir() else []
    message = (
        f"site directory not found: {sites / name} (known sites: {', '.join(known) or 'none'})"
    )
    return SiteError([Problem(f"sites/{name}", "-", message)])


def _build_site(
    name: str,
    site_dir: Path,
    report: Report,
    profile: ProfileDraft,
    vms: dict[str, Vm],
    k3s: K3sDraft,
    argocd: ArgoDraft,
) -> Site:
    # Only called once validation found no problem, so every required value is present.
    target = vms[profile.argocd["target_name"]]
    home = report.resolve("~/.kube", report.repo_root)
    rke2_vm = next((vm for vm in vms.values() if "rke2" in vm.workloads), None)
    rke2_api = profile.rke2.get("api_server")
    if rke2_api is None and rke2_vm is not None:
        rke2_api = f"https://{url_host(rke2_vm.ansible_host)}:6443"
    k3s_api = profile.k3s.get("api_server") or f"https://{url_host(target.ansible_host)}:6443"
    return Site(
        name=name,
        root=site_dir,
        repo_root=report.repo_root,
        kubeconfig=profile.kube["kubeconfig"],
        argocd_context=profile.kube["argocd_context"],
        rke2_context=profile.kube["rke2_context"],
        vms=dict(vms),
        k3s=model.K3s(
            **k3s.values,
            config=k3s.config,
            api_server=k3s_api,
            kubeconfig_path=profile.k3s.get("kubeconfig_path") or home / f"{name}.yml",
        ),
        rke2=model.Rke2(
            api_server=rke2_api,
            kubeconfig_path=profile.rke2.get("kubeconfig_path") or home / f"{name}-rke2.yml",
        ),
        argocd=model.ArgoCD(**profile.argocd, **argocd.values),
        warnings=tuple(report.warnings),
    )


def load_or_report(
    name: str, repo_root: Path | None = None, environ: Mapping[str, str] | None = None
) -> Site | None:
    """For commands: the site, or None after printing its problems to stderr (warnings too)."""
    try:
        site = load_site(name, repo_root, environ)
    except SiteError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None
    for warning in site.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return site
