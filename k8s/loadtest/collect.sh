#!/usr/bin/env bash
# Waits for the veil-loadtest Job, saves each shard's report (the last line
# of its pod's log) and merges them with `loadtest merge`.
#
#   k8s/loadtest/collect.sh [out-dir]      (needs kubectl and a loadtest binary)
set -euo pipefail
out=${1:-loadtest-reports}
ns=veil
loadtest=${LOADTEST:-loadtest}
mkdir -p "$out"
kubectl -n "$ns" wait --for=condition=complete --timeout=20m job/veil-loadtest \
  || echo "the Job did not complete; merging what there is" >&2
for pod in $(kubectl -n "$ns" get pods -l app.kubernetes.io/name=veil-loadtest -o name); do
  index=$(kubectl -n "$ns" get "$pod" -o jsonpath='{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}')
  kubectl -n "$ns" logs "$pod" > "$out/shard-$index.log"
done
"$loadtest" merge "$out"/shard-*.log --report "$out/merged.json"
echo "merged report: $out/merged.json"
