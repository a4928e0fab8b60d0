#!/usr/bin/env bash
# Deletes the kind cluster ci/kind-up.sh created.
# usage: ci/kind-down.sh   (environment: KIND_CLUSTER_NAME, default calico)
set -euo pipefail
kind delete cluster --name "${KIND_CLUSTER_NAME:-calico}"
