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
#                   dualstack kind's ipFamily dual (ci/kind-config-dualstack.yaml) and tigera-operator
#                             with an IPv4 pool (IPIP, as in the article) and an IPv6 pool
#                             fd00:10:244::/64 (blockSize 122, unencapsulated: Calico has no
#                             IPIP for IPv6), as Calico's dual-stack docs describe; no API server
# environment: KIND_CLUSTER_NAME (default calico),
#   CALICO_WAIT_SECONDS (default 900: the deadline of every wait after the nodes are created, together),
#   KIND_NODE_IMAGE (a node image of your choosing instead of the pinned one; the kind version is
#   then not checked)
# A cluster of that name must not exist yet: after a failed bring-up, ci/kind-down.sh deletes it.
set -euo pipefail

usage() {
  echo "usage: $0 <calico-version, e.g. v3.32.1> <ipip|operator|vxlan|dualstack>" >&2
  exit 2
}
[ "$#" -eq 2 ] || usage
version="$1"
mode="$2"
case "$version" in v3.*) ;; *) usage ;; esac
case "$mode" in ipip | operator | vxlan | dualstack) ;; *) usage ;; esac

here="$(cd "$(dirname "$0")" && pwd)"
cluster="${KIND_CLUSTER_NAME:-calico}"
wait_seconds="${CALICO_WAIT_SECONDS:-900}"
case "$wait_seconds" in '' | *[!0-9]*)
  echo "kind-up: CALICO_WAIT_SECONDS must be a whole number of seconds, not '${wait_seconds}'" >&2
  exit 2
  ;;
esac
manifests="https://raw.githubusercontent.com/projectcalico/calico/${version}/manifests"
work="$(mktemp -d)"
created=no

log() { echo "kind-up: $*" >&2; }

on_exit() {
  local rc=$?
  rm -rf "$work"
  if [ "$rc" -ne 0 ] && [ "$created" = yes ]; then
    log "bring-up failed; cluster ${cluster} is left for a look (ci/kind-diag.sh collects its state); ci/kind-down.sh deletes it before a re-run"
  fi
}
trap on_exit EXIT

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

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "a kind cluster named ${cluster} already exists (an earlier bring-up?): ci/kind-down.sh deletes it, then run this again"
  exit 1
fi

# kind's known issues ("too many open files"): three nodes need more inotify instances and
# watches than stock distributions give (Ubuntu: 128 and 8192); pods then fail to start.
inotify_check() {
  local kv key want have
  for kv in max_user_instances=512 max_user_watches=524288; do
    key="${kv%%=*}"
    want="${kv#*=}"
    have=$(cat "/proc/sys/fs/inotify/${key}" 2>/dev/null) || return 0
    if [ "$have" -lt "$want" ]; then
      log "warning: fs.inotify.${key} is ${have}; kind needs ${want} for three nodes (sudo sysctl fs.inotify.${key}=${want})"
    fi
  done
}
inotify_check

fetch() {
  curl -fsSL --retry 3 --max-time 120 -o "$2" "$1" || {
    log "could not download $1"
    exit 1
  }
}

# Every wait below shares one deadline, CALICO_WAIT_SECONDS after the nodes are created.
deadline=0
left() {
  local s=$((deadline - SECONDS))
  [ "$s" -gt 0 ] || s=1
  echo "${s}s"
}
gave_up() {
  log "gave up on: $1 (deadline CALICO_WAIT_SECONDS=${wait_seconds}s; ci/kind-diag.sh collects the cluster's state)"
  exit 1
}
# kubectl for one-shot requests, which must not hang.
kc() { kubectl --request-timeout=60s "$@"; }
# Polls the one-shot check "${@:2}" until it succeeds; gives up on $1 at the deadline.
wait_for() {
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || gave_up "$what"
    sleep 5
  done
}
# Runs the kubectl wait or rollout status "${@:2}" with the time left; gives up on $1 if it fails.
wait_kubectl() {
  local what="$1"
  shift
  kubectl "$@" --timeout="$(left)" || gave_up "$what"
}
rolled_out() {
  wait_for "$2 in namespace $1 to exist" kc -n "$1" get "$2"
  wait_kubectl "$2 in namespace $1 to roll out" -n "$1" rollout status "$2"
}
available() {
  wait_for "$1 to exist" kc get "$1"
  wait_kubectl "$1 to be Available" wait --for=condition=Available "$1"
}
# Creates the objects of manifest $1, then waits for its CRDs to be Established, so that objects
# of theirs can be created next.
create_manifest() {
  local crds=() name
  kc create -f "$1" -o name >"$work/created" || {
    log "could not create the objects of $(basename "$1") (kubectl says why above)"
    exit 1
  }
  while IFS= read -r name; do
    crds+=("$name")
  done < <(grep '^customresourcedefinition' "$work/created" || true)
  if [ "${#crds[@]}" -gt 0 ]; then
    wait_kubectl "the CRDs of $(basename "$1") to be Established" wait --for=condition=Established "${crds[@]}"
  fi
}

