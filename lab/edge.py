"""The edge host: the site's network services around the cluster, like tirosh-home's OPNSense.

- Caddy terminates TLS with a lab CA for the site's Argo CD name (`argocd.server`) and proxies
  to the argocd host's port 80 (Traefik), and for the Git server's name to nginx.
- A Git server: nginx + fcgiwrap + git-http-backend (basic auth, the token is the password, as
  GitHub takes it; the public repository is readable anonymously) and sshd with a deploy key
  (user `git`, git-shell).
- A registry mirror (Debian's docker-registry) that serves the lab's own images.

Every secret (CA key, token, deploy key) is generated at lab-up into `.lab/` (mode 0600) and
copied into the host's fresh overlay; nothing is committed.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lab import config

# Services the shared rootfs installs disabled (versions.PER_HOST_SERVICES) that this host runs.
SERVICES = ("docker-registry.service", "caddy.service", "nginx.service", "fcgiwrap.socket")
GIT_SERVER_NAME = "git.lab.test"
ARGOCD_SERVER_NAME = "gitops.lab.test"  # sites/lab/profile.toml argocd.server
GIT_USER = "tirosh"  # the HTTPS user; its password is the token
GITOPS_SOURCE = Path(__file__).resolve().parent / "gitops"


@dataclass(frozen=True)
class Secrets:
    """Where the operator side finds the lab's generated credentials (all under .lab/)."""

    directory: Path = config.LOCAL_DIR / "edge"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def token(self) -> Path:
        return self.directory / "git-token"

    @property
    def deploy_key(self) -> Path:
        return self.directory / "deploy_key"

    @property
    def webhook_secret(self) -> Path:
        """What the Git server signs its push events to Argo CD with (webhook.github.secret)."""
        return self.directory / "webhook-secret"


SECRETS = Secrets()


def _enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    """What `systemctl enable` does for a unit with WantedBy=<target>, on a stopped tree."""
    target = "sockets.target" if unit.endswith(".socket") else target
    wants = root / "etc" / "systemd" / "system" / f"{target}.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / unit
    if not link.is_symlink():
        link.symlink_to(f"/lib/systemd/system/{unit}")


