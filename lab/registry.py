"""Push the lab's images to the lab's registry mirror (Debian's docker-registry on the edge host).

The argocd host's containerd pulls quay.io, ghcr.io, public.ecr.aws and docker.io images through
this mirror (registries.yaml), so the official manifest's `imagePullPolicy: Always` is satisfied
from the lab's own images. This is the Distribution API's push flow: HEAD a blob, else POST an
upload and PUT it with its digest; then PUT the manifest under its tag.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from lab import images

PORT = 5000


def _request(
    host: str,
    method: str,
    path: str,
    body: bytes | Path | None = None,
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, PORT, timeout=120)
    headers = dict(headers or {})
    if isinstance(body, Path):
        headers["Content-Length"] = str(body.stat().st_size)
        with body.open("rb") as f:
            conn.request(method, path, body=f, headers=headers)
            response = conn.getresponse()
    else:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wait(host: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if _request(host, "GET", "/v2/").status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the lab registry on {host}:{PORT} does not answer")
        time.sleep(0.5)


def _push_blob(host: str, repository: str, blob: images.Blob, path: Path) -> None:
    if _request(host, "HEAD", f"/v2/{repository}/blobs/{blob.digest}").status == 200:
        return
    started = _request(host, "POST", f"/v2/{repository}/blobs/uploads/")
    if started.status != 202:
        raise RuntimeError(f"registry: upload to {repository} refused: HTTP {started.status}")
    location = urlsplit(started.headers["Location"])
    query = f"{location.query}&" if location.query else ""
    done = _request(
        host,
        "PUT",
        f"{location.path}?{query}digest={blob.digest}",
        path,
        {"Content-Type": "application/octet-stream"},
    )
    if done.status != 201:
        raise RuntimeError(f"registry: blob {blob.digest} of {repository}: HTTP {done.status}")


def push(host: str, layout: Path) -> None:
    """Push every image of the layout (blobs it already has are skipped)."""
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        name = entry["annotations"]["io.containerd.image.name"]
        manifest_path = layout / "blobs" / "sha256" / entry["digest"].removeprefix("sha256:")
        manifest = json.loads(manifest_path.read_bytes())
        image = images.Image(name, images.Blob(entry["digest"], entry["size"], entry["mediaType"]))
        for descriptor in [manifest["config"], *manifest["layers"]]:
            blob = images.Blob(descriptor["digest"], descriptor["size"], descriptor["mediaType"])
            _push_blob(host, image.repository, blob, layout / "blobs" / "sha256" / blob.digest[7:])
        put = _request(
            host,
            "PUT",
            f"/v2/{image.repository}/manifests/{image.tag}",
            manifest_path.read_bytes(),
            {"Content-Type": entry["mediaType"]},
        )
        if put.status != 201:
            raise RuntimeError(f"registry: manifest of {name}: HTTP {put.status}")


def mirrors(host: str) -> str:
    """registries.yaml for a k3s node: every registry the lab's images name, mirrored by ours."""
    registries = ("docker.io", "quay.io", "ghcr.io", "public.ecr.aws", "registry.k8s.io")
    lines = ["mirrors:"]
    for registry in registries:
        lines += [f"  {registry}:", "    endpoint:", f'      - "http://{host}:{PORT}"']
    return "\n".join(lines) + "\n"
