"""Install the k3s binary on the management VM, pinned by version and verified by sha256."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from pyinfra import host
from pyinfra.api import FileUploadCommand, OperationError, QuoteString, StringCommand, operation
from pyinfra.api.command import PyinfraCommand
from pyinfra.facts.files import Sha256File
from pyinfra.facts.server import Arch
from pyinfra.operations import files

from facts.k3s import K3sVersion
from tirosh import k3s


@operation()
def binary(
    version: str,
    source: str = "release",
    release_url: str = k3s.DEFAULT_RELEASE_URL,
    airgap_dir: str | Path | None = None,
    sha256: str | None = None,
    path: str = k3s.BINARY_PATH,
):
    """
    Install the k3s binary at a pinned version, verified against the release's checksum file.

    + version: the k3s release, such as ``v1.34.3+k3s1``
    + source: ``release`` (the VM downloads from ``release_url``) or ``airgap`` (upload from
      ``airgap_dir`` on the operator machine, which holds the binary and ``sha256sum-<arch>.txt``)
    + release_url: base URL of k3s releases, for mirrors
    + airgap_dir: directory with the binary and its checksum file, for ``source="airgap"``
    + sha256: the binary's pinned digest; when given it alone decides, and the release's
      checksum file (which comes from the same place as the binary) is not fetched
    + path: where the binary goes on the VM

    The binary is replaced by a rename, after its sha256 matched; nothing half-written is ever
    at ``path``. With ``airgap`` the installed file is compared by sha256, so a rebuilt binary of
    the same version is noticed; with ``release`` the version it reports is compared.

    **Example:**

    .. code:: python

        k3s.binary(
            name="Install k3s",
            version="v1.34.3+k3s1",
            source="airgap",
            airgap_dir="/srv/k3s/v1.34.3+k3s1",
        )
    """
    machine = str(host.get_fact(Arch))  # str(): fixture facts come wrapped
    try:
        assets = k3s.assets_for(machine)
    except ValueError as error:
        raise OperationError(str(error)) from None
    staged = f"{path}.tirosh-new"
    expected: str | None = sha256  # None: the downloaded checksum file's line decides

    if source == "airgap":
        if airgap_dir is None:
            raise OperationError("k3s.binary: source airgap needs airgap_dir")
        try:
            local_binary, digest = k3s.verified_airgap_binary(Path(airgap_dir), machine)
        except ValueError as error:
            raise OperationError(str(error)) from None
        if sha256 is not None and digest != sha256:
            raise OperationError(f"{local_binary}: sha256 {digest} is not the pinned {sha256}")
        if host.get_fact(Sha256File, path=path) == digest:
            host.noop(f"k3s binary at {path} already matches sha256 {digest[:12]}")
            return
        expected = digest
        yield FileUploadCommand(str(local_binary), staged)
    elif source == "release":
        installed = host.get_fact(K3sVersion, path=path)
        if installed == version:
            host.noop(f"k3s {version} is already installed")
            return
        yield from _download(release_url, version, assets, staged, sha256)
    else:
        raise OperationError(f"k3s.binary: unknown source {source!r}")

    yield _verify_and_install(staged, path, expected, assets)


def _download(
    base: str, version: str, assets: k3s.ReleaseAssets, staged: str, sha256: str | None
) -> Iterator[PyinfraCommand | str]:
    """The binary, and its checksum file unless pinned, each fetched anew next to ``staged``.

    Temporary files live in the binary's directory, so each rename into place is atomic; the
    binary is checked against its digest before it replaces the installed one.
    """
    directory = str(PurePosixPath(staged).parent)
    fetch = [(assets.binary, staged, sha256)]
    if sha256 is None:  # no pin: the release's checksum file decides
        fetch.append((assets.checksums, f"{staged}.{assets.checksums}", None))
    for asset, dest, digest in fetch:
        yield from files.download._inner(
            src=k3s.release_url(base, version, asset),
            dest=dest,
            sha256sum=digest,
            force=True,
            temp_dir=directory,
            extra_curl_args={"--retry": "3"},
        )


def _verify_and_install(
    staged: str, path: str, digest: str | None, assets: k3s.ReleaseAssets
) -> StringCommand:
    checksum_file = f"{staged}.{assets.checksums}"
    if digest is None:
        # A release download: the expected digest is the checksum file's line for the asset.
        expected = StringCommand(
            '"$(awk -v asset=',
            QuoteString(assets.binary),
            """ '$2 == asset || $2 == "*" asset {print $1; exit}' """,
            QuoteString(checksum_file),
            ')"',
            _separator="",
        )
    else:
        expected = StringCommand(QuoteString(digest))
    return StringCommand(
        StringCommand("expected=", expected, _separator=""),
        "&&",
        StringCommand(
            'actual="$(sha256sum ', QuoteString(staged), ' | cut -d" " -f1)"', _separator=""
        ),
        "&&",
        'if [ -z "$expected" ] || [ "$expected" != "$actual" ]; then',
        "echo",
        QuoteString(f"sha256 mismatch for {staged}: refusing to install"),
        ">&2;",
        "rm -f",
        QuoteString(staged),
        QuoteString(checksum_file),
        "; exit 1; fi &&",
        "chmod 0755",
        QuoteString(staged),
        "&&",
        "mv -f",
        QuoteString(staged),
        QuoteString(path),
        "&&",
        "rm -f",
        QuoteString(checksum_file),
    )


@operation()
def restarted(reasons: list[str], timeout: int = 300):
    """
    Restart k3s (after ``systemctl daemon-reload``) when there is a reason to, within a timeout.

    + reasons: why k3s must restart (changed files); empty means nothing to do
    + timeout: seconds to wait for k3s to report ready (the unit is ``Type=notify``)

    ``systemctl restart`` also starts a stopped or still-activating k3s, where pyinfra's
    ``systemd.service(restarted=True)`` would wait on ``start`` forever.

    **Example:**

    .. code:: python

        k3s.restarted(name="Restart k3s", reasons=["/etc/rancher/k3s/config.yaml"])
    """
    if not reasons:
        host.noop("k3s runs what is installed")
        return
    message = QuoteString(f"k3s did not become ready within {timeout} s: see journalctl -u k3s")
    yield StringCommand(
        "systemctl daemon-reload",
        "&&",
        "{",
        "timeout",
        QuoteString(str(timeout)),
        "systemctl",
        "restart",
        "k3s",
        "||",
        "{",
        "echo",
        message,
        ">&2;",
        "exit 1;",
        "}",
        ";",
        "}",
    )
