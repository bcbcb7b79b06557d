#!/usr/bin/env bash
# Load test over real loopback: the demo server's authenticated GET /v1/whoami against
# its unauthenticated GET /health, with wrk (Debian package `wrk`).
#
#   scripts/loadtest.sh                  # 10 s per route, 2 threads, 32 connections
#   DURATION=30s CONNECTIONS=64 scripts/loadtest.sh
#
# Prints each route's requests/s and latency percentiles (50/75/90/99), then the ratio.
# The server only ever listens on 127.0.0.1 and is stopped on exit.
set -euo pipefail

DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
PORT="${PORT:-$((20000 + RANDOM % 20000))}"
ADDR="127.0.0.1:${PORT}"

cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "wrk is not installed: apt-get install -y wrk" >&2
    exit 1
fi

echo "building the demo server (release)..." >&2
cargo build --release --quiet --example server

log="$(mktemp)"
server_pid=""
cleanup() {
    if [[ -n "${server_pid}" ]]; then
        kill "${server_pid}" 2>/dev/null || true
        wait "${server_pid}" 2>/dev/null || true
    fi
    rm -f "${log}" "${config:-}"
}
trap cleanup EXIT

# The default quota (1000/s, burst 2000) is exhausted by a load generator at once, and
# management never makes a key with a larger quota than its creator's. So the server runs
# with a deployment quota that cannot trip: the limiter still runs on every request but
# never refuses one.
config="$(mktemp --suffix .toml)"
sed 's/^default_quota = .*/default_quota = { per_second = 1000000000, burst = 2000000000 }/' \
    examples/keygate.toml >"${config}"

# Info-level audit logs go to stderr; keep them out of the measurement.
RUST_LOG=warn ./target/release/examples/server --addr "${ADDR}" --config "${config}" >"${log}" 2>/dev/null &
server_pid=$!

key=""
for _ in $(seq 1 100); do
    key="$(sed -n 's/^admin key: //p' "${log}")"
    [[ -n "${key}" ]] && break
    if ! kill -0 "${server_pid}" 2>/dev/null; then
        echo "the demo server exited early" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "${key}" ]]; then
    echo "the demo server printed no 'admin key:' line" >&2
    exit 1
fi

# A read-only key under the deployment quota.
created="$(curl -fsS -X POST -H "Authorization: Bearer ${key}" -H 'content-type: application/json' \
    -d '{"name":"load test key","scopes":["read-only"]}' \
    "http://${ADDR}/v1/api-keys")"
key="$(sed -n 's/.*"key":"\([^"]*\)".*/\1/p' <<<"${created}")"
if [[ -z "${key}" ]]; then
    echo "could not create the load test key" >&2
    exit 1
fi

# Sanity: the key works, and the routes answer as expected.
curl -fsS -o /dev/null -H "Authorization: Bearer ${key}" "http://${ADDR}/v1/whoami"
curl -fsS -o /dev/null "http://${ADDR}/health"

run() {
    local name="$1"
    shift
    local out
    out="$(wrk --latency -t "${THREADS}" -c "${CONNECTIONS}" -d "${DURATION}" "$@")"
    local rps p50 p75 p90 p99 non2xx
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"${out}")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"${out}")"
    p75="$(awk '$1 == "75%" {print $2}' <<<"${out}")"
    p90="$(awk '$1 == "90%" {print $2}' <<<"${out}")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"${out}")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"${out}")"
    printf '%-28s requests_per_s=%-10s p50=%-8s p75=%-8s p90=%-8s p99=%-8s non_2xx=%s\n' \
        "${name}" "${rps}" "${p50}" "${p75}" "${p90}" "${p99}" "${non2xx:-0}"
    echo "${rps}"
}

echo "wrk: ${THREADS} threads, ${CONNECTIONS} connections, ${DURATION} per route, on ${ADDR}; $(nproc) CPUs shared by wrk and the server"
health="$(run "GET /health (no auth)" "http://${ADDR}/health")"
echo "${health}" | head -n 1
whoami="$(run "GET /v1/whoami (keygate)" -H "Authorization: Bearer ${key}" "http://${ADDR}/v1/whoami")"
echo "${whoami}" | head -n 1
health_rps="$(echo "${health}" | tail -n 1)"
whoami_rps="$(echo "${whoami}" | tail -n 1)"
awk -v a="${whoami_rps}" -v b="${health_rps}" \
    'BEGIN { printf "whoami/health throughput ratio=%.2f\n", (b > 0 ? a / b : 0) }'
