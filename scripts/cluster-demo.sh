#!/usr/bin/env bash
# Multi-host demo (issue 15): a 3-member etcd cluster and three berthd "hosts" on this machine,
# each host in its own network namespace, joined by an underlay bridge on a private subnet. An
# overlay network spans the hosts; one container per host pings the others by name. Everything
# (containers, daemons, etcd, namespaces, links, files) is removed on exit, also after a failure.
#
#   bash scripts/cluster-demo.sh          (as root, after scripts/setup.sh)
#
# Nothing leaves the machine: etcd listens only inside the namespace the demo makes for it.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
for tool in etcd etcdctl docker ip nsenter; do
  command -v "$tool" >/dev/null || { echo "cluster-demo: $tool is missing (run scripts/setup.sh)" >&2; exit 1; }
done
[ -f dist/.built ] || bash scripts/setup.sh

TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
N=$(( $(od -An -N1 -tu1 /dev/urandom | tr -d ' ') % 250 + 1 ))
BR=bxo$TAG
NET=10.231.$N
ETCD_NS=bxo${TAG}e
BASE=$(mktemp -d /tmp/berth-cluster-demo.XXXXXX)
PIDS=()
NAMESPACES=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
dock() { local i=$1; shift; DOCKER_HOST=unix://$BASE/h$i/berth.sock DOCKER_CONFIG=$BASE/docker-config docker "$@"; }

cleanup() {
  set +e
  say "cleaning up"
  for i in 1 2 3; do
    [ -S "$BASE/h$i/berth.sock" ] && dock "$i" rm -f "web$i" >/dev/null 2>&1
  done
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  grep -o " $BASE/[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null; done
  ip link del "$BR" 2>/dev/null
  rm -rf "$BASE"
}
trap cleanup EXIT

attach_ns() { # NAME SUFFIX ADDRESS
  ip netns add "$1"; NAMESPACES+=("$1")
  ip link add "bxo${TAG}v$2" type veth peer name ul0 netns "$1"
  ip link set "bxo${TAG}v$2" master "$BR" up
  ip -n "$1" addr add "$3/24" dev ul0
  ip -n "$1" link set ul0 up
  ip -n "$1" link set lo up
}

say "underlay: bridge $BR, $NET.0/24; etcd in namespace $ETCD_NS at $NET.2"
ip link add "$BR" type bridge
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up
attach_ns "$ETCD_NS" e "$NET.2"

say "etcd: three members"
INITIAL="m0=http://$NET.2:2380,m1=http://$NET.2:2382,m2=http://$NET.2:2384"
for i in 0 1 2; do
  c=$((2379 + 2 * i)); p=$((2380 + 2 * i))
  nsenter --net=/run/netns/"$ETCD_NS" -- etcd --name "m$i" --data-dir "$BASE/etcd-m$i" \
    --listen-client-urls "http://$NET.2:$c" --advertise-client-urls "http://$NET.2:$c" \
    --listen-peer-urls "http://$NET.2:$p" --initial-advertise-peer-urls "http://$NET.2:$p" \
    --initial-cluster "$INITIAL" --initial-cluster-token "bxo$TAG" --log-level error 2>"$BASE/etcd-m$i.log" &
  PIDS+=($!)
done
ENDPOINTS="$NET.2:2379,$NET.2:2381,$NET.2:2383"
for _ in $(seq 150); do
  ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done
ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" member list

mkdir -p "$BASE/docker-config"
for i in 1 2 3; do
  say "host $i: namespace bxo${TAG}h$i, underlay address $NET.$((10 + i))"
  attach_ns "bxo${TAG}h$i" "h$i" "$NET.$((10 + i))"
  mkdir -p "$BASE/h$i"
  echo '{}' >"$BASE/h$i/daemon.json"
  nsenter --net=/run/netns/"bxo${TAG}h$i" -- "$REPO/bin/berthd" \
    --data-root "$BASE/h$i/data" --exec-root "$BASE/h$i/run" -H "unix://$BASE/h$i/berth.sock" \
    --config-file "$BASE/h$i/daemon.json" --bip "10.232.$N.$((16 * i + 1))/28" --no-dns-forward \
    --cluster-store "etcd://$ENDPOINTS" --cluster-advertise ul0 >"$BASE/h$i/log" 2>&1 &
  PIDS+=($!)
done
for i in 1 2 3; do
  for _ in $(seq 200); do dock "$i" version >/dev/null 2>&1 && break; sleep 0.1; done
  dock "$i" version --format "host $i: berthd {{.Server.Version}}"
done

say "the cluster as host 1 sees it (GET /info)"
for _ in $(seq 100); do
  n=$(curl -s --unix-socket "$BASE/h1/berth.sock" http://x/info | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("Cluster",{}).get("Hosts",[])))')
  [ "$n" = 3 ] && break; sleep 0.1
done
curl -s --unix-socket "$BASE/h1/berth.sock" http://x/info |
  python3 -c 'import json,sys; i=json.load(sys.stdin); print("ClusterStore:", i["ClusterStore"]); print("ClusterAdvertise:", i["ClusterAdvertise"]); [print("  host", h["Addr"], h["EngineID"]) for h in i["Cluster"]["Hosts"]]'

say "an overlay network made on host 1"
dock 1 network create -d overlay demo
for i in 2 3; do
  for _ in $(seq 100); do dock "$i" network inspect demo >/dev/null 2>&1 && break; sleep 0.1; done
done
dock 3 network ls --filter driver=overlay

say "one container per host"
for i in 1 2 3; do
  dock "$i" run -d --name "web$i" --network demo busybox sleep 3600 >/dev/null
  echo "web$i on host $i: $(dock "$i" inspect -f '{{(index .NetworkSettings.Networks "demo").IPAddress}}' "web$i")"
done

say "pings by name across hosts"
for i in 1 2 3; do
  for j in 1 2 3; do
    [ "$i" = "$j" ] && continue
    ok=
    for _ in $(seq 50); do
      if out=$(dock "$i" exec "web$i" ping -c 1 -W 1 "web$j" 2>&1); then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { echo "web$i cannot reach web$j: $out" >&2; exit 1; }
    echo "web$i -> web$j: $(echo "$out" | grep -o 'time=[0-9.]* ms')"
  done
done

say "keys in etcd"
ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" get --prefix --keys-only /berth/ | grep -v '^$'
say "done"
