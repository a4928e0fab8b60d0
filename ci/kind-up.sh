#!/usr/bin/env bash
# Creates the kind cluster of ci/kind-config.yaml (context kind-calico) and installs Calico.
#
# usage: ci/kind-up.sh <calico-version> <mode>
#   calico-version  a Calico release tag of a minor release ci/kind-pins.sh pins, e.g. v3.32.1
#   mode            ipip      the calico.yaml manifest, pool with CALICO_IPV4POOL_IPIP=Always (as in the article)
#                   operator  tigera-operator + the Installation and APIServer of upstream's
#                             manifests/custom-resources.yaml: pool VXLANCrossSubnet, and the Calico
#                             API server, which serves projectcalico.org/v3
#                   vxlan     tigera-operator + an Installation whose pool is VXLAN (Always); no API
#                             server, so Calico's objects are read as crd.projectcalico.org/v1
# environment: KIND_CLUSTER_NAME (default calico), CALICO_WAIT_SECONDS (default 600),
#   KIND_NODE_IMAGE (a node image of your choosing instead of the pinned one; the kind version is
#   then not checked)
set -euo pipefail

usage() {
  echo "usage: $0 <calico-version, e.g. v3.32.1> <ipip|operator|vxlan>" >&2
  exit 2
}
[ "$#" -eq 2 ] || usage
version="$1"
mode="$2"
case "$version" in v3.*) ;; *) usage ;; esac
case "$mode" in ipip | operator | vxlan) ;; *) usage ;; esac

here="$(cd "$(dirname "$0")" && pwd)"
cluster="${KIND_CLUSTER_NAME:-calico}"
wait_seconds="${CALICO_WAIT_SECONDS:-600}"
manifests="https://raw.githubusercontent.com/projectcalico/calico/${version}/manifests"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { echo "kind-up: $*" >&2; }

for tool in kind kubectl curl; do
  command -v "$tool" >/dev/null || {
    log "$tool is not on PATH"
    exit 1
  }
done

# The kind release and node image this Calico release is brought up with (see ci/kind-pins.sh).
pins=$("$here/kind-pins.sh" "$version")
kind_pinned=$(sed -n 's/^kind=//p' <<<"$pins")
node_image=$(sed -n 's/^node_image=//p' <<<"$pins")
kind_found=$(kind version | awk '{print $2}')
if [ -n "${KIND_NODE_IMAGE:-}" ]; then
  node_image="$KIND_NODE_IMAGE"
  log "node image ${node_image} (KIND_NODE_IMAGE) on kind ${kind_found}; the pin for Calico ${version} is kind ${kind_pinned}"
elif [ "$kind_found" != "$kind_pinned" ]; then
  log "Calico ${version} is pinned to kind ${kind_pinned} (node image ${node_image}), this is kind ${kind_found}: install kind ${kind_pinned}, or set KIND_NODE_IMAGE"
  exit 1
fi

# Runs "$@" until it succeeds or the deadline passes.
retry_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "gave up waiting for: $*"
      return 1
    fi
    sleep 5
  done
}

fetch() {
  curl -fsSL --retry 3 -o "$2" "$1"
}

log "creating kind cluster ${cluster} (${node_image})"
kind create cluster --name "$cluster" --config "$here/kind-config.yaml" --image "$node_image" --wait 0s
kubectl config use-context "kind-${cluster}"

