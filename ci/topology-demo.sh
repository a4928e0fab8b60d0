#!/usr/bin/env bash
# Builds, outside the suite, the article's two-node dataplane wired the Calico way in named
# network namespaces (ip netns add), and writes a topology file for
# CALICO_TARGET=topology:<file>. Proves the suite attaches to namespaces it did not build.
#
#   ci/topology-demo.sh up <topology.json> [prefix]   build and write the file
#   ci/topology-demo.sh down [prefix]                 delete every namespace it made
#
# Nothing is created in the caller's own network namespace.
set -euo pipefail

cmd=${1:-}
prefix=${3:-ccdemo}
[ "$cmd" = down ] && prefix=${2:-ccdemo}

cali() { # cali + sha1("<namespace>.<pod>")[:11], as Calico's CNI plugin names host ends
  printf 'cali%s' "$(printf '%s' "default.$1" | sha1sum | cut -c1-11)"
}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true); do
    ip netns del "$ns"
  done
}

pod() { # pod <node-ns> <name> <ip>
  local node=$1 name=$2 ip=$3 ns="${prefix}-$2" host
  host=$(cali "$name")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$node" link add "$host" type veth peer name eth0 netns "$ns"
  ip -n "$node" link set "$host" address ee:ee:ee:ee:ee:ee up
  ip netns exec "$node" sh -c "echo 1 > /proc/sys/net/ipv4/conf/$host/proxy_arp;
    echo 0 > /proc/sys/net/ipv4/neigh/$host/proxy_delay;
    echo 1 > /proc/sys/net/ipv4/conf/$host/forwarding;
    echo 1 > /proc/sys/net/ipv4/conf/$host/route_localnet"
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add 169.254.1.1 dev eth0 scope link
  ip -n "$ns" route add default via 169.254.1.1 dev eth0
  ip -n "$node" route add "$ip/32" dev "$host" scope link
}

up() {
  local out=$1 w1="${prefix}-w1" w2="${prefix}-w2"
  trap 'down' ERR
  ip netns add "$w1"
  ip netns add "$w2"
  ip -n "$w1" link add ens192 type veth peer name ens192 netns "$w2"
  for n in "$w1:10.12.22.2:192.168.1.0/26:192.168.2.0/26:10.12.22.3" "$w2:10.12.22.3:192.168.2.0/26:192.168.1.0/26:10.12.22.2"; do
    IFS=: read -r ns addr block other via <<<"$n"
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$addr/16" dev ens192
    ip -n "$ns" link set ens192 up
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    ip -n "$ns" route add default via 10.12.0.1 dev ens192
    ip -n "$ns" route add blackhole "$block"
    ip -n "$ns" route add "$other" via "$via" dev ens192
  done
  pod "$w1" c2c-network-demo 192.168.1.10
  pod "$w1" test-tools 192.168.1.12
  pod "$w2" test-tools-remote 192.168.2.12
  cat >"$out" <<JSON
{
  "listsEveryWorkload": true,
  "pools": [{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": "None"}],
  "nodes": [
    {"name": "k8s-worker-1", "netns": "/run/netns/$w1", "address": "10.12.22.2", "underlay": "ens192", "blocks": ["192.168.1.0/26"]},
    {"name": "k8s-worker-2", "netns": "/run/netns/$w2", "address": "10.12.22.3", "underlay": "ens192", "blocks": ["192.168.2.0/26"]}
  ],
  "pods": [
    {"namespace": "default", "name": "c2c-network-demo", "node": "k8s-worker-1", "netns": "/run/netns/${prefix}-c2c-network-demo", "ip": "192.168.1.10"},
    {"namespace": "default", "name": "test-tools", "node": "k8s-worker-1", "netns": "/run/netns/${prefix}-test-tools", "ip": "192.168.1.12"},
    {"namespace": "default", "name": "test-tools-remote", "node": "k8s-worker-2", "netns": "/run/netns/${prefix}-test-tools-remote", "ip": "192.168.2.12"}
  ]
}
JSON
  trap - ERR
}

case "$cmd" in
  up) [ -n "${2:-}" ] || { echo "usage: $0 up <topology.json> [prefix]" >&2; exit 2; }; up "$2" ;;
  down) down ;;
  *) echo "usage: $0 up <topology.json> [prefix] | down [prefix]" >&2; exit 2 ;;
esac
