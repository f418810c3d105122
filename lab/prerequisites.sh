#!/usr/bin/env bash
# Install the machine packages the lab needs (Debian family, as root), or say in one line what to
# run. `make test`, `make demo`, `make lab-up` and .ci/run call it; it is a no-op when all is there.
#   lab/prerequisites.sh          install what is missing; exit 1 with the hint when it cannot
#   lab/prerequisites.sh --check  only report (exit 1 with the hint when something is missing)
set -euo pipefail

# command -> Debian package that ships it
declare -A PACKAGE=(
    [systemd-nspawn]=systemd-container
    [debootstrap]=debootstrap
    [ip]=iproute2
    [ssh]=openssh-client
    [ssh-keygen]=openssh-client
    [mount]=mount
    [tc]=iproute2
    [git]=git
    [redis-server]=redis-server
    [tar]=tar
    [openssl]=openssl
    # tests/local SSO: OpenLDAP for the Dex test, Node and npm for the OIDC provider's test
    [slapd]=slapd
    [slapadd]=slapd
    [node]=nodejs
    [npm]=npm
)

missing=()
for cmd in "${!PACKAGE[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${PACKAGE[$cmd]}")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
hint="lab prerequisites missing: run as root: apt-get update && apt-get install -y ${missing[*]}"

if [ "${1:-}" = "--check" ] || [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$hint" >&2
    exit 1
fi
echo "lab: installing Debian packages: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
