#!/usr/bin/env bash
# Instructions and atomic read-modify-write instructions per request for every case of
# benches/instructions.rs, under callgrind. Needs valgrind (Debian: apt-get install
# valgrind). Usage: scripts/instructions.sh [N] [CASE...]
#
# `Ir` is instructions executed; `Ge` is callgrind's "global bus events"
# (--collect-bus=yes), the lock-prefixed (atomic read-modify-write) instructions on x86.
# With DUMP=dir, each full run's callgrind file is kept there (with --dump-instr=yes),
# for `callgrind_annotate` or kcachegrind.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
shift || true
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(bare bare_json tower_http_bearer floor keygate_hot keygate_hot_uncounted keygate_hot_json
  keygate_miss keygate_bad_checksum keygate_unknown_key keygate_hot_log_off
  keygate_hot_log_1pct keygate_hot_log_sampled)
[ -n "${BIN:-}" ] || cargo bench --bench instructions --no-run 2>&1 | tail -1
BIN=${BIN:-$(ls -t target/release/deps/instructions-* | grep -v "\.d$" | head -1)}
# Prints "Ir Ge" for CASE and N requests.
count() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --collect-bus=yes --dump-instr=yes \
    --callgrind-out-file="$out" "$BIN" "$1" "$2" >/dev/null 2>&1
  grep -E '^summary:' "$out" | awk '{print $2, $3}'
  if [ -n "${DUMP:-}" ] && [ "$2" != 0 ]; then mkdir -p "$DUMP"; cp "$out" "$DUMP/$1.callgrind"; fi
  rm -f "$out"
}
# Prints "Ir Ge" per request for CASE (the 0-request run subtracted).
per_request() {
  local zero full
  zero=($(count "$1" 0)); full=($(count "$1" "$N"))
  echo $(( (full[0] - zero[0]) / N )) $(( (full[1] - zero[1]) / N ))
}
base=($(per_request requests))
printf '%-24s %22s %12s\n' case instructions/request atomics/request
for c in "${CASES[@]}"; do
  r=($(per_request "$c"))
  printf '%-24s %22d %12d\n' "$c" $(( r[0] - base[0] )) $(( r[1] - base[1] ))
done
