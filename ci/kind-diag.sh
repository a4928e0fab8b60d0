#!/usr/bin/env bash
# Collects what a person needs to see why a kind bring-up or a kube run failed, into one folder:
#   kind-logs/          kind export logs: every node's journal, kubelet and containerd logs and
#                       the logs of every container
#   tigerastatus.yaml   the operator's verdict per component (operator installs)
#   operator.yaml       the Installation and APIServer objects; tigera-operator.log its log
#   apiservices.txt     whether v3.projectcalico.org is Available
#   nodes.txt, pods.txt, events.txt   the whole cluster
#   ns-<namespace>.txt  pods (wide and described) and events of calico-system, kube-system,
#                       tigera-operator, calico-apiserver and the suite's namespaces
#
# usage: ci/kind-diag.sh [out-dir]   (default target/kind-diagnostics)
# environment: KIND_CLUSTER_NAME (default calico)
# Best effort: a command that fails leaves its error in its file, and the next one runs.
set -uo pipefail

[ "$#" -le 1 ] || {
  echo "usage: $0 [out-dir, default target/kind-diagnostics]" >&2
  exit 2
}
out="${1:-target/kind-diagnostics}"
cluster="${KIND_CLUSTER_NAME:-calico}"
mkdir -p "$out" || exit 1

# kubectl with a deadline per request; a dead API server must not hang the job.
kc() { kubectl --context "kind-${cluster}" --request-timeout=30s "$@"; }
# Runs "${@:2}" with its output and errors into file $1.
to() {
  local file="$out/$1"
  shift
  "$@" >"$file" 2>&1 || echo "(exit $?: $*)" >>"$file"
}

if command -v timeout >/dev/null; then
  to kind-export.txt timeout 300 kind export logs "$out/kind-logs" --name "$cluster"
else
  to kind-export.txt kind export logs "$out/kind-logs" --name "$cluster"
fi
to nodes.txt kc get nodes -o wide
to tigerastatus.yaml kc get tigerastatus -o yaml
to operator.yaml kc get installations.operator.tigera.io,apiservers.operator.tigera.io -o yaml
to tigera-operator.log kc -n tigera-operator logs deployment/tigera-operator --tail=2000
to apiservices.txt kc get apiservices
to pods.txt kc get pods -A -o wide
to events.txt kc get events -A --sort-by=.lastTimestamp

namespaces=(calico-system kube-system tigera-operator calico-apiserver)
while IFS= read -r ns; do
  namespaces+=("${ns#namespace/}")
done < <(kc get namespaces -l app.kubernetes.io/managed-by=calico-conformance -o name 2>/dev/null)
for ns in "${namespaces[@]}"; do
  {
    echo "## pods"
    kc -n "$ns" get pods -o wide
    echo "## events"
    kc -n "$ns" get events --sort-by=.lastTimestamp
    echo "## pods, described"
    kc -n "$ns" describe pods
  } >"$out/ns-${ns}.txt" 2>&1
done
echo "kind-diag: cluster ${cluster}'s state is in ${out}/" >&2
