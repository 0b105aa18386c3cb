#!/usr/bin/env bash
# The scale-out drill on this machine: the topology of k8s/ (Redis, 2
# signalling replicas, 3 SFU nodes) as real processes on loopback, 30 rooms
# of load, and the busiest SFU node drained with SIGTERM mid-run. Prints the
# rooms per node before and after, and every participant's interruption.
#
#   bash k8s/drill.sh [extra loadtest drill flags]     (needs redis-server)
# The JSON goes to $DRILL_REPORT (default drill.json). It fails when a
# participant waits more than 5 s to get media back.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release -q -p sfu -p signalling -p loadtest
exec "$CARGO_TARGET_DIR/release/loadtest" drill \
  --nodes 3 --replicas 2 --rooms 30 --participants 3 --audio-only \
  --duration 30s --drain-after 10s --max-interruption-ms 5000 \
  --report "${DRILL_REPORT:-drill.json}" "$@"