def _write(
    path: Path, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(path, mode)
    os.chown(path, *owner)


def _ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise KeyError(f"no user {user} in {root}/etc/passwd")


# --- secrets -------------------------------------------------------------------------------


def ensure_secrets(s: Secrets = SECRETS) -> None:
    """The lab CA, the Git token and the deploy key: generated once per checkout, mode 0600."""
    s.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not s.ca_key.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tirosh lab CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        _write(s.ca_key, _key_pem(key), 0o600, (os.getuid(), os.getgid()))
        _write(
            s.ca_cert,
            cert.public_bytes(serialization.Encoding.PEM),
            0o644,
            (os.getuid(), os.getgid()),
        )
    if not s.token.exists():
        _write(s.token, secrets.token_hex(20) + "\n", 0o600, (os.getuid(), os.getgid()))
    if not s.webhook_secret.exists():
        _write(s.webhook_secret, secrets.token_hex(20) + "\n", 0o600, (os.getuid(), os.getgid()))
    if not s.deploy_key.exists():
        subprocess.run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "tirosh-lab-deploy-key",
                "-f",
                str(s.deploy_key),
            ],
            check=True,
        )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _server_cert(s: Secrets, names: list[str], address: str) -> tuple[bytes, bytes]:
    ca_key = serialization.load_pem_private_key(s.ca_key.read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate(s.ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans.append(x509.IPAddress(ipaddress.ip_address(address)))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


# --- provisioning of the host's fresh root -------------------------------------------------


def _caddyfile(argocd_address: str) -> str:
    return f"""{{
	admin off
	auto_https disable_certs
}}

{ARGOCD_SERVER_NAME} {{
	tls /etc/caddy/tls/server.crt /etc/caddy/tls/server.key
	reverse_proxy {argocd_address}:80
}}

{GIT_SERVER_NAME} {{
	tls /etc/caddy/tls/server.crt /etc/caddy/tls/server.key
	reverse_proxy 127.0.0.1:8080
}}
"""


_NGINX_GIT = """server {
    listen 127.0.0.1:8080 default_server;
    server_name _;
    client_max_body_size 0;

    # Public repositories: anonymous read, no push.
    location ~ ^/public/.*/(info/refs|git-upload-pack)$ {
        if ($arg_service = git-receive-pack) { return 403; }
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
        fastcgi_param GIT_PROJECT_ROOT /srv/git;
        fastcgi_param GIT_HTTP_EXPORT_ALL "";
        fastcgi_param PATH_INFO $uri;
        fastcgi_pass unix:/run/fcgiwrap.socket;
    }
    # Private repositories: basic auth, the token is the password.
    location ~ ^/private/ {
        auth_basic "git";
        auth_basic_user_file /etc/nginx/git.htpasswd;
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME /usr/lib/git-core/git-http-backend;
        fastcgi_param GIT_PROJECT_ROOT /srv/git;
        fastcgi_param GIT_HTTP_EXPORT_ALL "";
        fastcgi_param PATH_INFO $uri;
        fastcgi_param REMOTE_USER $remote_user;
        fastcgi_pass unix:/run/fcgiwrap.socket;
    }
    location / { return 404; }
}
"""


# Debian's default config asks for htpasswd auth; the mirror is anonymous on the lab network.
_REGISTRY_CONFIG = """version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/docker-registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
"""


def _htpasswd(token: str) -> str:
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"],
        input=token,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{GIT_USER}:{hashed}\n"


def _gitops_repository(work: Path) -> Path:
    """A bare repository holding lab/gitops (plain manifests for rke2-gpu), one commit on main."""
    tree = work / "tree"
    shutil.copytree(GITOPS_SOURCE, tree)
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="tirosh lab",
        GIT_AUTHOR_EMAIL="lab@lab.test",
        GIT_COMMITTER_NAME="tirosh lab",
        GIT_COMMITTER_EMAIL="lab@lab.test",
        GIT_AUTHOR_DATE="2026-01-01T00:00:00Z",
        GIT_COMMITTER_DATE="2026-01-01T00:00:00Z",
    )
    for cmd in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["commit", "-q", "-m", "GitOps repository of the lab"],
    ):
        subprocess.run(["git", *cmd], cwd=tree, env=env, check=True)
    bare = work / "gitops.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(tree), str(bare)], check=True)
    return bare


def provision(root: Path, s: Secrets = SECRETS) -> None:
    """Write the edge host's services into its fresh overlay before it boots."""
    ensure_secrets(s)
    for unit in SERVICES:
        _enable(root, unit)
    argocd = config.host("argocd").address
    edge = config.host(config.EDGE_HOST).address
    caddy = _ids(root, "caddy")
    cert, key = _server_cert(s, [ARGOCD_SERVER_NAME, GIT_SERVER_NAME], edge)
    _write(root / "etc" / "docker" / "registry" / "config.yml", _REGISTRY_CONFIG)
    _write(root / "etc" / "caddy" / "Caddyfile", _caddyfile(argocd))
    _write(root / "etc" / "caddy" / "tls" / "server.crt", cert)
    _write(root / "etc" / "caddy" / "tls" / "server.key", key, 0o600, caddy)
    # nginx: only the Git site; www-data (fcgiwrap) reads the repositories.
    (root / "etc" / "nginx" / "sites-enabled" / "default").unlink(missing_ok=True)
    _write(root / "etc" / "nginx" / "sites-enabled" / "git", _NGINX_GIT)
    www = _ids(root, "www-data")
    _write(
        root / "etc" / "nginx" / "git.htpasswd",
        _htpasswd(s.token.read_text().strip()),
        0o640,
        (0, www[1]),
    )
    _git_user(root, s)
    with tempfile.TemporaryDirectory() as work:
        bare = _gitops_repository(Path(work))
        for visibility in ("public", "private"):
            target = root / "srv" / "git" / visibility / "gitops.git"
            shutil.copytree(bare, target)
    _webhook(root, s, argocd)
    git = _ids(root, "git")
    for path in [root / "srv" / "git", *(root / "srv" / "git").rglob("*")]:
        os.lchown(path, *git)
    # fcgiwrap runs git-http-backend as www-data: it may read the repositories (owned by git,
    # hence marked safe: upload-pack runs on "." inside the repository, so no path matches and
    # only "*" does), not write them.
    _write(root / "etc" / "gitconfig", "[safe]\n\tdirectory = *\n")
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(root / "srv" / "git")], check=True)


