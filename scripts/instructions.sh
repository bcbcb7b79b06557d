#!/usr/bin/env bash
# Instructions per request for every case of benches/instructions.rs, under callgrind.
# Needs valgrind (Debian: apt-get install valgrind). Usage: scripts/instructions.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
[ -n "${BIN:-}" ] || cargo bench --bench instructions --no-run 2>&1 | tail -1
BIN=${BIN:-$(ls -t target/release/deps/instructions-* | grep -v "\.d$" | head -1)}
count() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" "$1" "$2" >/dev/null 2>&1
  grep -E '^summary:' "$out" | awk '{print $2}'
  rm -f "$out"
}
per_request() { local zero full; zero=$(count "$1" 0); full=$(count "$1" "$N"); echo $(( (full - zero) / N )); }
base=$(per_request requests)
printf '%-24s %12s\n' case instructions/request
for c in bare tower_http_bearer keygate_hot keygate_miss keygate_bad_checksum keygate_unknown_key; do
  printf '%-24s %12d\n' "$c" $(( $(per_request "$c") - base ))
done