# The operator install of upstream's quickstart (tigera/docs getting-started/kubernetes/kind.mdx
# and quickstart.mdx): operator-crds.yaml, tigera-operator.yaml (which holds no CRDs since
# v3.30), then the objects of custom-resources.yaml. Those are an Installation whose pool is
# VXLANCrossSubnet - the quickstart's choice; the Installation CRD documents IPIP as the default
# encapsulation - and an APIServer, without which projectcalico.org/v3 is never served; its
# Goldmane and Whisker (flow logs and their UI, not on the packet path) are left out. Upstream's
# own kind CI (hack/test/kind/deploy_resources.sh of v3.32, node/tests/k8st/
# deploy_resources_on_kind_cluster.sh of v3.30/v3.31) waits for tigerastatus calico and
# apiserver to be Available; so does this.
install_operator() {
  local encapsulation="$1" apiserver="$2"
  fetch "$manifests/operator-crds.yaml" "$work/operator-crds.yaml"
  fetch "$manifests/tigera-operator.yaml" "$work/tigera-operator.yaml"
  kubectl create -f "$work/operator-crds.yaml"
  kubectl create -f "$work/tigera-operator.yaml"
  retry_until 120 kubectl get crd installations.operator.tigera.io >/dev/null
  cat >"$work/installation.yaml" <<YAML
apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
spec:
  calicoNetwork:
    ipPools:
      - name: default-ipv4-ippool
        cidr: 192.168.0.0/16
        blockSize: 26
        encapsulation: ${encapsulation}
        natOutgoing: Enabled
        nodeSelector: all()
YAML
  if [ "$apiserver" = with-apiserver ]; then
    cat >>"$work/installation.yaml" <<YAML
---
apiVersion: operator.tigera.io/v1
kind: APIServer
metadata:
  name: default
spec: {}
YAML
  fi
  kubectl create -f "$work/installation.yaml"
  retry_until "$wait_seconds" kubectl get tigerastatus calico >/dev/null
  kubectl wait --for=condition=Available tigerastatus/calico --timeout="${wait_seconds}s"
  if [ "$apiserver" = with-apiserver ]; then
    retry_until "$wait_seconds" kubectl get tigerastatus apiserver >/dev/null
    kubectl wait --for=condition=Available tigerastatus/apiserver --timeout="${wait_seconds}s"
    kubectl wait --for=condition=Available apiservice/v3.projectcalico.org --timeout="${wait_seconds}s"
  fi
  kubectl -n calico-system rollout status daemonset/calico-node --timeout="${wait_seconds}s"
}

case "$mode" in
  ipip)
    fetch "$manifests/calico.yaml" "$work/calico.yaml"
    # The manifest's pool is IPIP Always by default; make sure this version still says so.
    if ! grep -A1 'name: CALICO_IPV4POOL_IPIP' "$work/calico.yaml" | grep -q '"Always"'; then
      log "calico.yaml of ${version} does not set CALICO_IPV4POOL_IPIP to Always"
      exit 1
    fi
    kubectl apply -f "$work/calico.yaml"
    kubectl -n kube-system rollout status daemonset/calico-node --timeout="${wait_seconds}s"
    ;;
  operator)
    # The pool and the API server of upstream's custom-resources.yaml; make sure this version
    # still has both.
    fetch "$manifests/custom-resources.yaml" "$work/custom-resources.yaml"
    if ! grep -q 'encapsulation: VXLANCrossSubnet' "$work/custom-resources.yaml" ||
      ! grep -q '^kind: APIServer' "$work/custom-resources.yaml"; then
      log "custom-resources.yaml of ${version} no longer has a VXLANCrossSubnet pool and an APIServer"
      exit 1
    fi
    install_operator VXLANCrossSubnet with-apiserver
    ;;
  vxlan) install_operator VXLAN without-apiserver ;;
esac

kubectl wait --for=condition=Ready nodes --all --timeout="${wait_seconds}s"
# Calico's API: projectcalico.org/v3 (its API server, or the native v3 CRDs of newer
# releases), else the crd.projectcalico.org/v1 storage of the manifest install - the same
# order the suite reads them in.
calico_group() {
  local group
  for group in projectcalico.org crd.projectcalico.org; do
    if kubectl get "clusterinformations.${group}" default >/dev/null 2>&1; then
      echo "$group"
      return 0
    fi
  done
  return 1
}
retry_until "$wait_seconds" calico_group >/dev/null
group=$(calico_group)
if [ "$mode" = operator ] && [ "$group" != projectcalico.org ]; then
  log "the Calico API server is up but projectcalico.org/v3 does not serve ClusterInformation default"
  exit 1
fi
log "Calico ${version} (${mode}) is ready on context kind-${cluster} (API group ${group})"
kubectl get "clusterinformations.${group}" default -o jsonpath='{.spec.calicoVersion}{"\n"}'
kubectl get "ippools.${group}" -o wide
