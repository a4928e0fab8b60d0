#!/usr/bin/env bash
# Upgrades the Calico that ci/kind-up.sh installed on the kind cluster, in place, the way
# upstream's "Upgrade Calico on Kubernetes" documents it (tigera/docs
# calico/operations/upgrading/kubernetes-upgrade.mdx), and waits until every calico-node runs
# the new release.
#
# usage: ci/kind-upgrade.sh <new-calico-version> <mode>
#   new-calico-version  a Calico release tag, e.g. v3.32.1
#   mode                as ci/kind-up.sh was given: ipip (the calico.yaml manifest: the new
#                       calico.yaml applied server-side, a rolling update of calico-node), or
#                       operator, vxlan, dualstack (the new operator-crds.yaml and
#                       tigera-operator.yaml applied server-side; the operator then rolls
#                       calico-node itself)
# environment: KIND_CLUSTER_NAME (default calico), CALICO_WAIT_SECONDS (default 900: the
#   deadline of every wait, together)
set -euo pipefail

usage() {
  echo "usage: $0 <new calico-version, e.g. v3.32.1> <ipip|operator|vxlan|dualstack>" >&2
  exit 2
}
[ "$#" -eq 2 ] || usage
version="$1"
mode="$2"
case "$version" in v3.*) ;; *) usage ;; esac
case "$mode" in ipip | operator | vxlan | dualstack) ;; *) usage ;; esac
wait_seconds="${CALICO_WAIT_SECONDS:-900}"
case "$wait_seconds" in '' | *[!0-9]*)
  echo "kind-upgrade: CALICO_WAIT_SECONDS must be a whole number of seconds, not '${wait_seconds}'" >&2
  exit 2
  ;;
esac
manifests="https://raw.githubusercontent.com/projectcalico/calico/${version}/manifests"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { echo "kind-upgrade: $*" >&2; }
kubectl config use-context "kind-${KIND_CLUSTER_NAME:-calico}" >/dev/null

fetch() {
  curl -fsSL --retry 3 --max-time 120 -o "$2" "$1" || {
    log "could not download $1"
    exit 1
  }
}
deadline=$((SECONDS + wait_seconds))
left() {
  local s=$((deadline - SECONDS))
  [ "$s" -gt 0 ] || s=1
  echo "${s}s"
}
gave_up() {
  log "gave up on: $1 (deadline CALICO_WAIT_SECONDS=${wait_seconds}s)"
  exit 1
}
kc() { kubectl --request-timeout=60s "$@"; }
apply() {
  kc apply --server-side --force-conflicts -f "$1" >/dev/null || {
    log "could not apply $(basename "$1") (kubectl says why above)"
    exit 1
  }
}
# Waits until daemonset calico-node in namespace $1 asks for images of $version (the operator
# updates it some time after it restarts), then for its rollout.
node_upgraded() {
  local ns="$1" images
  until images=$(kc -n "$ns" get daemonset/calico-node \
    -o jsonpath='{.spec.template.spec.containers[*].image}' 2>/dev/null) &&
    [[ " $images " == *":${version} "* || " $images " == *":${version}@"* ]]; do
    [ "$SECONDS" -lt "$deadline" ] || gave_up "calico-node in ${ns} to ask for ${version} (it asks for: ${images:-nothing})"
    sleep 5
  done
  kubectl -n "$ns" rollout status daemonset/calico-node --timeout="$(left)" ||
    gave_up "calico-node in ${ns} to roll out ${version}"
}

case "$mode" in
  ipip)
    fetch "$manifests/calico.yaml" "$work/calico.yaml"
    log "applying calico.yaml of ${version}"
    apply "$work/calico.yaml"
    node_upgraded kube-system
    kubectl -n kube-system rollout status deployment/calico-kube-controllers --timeout="$(left)" ||
      gave_up "calico-kube-controllers to roll out"
    ;;
  operator | vxlan | dualstack)
    fetch "$manifests/operator-crds.yaml" "$work/operator-crds.yaml"
    fetch "$manifests/tigera-operator.yaml" "$work/tigera-operator.yaml"
    log "applying operator-crds.yaml and tigera-operator.yaml of ${version}"
    apply "$work/operator-crds.yaml"
    apply "$work/tigera-operator.yaml"
    kubectl -n tigera-operator rollout status deployment/tigera-operator --timeout="$(left)" ||
      gave_up "tigera-operator to roll out"
    node_upgraded calico-system
    kubectl wait --for=condition=Available tigerastatus/calico --timeout="$(left)" ||
      gave_up "tigerastatus calico to be Available"
    ;;
esac
log "calico-node runs ${version} on every node"
