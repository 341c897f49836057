#!/usr/bin/env bash
# `make test`: the suite in two shards at once, each with its own broker, warehouse, ports and state
# folder. The `slow` tests (crash, outage, failover, churn, cluster, dashboards) spend most of their
# time waiting for processes, timeouts and outages, so they run beside the rest instead of after it.
# Arguments go to both pytest runs. Fails if either shard fails, or if no shard ran a test (exit 5).
# BILLING_TEST_SHARDS=1 runs everything in one pytest process instead.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=(.venv/bin/python -m pytest)

if [[ "${BILLING_TEST_SHARDS:-2}" == "1" ]]; then
    exec "${PYTEST[@]}" "$@"
fi

LOG=.state/test-logs/slow.log
mkdir -p "$(dirname "$LOG")"
echo "make test: the slow tests run beside the others (their output follows at the end; live in $LOG)"
env BILLING_STATE_DIR="$PWD/.state/test-slow" \
    BILLING_KAFKA_BOOTSTRAP=127.0.0.1:28092 BILLING_KAFKA_CONTROLLER_PORT=28093 \
    BILLING_CLICKHOUSE_URL=http://127.0.0.1:28123 BILLING_SUPERSET_PORT=28088 \
    BILLING_WORKER_WEB_PORT=28066 BILLING_API_PORT=28000 \
    BILLING_TEST_CLUSTER_BOOTSTRAP=127.0.0.1:28292 BILLING_TEST_CLUSTER_CONTROLLER_PORT=28293 \
    "${PYTEST[@]}" -m slow -p no:cacheprovider "$@" > "$LOG" 2>&1 &
slow_pid=$!
trap 'kill "$slow_pid" 2>/dev/null' INT TERM

"${PYTEST[@]}" -m "not slow" "$@"
rest=$?
wait "$slow_pid"
slow=$?

echo
echo "==================== the slow tests (shard 2 of 2) ===================="
cat "$LOG"
echo "make test: other tests exit $rest, slow tests exit $slow (5 = none selected)"
if (( rest == 5 && slow == 5 )); then
    echo "make test: no test was selected" >&2
    exit 5
fi
for code in "$rest" "$slow"; do
    if (( code != 0 && code != 5 )); then
        exit "$code"
    fi
done