# A push to private/gitops.git tells Argo CD at once, as GitHub does: a `push` event with
# GitHub's payload, signed with HMAC-SHA256 of the shared secret (X-Hub-Signature-256; HMAC-SHA1
# in X-Hub-Signature, as GitHub also sends). Perl (Git's own dependency) reads the secret from
# its file, so it is in no command line.
WEBHOOK_HOOK = r"""#!/usr/bin/perl
# post-receive (lab/edge.py): Argo CD's webhook for each updated ref, as GitHub calls it.
use strict;
use warnings;
use JSON::PP;
use Digest::SHA qw(hmac_sha1_hex hmac_sha256_hex);

sub slurp { open(my $f, "<", $_[0]) or return ""; my $v = <$f>; close $f; chomp $v; $v }
my $secret = slurp("/etc/tirosh-webhook/secret");
my $url = slurp("/etc/tirosh-webhook/url");
exit 0 unless $secret && $url;
my $web = "https://git.lab.test/private/gitops";
while (my $line = <STDIN>) {
    chomp $line;
    my ($old, $new, $ref) = split / /, $line;
    my @files = $old =~ /^0+$/ ? () : split /\n/, `git diff --name-only $old $new`;
    my $payload = encode_json({
        ref => $ref, before => $old, after => $new,
        repository => {
            name => "gitops", full_name => "private/gitops", html_url => $web,
            clone_url => "$web.git", ssh_url => "git\@git.lab.test:private/gitops.git",
            default_branch => "main",
        },
        head_commit => {id => $new, modified => \@files, added => [], removed => []},
        commits => [{id => $new, modified => \@files, added => [], removed => []}],
    });
    my $signature = "sha256=" . hmac_sha256_hex($payload, $secret);
    my $sha1 = "sha1=" . hmac_sha1_hex($payload, $secret);
    open(my $curl, "|-", "curl", "-sS", "-m", "10", "-o", "/dev/null",
        "-w", "argocd webhook: %{http_code}\n", "-H", "Content-Type: application/json",
        "-H", "X-GitHub-Event: push", "-H", "X-Hub-Signature-256: $signature",
        "-H", "X-Hub-Signature: $sha1",
        "-H", "Host: gitops.lab.test", "--data-binary", "\@-", $url) or next;
    print $curl $payload;
    close $curl;
}
"""


def _webhook(root: Path, s: Secrets, argocd: str) -> None:
    """The post-receive hook of private/gitops.git, the secret (git's, 0600) and Argo CD's URL:
    Traefik on the argocd host, by the Ingress's name (the path Caddy proxies to)."""
    git = _ids(root, "git")
    conf = root / "etc" / "tirosh-webhook"
    _write(conf / "secret", s.webhook_secret.read_text(), 0o600, git)
    _write(conf / "url", f"http://{argocd}:80/api/webhook\n", 0o644)
    os.chown(conf, *git)
    hook = root / "srv" / "git" / "private" / "gitops.git" / "hooks" / "post-receive"
    _write(hook, WEBHOOK_HOOK, 0o755, git)


def _git_user(root: Path, s: Secrets) -> None:
    """User `git` (home /srv/git, git-shell) whose authorized key is the deploy key."""
    subprocess.run(
        [
            "chroot",
            str(root),
            "useradd",
            "--system",
            "--home-dir",
            "/srv/git",
            "--shell",
            "/usr/bin/git-shell",
            "git",
        ],
        check=True,
    )
    git = _ids(root, "git")
    public = s.deploy_key.with_suffix(".pub").read_text()
    ssh = root / "srv" / "git" / ".ssh"
    ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(ssh / "authorized_keys", f"restrict {public}", 0o600, git)
    os.chown(ssh, *git)
