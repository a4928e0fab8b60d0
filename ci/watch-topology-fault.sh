#!/usr/bin/env bash
# watch on namespaces the suite did not build (a topology file of ci/topology-demo.sh), with a
# fault made from outside the suite, as an upgrade re-programming routes would: once the watch
# probes, w2's route to w1's block is removed for 1.5 s and put back. The watch must fail
# (exit 1) with CONT-1 failing on the cross-node pair only, one ICMP gap and one TCP-request gap
# there, each as long as the outage (from `ip route del`'s return to `ip route add`'s start, at
# most from the one's start to the other's return) +- 2 intervals (200 ms); no gap on the
# same-node pair; and CONT-3 must hold (the route is back).
#
# usage: ci/watch-topology-fault.sh <topology.json> <prefix>   (the demo's, already up)
set -euo pipefail
[ "$#" -eq 2 ] || {
  echo "usage: $0 <topology.json> <prefix>" >&2
  exit 2
}
file=$1
w2="$2-w2"
block=192.168.1.0/26
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() {
  echo "watch-topology-fault: $*" >&2
  grep -v '^watch ' "$log" >&2 || true
  exit 1
}
now_ms() { date +%s%3N; }

CALICO_TARGET="topology:$file" cargo run -q -- watch --for 8s >"$log" 2>&1 &
pid=$!
# Probing once its first status line is out (CONT-3's first pass runs before).
for _ in $(seq 1 600); do
  grep -q '^watch ' "$log" && break
  kill -0 "$pid" 2>/dev/null || fail "the watch ended before it probed"
  sleep 0.2
done
grep -q '^watch ' "$log" || fail "the watch did not probe within 120 s"
sleep 1
t0=$(now_ms)
ip -n "$w2" route del "$block"
t1=$(now_ms)
sleep 1.5
t2=$(now_ms)
ip -n "$w2" route add "$block" via 10.12.22.2 dev ens192
t3=$(now_ms)
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 1 ] || fail "exit $rc, not 1 (CONT-1 failing across nodes)"
grep -q '^CONT-1 FAILED: test-tools-remote → c2c-network-demo (across nodes)' "$log" || fail "CONT-1 did not fail across nodes"
grep -q '^CONT-1 passed: test-tools → c2c-network-demo (same node)' "$log" || fail "CONT-1 failed on the same node"
grep -q '^CONT-3 passed' "$log" || fail "CONT-3 did not hold"
md=$(sed -n 's/^report: //p' "$log")
python3 - "$(dirname "$md")/watch.json" $((t2 - t1)) $((t3 - t0)) <<'PY' || fail "the gaps are not the outage"
import json, sys
w = json.load(open(sys.argv[1]))
least, most, tolerance = float(sys.argv[2]), float(sys.argv[3]), 200.0
for p in w["watch"]["pairs"]:
    across = p["pair"]["across_nodes"]
    for kind in ("icmp", "tcp_request"):
        gaps = [g["length_ms"] for g in p[kind]["gaps"]]
        if not across:
            assert gaps == [], f"same node, {kind}: {gaps}"
            continue
        assert len(gaps) == 1, f"across nodes, {kind}: {gaps}"
        assert least - tolerance <= gaps[0] <= most + tolerance, \
            f"across nodes, {kind}: {gaps[0]:.0f} ms, the outage {least:.0f}..{most:.0f} ms +- {tolerance:.0f}"
        print(f"{kind} across nodes: one gap of {gaps[0]:.0f} ms, the outage {least:.0f}..{most:.0f} ms")
    if not across:
        assert p["long_connection"]["gaps"] == [], p["long_connection"]["gaps"]
PY
echo "watch-topology-fault: measured on the cross-node pair only; CONT-3 held"
