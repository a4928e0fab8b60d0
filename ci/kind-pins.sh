#!/usr/bin/env bash
# The kind release, node image (by digest) and kubectl that ci/kind-up.sh and CI bring a Calico
# release up with. Without a pin, kind's default node image moves with each kind release and can
# be a Kubernetes newer than the Calico release was tested against.
#
# usage: ci/kind-pins.sh <calico-version>
#   prints kind=, node_image= and kubectl= lines (the format of $GITHUB_OUTPUT)
#
# Each pin is a kind release with the node image it shipped as its default (kind's
# pkg/apis/config/defaults/image.go at that tag: the one image kind supports with that release),
# of a Kubernetes minor the Calico release lists under "Supported versions" in its docs
# (tigera/docs calico_versioned_docs/version-3.NN/_includes/partials/_system-requirements.mdx).
# kubectl is the node's version (client and server of one version: no skew).
# A new Calico minor release needs a new line here.
set -euo pipefail

[ "$#" -eq 1 ] || {
  echo "usage: $0 <calico-version, e.g. v3.32.1>" >&2
  exit 2
}
case "$1" in
  # Calico v3.30 documents Kubernetes v1.31-v1.35; kind v0.30.0's default node image is v1.34.0.
  v3.30.*)
    kind=v0.30.0
    node_image=kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a
    kubectl=v1.34.0
    ;;
  # Calico v3.31 documents Kubernetes v1.32-v1.35; kind v0.31.0's default node image is v1.35.0.
  v3.31.*)
    kind=v0.31.0
    node_image=kindest/node:v1.35.0@sha256:452d707d4862f52530247495d180205e029056831160e22870e37e3f6c1ac31f
    kubectl=v1.35.0
    ;;
  # Calico v3.32 documents Kubernetes v1.34-v1.36; kind v0.32.0's default node image is v1.36.1.
  v3.32.*)
    kind=v0.32.0
    node_image=kindest/node:v1.36.1@sha256:3489c7674813ba5d8b1a9977baea8a6e553784dab7b84759d1014dbd78f7ebd5
    kubectl=v1.36.1
    ;;
  *)
    echo "kind-pins: no kind pin for Calico $1 (pinned: v3.30.x, v3.31.x, v3.32.x); add one to ci/kind-pins.sh" >&2
    exit 1
    ;;
esac
echo "kind=$kind"
echo "node_image=$node_image"
echo "kubectl=$kubectl"
