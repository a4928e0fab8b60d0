#!/usr/bin/env bash
# Builds, outside the suite, the article's two-node dataplane wired the Calico way in named
# network namespaces (ip netns add), and writes a topology file for
# CALICO_TARGET=topology:<file>. Proves the suite attaches to namespaces it did not build.
#
#   ci/topology-demo.sh up <topology.json> [prefix] [dualstack]   build and write the file
#   ci/topology-demo.sh down [prefix]                             delete every namespace it made
#
# dualstack: also an IPv6 pool (fd00:10:244::/64, blockSize 122), each pod's IPv6 /128 wired
# as Calico's CNI plugin does (DAD off, default via the host end's link-local address, proxy_ndp
# on the host end, <ip>/128 dev <cali>), IPv6 blackholes and routes between the nodes.
#
# Nothing is created in the caller's own network namespace.
set -euo pipefail

cmd=${1:-}
prefix=${3:-ccdemo}
dual=${4:-}
case "$dual" in "" | dualstack) ;; *) echo "$0: the 4th argument is 'dualstack' or nothing, not '$dual'" >&2; exit 2 ;; esac
[ "$cmd" = down ] && prefix=${2:-ccdemo}

cali() { # cali + sha1("<namespace>.<pod>")[:11], as Calico's CNI plugin names host ends
  printf 'cali%s' "$(printf '%s' "default.$1" | sha1sum | cut -c1-11)"
}

down() {
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^${prefix}-" || true); do
    ip netns del "$ns"
  done
}

v6() { # v6 192.168.<n>.<k> -> fd00:10:244::<n>:<k> (hex), the lab's mapping
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  : "$a" "$b"
  printf 'fd00:10:244::%x:%x' "$c" "$d"
}

pod() { # pod <node-ns> <name> <ip>
  local node=$1 name=$2 ip=$3 ns="${prefix}-$2" host ip6 gw=fe80::ecee:eeff:feee:eeee
  host=$(cali "$name")
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$node" link add "$host" type veth peer name eth0 netns "$ns"
  # Dual stack: IPv6 on and DAD off on both ends before they are up (the CNI plugin's order).
  [ -z "$dual" ] || ip netns exec "$ns" sh -c "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6;
    echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6;
    echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad"
  [ -z "$dual" ] || ip netns exec "$node" sh -c "echo 0 > /proc/sys/net/ipv6/conf/$host/disable_ipv6;
    echo 1 > /proc/sys/net/ipv6/conf/$host/proxy_ndp;
    echo 1 > /proc/sys/net/ipv6/conf/$host/forwarding;
    echo 0 > /proc/sys/net/ipv6/conf/$host/accept_dad"
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
  [ -n "$dual" ] || return 0
  ip6=$(v6 "$ip")
  ip -n "$ns" -6 addr add "$ip6/128" dev eth0 nodad
  ip -n "$ns" -6 route add default via "$gw" dev eth0
  ip -n "$node" -6 route add "$ip6/128" dev "$host"
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
    # DAD off before ens192 is up, so its link-local address is usable at once.
    [ -z "$dual" ] || ip netns exec "$ns" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6;
      echo 0 > /proc/sys/net/ipv6/conf/ens192/accept_dad; echo 1 > /proc/sys/net/ipv6/conf/all/forwarding'
    ip -n "$ns" addr add "$addr/16" dev ens192
    ip -n "$ns" link set ens192 up
    ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
    ip -n "$ns" route add default via 10.12.0.1 dev ens192
    ip -n "$ns" route add blackhole "$block"
    ip -n "$ns" route add "$other" via "$via" dev ens192
    if [ -n "$dual" ]; then
      local a6 o6 b6 ob6
      a6=fd00:10:12::${addr##*.}
      o6=fd00:10:12::${via##*.}
      b6=$(v6 "${block%/*}")/122
      ob6=$(v6 "${other%/*}")/122
      ip -n "$ns" -6 addr add "$a6/64" dev ens192 nodad
      ip -n "$ns" -6 route add default via fd00:10:12::1 dev ens192
      ip -n "$ns" -6 route add blackhole "$b6"
      ip -n "$ns" -6 route add "$ob6" via "$o6" dev ens192
    fi
  done
  pod "$w1" c2c-network-demo 192.168.1.10
  pod "$w1" test-tools 192.168.1.12
  pod "$w2" test-tools-remote 192.168.2.12
  local pool6="" n1="" n2="" p1="" p2="" p3=""
  if [ -n "$dual" ]; then
    pool6=', {"cidr": "fd00:10:244::/64", "blockSize": 122, "encapsulation": "None"}'
    n1=', "ipv6Address": "fd00:10:12::2", "ipv6Blocks": ["fd00:10:244::1:0/122"]'
    n2=', "ipv6Address": "fd00:10:12::3", "ipv6Blocks": ["fd00:10:244::2:0/122"]'
    p1=", \"ipv6\": \"$(v6 192.168.1.10)\""
    p2=", \"ipv6\": \"$(v6 192.168.1.12)\""
    p3=", \"ipv6\": \"$(v6 192.168.2.12)\""
  fi
  cat >"$out" <<JSON
{
  "listsEveryWorkload": true,
  "pools": [{"cidr": "192.168.0.0/16", "blockSize": 26, "encapsulation": "None"}$pool6],
  "nodes": [
    {"name": "k8s-worker-1", "netns": "/run/netns/$w1", "address": "10.12.22.2", "underlay": "ens192", "blocks": ["192.168.1.0/26"]$n1},
    {"name": "k8s-worker-2", "netns": "/run/netns/$w2", "address": "10.12.22.3", "underlay": "ens192", "blocks": ["192.168.2.0/26"]$n2}
  ],
  "pods": [
    {"namespace": "default", "name": "c2c-network-demo", "node": "k8s-worker-1", "netns": "/run/netns/${prefix}-c2c-network-demo", "ip": "192.168.1.10"$p1},
    {"namespace": "default", "name": "test-tools", "node": "k8s-worker-1", "netns": "/run/netns/${prefix}-test-tools", "ip": "192.168.1.12"$p2},
    {"namespace": "default", "name": "test-tools-remote", "node": "k8s-worker-2", "netns": "/run/netns/${prefix}-test-tools-remote", "ip": "192.168.2.12"$p3}
  ]
}
JSON
  trap - ERR
}

case "$cmd" in
  up) [ -n "${2:-}" ] || { echo "usage: $0 up <topology.json> [prefix] [dualstack]" >&2; exit 2; }; up "$2" ;;
  down) down ;;
  *) echo "usage: $0 up <topology.json> [prefix] [dualstack] | down [prefix]" >&2; exit 2 ;;
esac
