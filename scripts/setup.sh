#!/usr/bin/env bash
# Installs everything Berth needs on a fresh Debian 12 machine, then builds it. Idempotent:
# each step is skipped when already done. Needs root (apt-get, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the OCI runtimes and monitor, busybox for the default image, tini for --init,
# containers-common (skopeo's policy; the seccomp rules are our own), networking tools, python3 (the
# seccomp compiler and the mount helper), bzip2 and xz for compressed build contexts, the interop
# peers the tests use, the real clients (Compose, docker-py) the client tests drive, and etcd (the
# cluster store of overlay networks).
PACKAGES=(crun runc conmon busybox-static tini golang-github-containers-common iproute2 nftables iptables
  util-linux tar gzip pigz socat curl skopeo docker-registry openssl tmux procps python3 python3-seccomp
  bzip2 xz-utils docker-compose python3-docker etcd-server etcd-client)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# docker-registry's package starts a service on :5000 where an init system exists; we never rely on it.
# Node dependencies, exactly as locked.
# npm ci refuses this lock file: node-unix-socket lists per-platform optional packages that the
# registry does not have (404), which `npm install` leaves out of the lock and `npm ci` then calls
# "missing". `npm install` still installs exactly the locked versions.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2 2>/dev/null || npm install --no-audit --no-fund >&2
fi

# Build when any source is newer than the build.
if [ ! -f dist/.built ] || [ -n "$(find src tsconfig.json -newer dist/.built -print -quit)" ]; then
  npx tsc -p tsconfig.json
  touch dist/.built
fi