# Download what the mode installs, and check it, before there is a cluster to leave behind.
case "$mode" in
  ipip)
    fetch "$manifests/calico.yaml" "$work/calico.yaml"
    # The manifest's pool is IPIP Always by default; make sure this version still says so.
    if ! grep -A1 'name: CALICO_IPV4POOL_IPIP' "$work/calico.yaml" | grep -q '"Always"'; then
      log "calico.yaml of ${version} does not set CALICO_IPV4POOL_IPIP to Always"
      exit 1
    fi
    ;;
  operator | vxlan | dualstack)
    fetch "$manifests/operator-crds.yaml" "$work/operator-crds.yaml"
    fetch "$manifests/tigera-operator.yaml" "$work/tigera-operator.yaml"
    ;;
esac
if [ "$mode" = operator ]; then
  # The pool and the API server of upstream's custom-resources.yaml; make sure this version
  # still has both.
  fetch "$manifests/custom-resources.yaml" "$work/custom-resources.yaml"
  if ! grep -q 'encapsulation: VXLANCrossSubnet' "$work/custom-resources.yaml" ||
    ! grep -q '^kind: APIServer' "$work/custom-resources.yaml"; then
    log "custom-resources.yaml of ${version} no longer has a VXLANCrossSubnet pool and an APIServer"
    exit 1
  fi
fi

# kind create is bounded by kind's and kubeadm's own timeouts, not by CALICO_WAIT_SECONDS.
log "creating kind cluster ${cluster} (${node_image})"
config="$here/kind-config.yaml"
[ "$mode" != dualstack ] || config="$here/kind-config-dualstack.yaml"
kind create cluster --name "$cluster" --config "$config" --image "$node_image" --wait 0s
created=yes
deadline=$((SECONDS + wait_seconds))
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
  create_manifest "$work/operator-crds.yaml"
  create_manifest "$work/tigera-operator.yaml"
  rolled_out tigera-operator deployment/tigera-operator
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
  if [ "$mode" = dualstack ]; then
    # The IPv6 pool beside it, and the nodes' IPv6 addresses found as the IPv4 ones are.
    cat >>"$work/installation.yaml" <<YAML
      - name: default-ipv6-ippool
        cidr: fd00:10:244::/64
        blockSize: 122
        encapsulation: None
        natOutgoing: Enabled
        nodeSelector: all()
    nodeAddressAutodetectionV6:
      firstFound: true
YAML
  fi
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
  create_manifest "$work/installation.yaml"
  available tigerastatus/calico
  if [ "$apiserver" = with-apiserver ]; then
    available tigerastatus/apiserver
    available apiservice/v3.projectcalico.org
  fi
  rolled_out calico-system daemonset/calico-node
  rolled_out calico-system deployment/calico-kube-controllers
}

case "$mode" in
  ipip)
    # create, not apply: upstream's docs (kind.mdx) warn that apply may exceed request limits
    # with this CRD bundle; the cluster is new, so nothing exists yet.
    create_manifest "$work/calico.yaml"
    rolled_out kube-system daemonset/calico-node
    rolled_out kube-system deployment/calico-kube-controllers
    ;;
  operator) install_operator VXLANCrossSubnet with-apiserver ;;
  vxlan) install_operator VXLAN without-apiserver ;;
  dualstack) install_operator IPIP without-apiserver ;;
esac

wait_kubectl "every node to be Ready" wait --for=condition=Ready nodes --all
# CoreDNS: the first pods on Calico's network (upstream's kind CI waits for them too).
rolled_out kube-system deployment/coredns
# Calico's API: projectcalico.org/v3 (its API server, or the native v3 CRDs of newer
# releases), else the crd.projectcalico.org/v1 storage of the manifest install - the same
# order the suite reads them in.
calico_group() {
  local group
  for group in projectcalico.org crd.projectcalico.org; do
    if kc get "clusterinformations.${group}" default >/dev/null 2>&1; then
      echo "$group"
      return 0
    fi
  done
  return 1
}
if [ "$mode" = operator ]; then
  # The point of this mode: the suite must find projectcalico.org/v3 served.
  wait_for "projectcalico.org/v3 to serve ClusterInformation default" kc get clusterinformations.projectcalico.org default
  group=projectcalico.org
else
  wait_for "ClusterInformation default to be readable" calico_group
  group=$(calico_group)
fi
log "Calico ${version} (${mode}) is ready on context kind-${cluster} (API group ${group})"
kc get "clusterinformations.${group}" default -o jsonpath='{.spec.calicoVersion}{"\n"}'
kc get "ippools.${group}" -o wide
