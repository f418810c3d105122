"""local.kube.client's reading of kubeconfigs (no API server needed: a client configuration is
built, not used): a FIFO is refused at once, and a KUBECONFIG list is read as kubectl reads it.
Talking to a real API server with the key in memory: tests/lab/test_kubeclient.py."""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import pytest
import yaml

from local.kube import client as kubeclient
from local.kube.port_forward import kubectl_environment, port_forward_command

KEY = base64.b64encode(b"FAKE-KEY").decode()
CERT = base64.b64encode(b"FAKE-CERT").decode()


def kubeconfig(
    clusters: dict[str, str] | None = None,
    users: list[str] | None = None,
    contexts: dict[str, tuple[str, str]] | None = None,
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": n, "cluster": {"server": s}} for n, s in (clusters or {}).items()
            ],
            "users": [
                {"name": n, "user": {"client-certificate-data": CERT, "client-key-data": KEY}}
                for n in users or []
            ],
            "contexts": [
                {"name": n, "context": {"cluster": c, "user": u}}
                for n, (c, u) in (contexts or {}).items()
            ],
        }
    )


def test_a_fifo_is_refused_at_once_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "config"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def read() -> None:
        try:
            kubeclient.read_kubeconfig(fifo)
        except BaseException as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "reading a FIFO blocked"
    assert isinstance(result[0], kubeclient.KubeconfigError)
    assert "FIFO" in str(result[0])


def test_a_missing_file_is_no_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(kubeclient.KubeconfigError, match="no such file"):
        kubeclient.configuration(tmp_path / "absent", "lab/k3s")


def test_kubeconfig_files_follow_a_kubeconfig_list(tmp_path: Path) -> None:
    first, site = tmp_path / "config", tmp_path / "lab.yml"
    listed = os.pathsep.join([str(first), str(site), "", str(first)])
    assert kubeclient.kubeconfig_files(first, {"KUBECONFIG": listed}) == (first, site)
    assert kubeclient.kubeconfig_files(first, {}) == (first,)


def test_a_context_found_in_a_later_file_of_the_list(tmp_path: Path) -> None:
    # The merge target has other clusters only; the site's own file, second in the list, has
    # the context: kubectl finds it, and so does the client.
    first, site = tmp_path / "config", tmp_path / "lab.yml"
    first.write_text(
        kubeconfig({"other": "https://other:6443"}, ["other"], {"other": ("other", "other")})
    )
    site.write_text(
        kubeconfig(
            {"lab/k3s": "https://k3s:6443"}, ["lab/k3s"], {"lab/k3s": ("lab/k3s", "lab/k3s")}
        )
    )
    with pytest.raises(kubeclient.KubeconfigError, match="no context named 'lab/k3s'"):
        kubeclient.configuration(first, "lab/k3s")
    config = kubeclient.configuration([first, tmp_path / "missing.yml", site], "lab/k3s")
    assert config.host == "https://k3s:6443"


def test_the_first_file_to_name_an_entry_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yml", tmp_path / "b.yml"
    first.write_text(kubeconfig({"c": "https://first:6443"}, ["u"], {"x": ("c", "u")}))
    second.write_text(kubeconfig({"c": "https://second:6443"}, ["u"], {"x": ("c", "u")}))
    assert kubeclient.configuration([first, second], "x").host == "https://first:6443"
    assert kubeclient.configuration([second, first], "x").host == "https://second:6443"


def test_port_forward_takes_a_kubeconfig_list_through_the_environment(tmp_path: Path) -> None:
    files = (tmp_path / "config", tmp_path / "lab.yml")
    command = port_forward_command("kubectl", files, "lab/k3s", "argocd", 8080, "argocd-server-0")
    assert "--kubeconfig" not in command  # it takes one file; the list goes in KUBECONFIG
    assert kubectl_environment(files)["KUBECONFIG"] == os.pathsep.join(map(str, files))
    single = port_forward_command(
        "kubectl", files[:1], "lab/k3s", "argocd", 8080, "argocd-server-0"
    )
    assert single[1:3] == ["--kubeconfig", str(files[0])]
