#!/usr/bin/env bash
# The main job on a fresh machine: set up what is missing, start berthd in the background if it is
# not running (default socket /run/berth/berth.sock, data root /var/lib/berth), make sure the default
# image exists (berthd builds busybox itself), and run a container from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SOCK=/run/berth/berth.sock
export BERTH_HOST=unix://$SOCK
if ! bin/berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup bin/berthd >>/var/log/berthd.log 2>&1 &
  for _ in $(seq 1 100); do
    bin/berth version >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
exec bin/berth run --rm busybox echo hello from berth
