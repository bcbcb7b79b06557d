#!/usr/bin/env bash
# Instructions and atomic read-modify-write instructions per request for every case of
# benches/instructions.rs, under callgrind. Needs valgrind (Debian: apt-get install
# valgrind) and objdump (binutils). Usage: scripts/instructions.sh [N] [CASE...]
#
# `Ir` is instructions executed; `Ge` is callgrind's "global bus events"
# (--collect-bus=yes), the lock-prefixed (atomic read-modify-write) instructions on x86.
# With DUMP=dir, each full run's callgrind file is kept there (with --dump-instr=yes),
# for `callgrind_annotate` or kcachegrind.
#
# SHA-256 both ways. valgrind hides SHA-NI, so under callgrind SHA-256 runs in software
# (about ten times its native instruction count), which makes every stack that hashes
# look closer to the others than it is natively. The script therefore also counts:
# - the software block function per digest (`sha2::sha256::compress256`, counted alone
#   with --toggle-collect over N digests of the bench key: one 64-byte block each);
# - the native block function: the instructions of `sha2::sha256::x86::digest_blocks`
#   (SHA-NI) in this binary's disassembly, each of which runs once for a one-block key
#   (its loop runs once); the dispatch in `compress256` (a feature check and a call,
#   a few instructions) is left out;
# - the native time of one digest of the key (an `Instant` loop, best of five rounds).
# The "native SHA" column is `instructions - software block + native block` for the cases
# that hash the key once per request (the others are unchanged).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
shift || true
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(bare bare_json tower_http_bearer floor keygate_hot keygate_hot_uncounted keygate_hot_credits keygate_hot_quota
  keygate_hot_quota_headers keygate_hot_json keygate_miss keygate_bad_checksum keygate_unknown_key keygate_hot_log_off
  keygate_hot_log_1pct keygate_hot_log_sampled)
# The cases that compute one SHA-256 of the key per request.
HASHING=" floor keygate_hot keygate_hot_uncounted keygate_hot_credits keygate_hot_quota keygate_hot_quota_headers keygate_hot_json keygate_miss keygate_unknown_key keygate_hot_log_off keygate_hot_log_1pct keygate_hot_log_sampled "
[ -n "${BIN:-}" ] || cargo bench --bench instructions --no-run 2>&1 | tail -1
BIN=${BIN:-$(ls -t target/release/deps/instructions-* | grep -v "\.d$" | head -1)}
# Prints "Ir Ge" for CASE and N requests; extra valgrind options after them.
count() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --collect-bus=yes --dump-instr=yes \
    --callgrind-out-file="$out" "${@:3}" "$BIN" "$1" "$2" >/dev/null 2>&1
  grep -E '^summary:' "$out" | awk '{print $2, $3}'
  if [ -n "${DUMP:-}" ] && [ "$2" != 0 ] && [ $# -eq 2 ]; then
    mkdir -p "$DUMP"; cp "$out" "$DUMP/$1.callgrind"
  fi
  rm -f "$out"
}
# Prints "Ir Ge" per request for CASE (the 0-request run subtracted).
per_request() {
  local zero full
  zero=($(count "$1" 0 "${@:2}")); full=($(count "$1" "$N" "${@:2}"))
  echo $(( (full[0] - zero[0]) / N )) $(( (full[1] - zero[1]) / N ))
}
base=($(per_request requests))
sha_soft=($(per_request sha256 --toggle-collect='sha2::sha256::compress256'))
sha_all=($(per_request sha256))
sha_ni=$(objdump -d --no-show-raw-insn -C --disassemble='sha2::sha256::x86::digest_blocks' "$BIN" \
  | grep -cE '^\s+[0-9a-f]+:')
sha_ns=$("$BIN" sha256-native 200000)
printf 'SHA-256 of the key: %d instructions under valgrind (software block function %d);\n' \
  "${sha_all[0]}" "${sha_soft[0]}"
printf '  natively the SHA-NI block function is %d instructions, and a digest takes %s ns.\n' \
  "$sha_ni" "$sha_ns"
printf '%-24s %22s %22s %12s\n' case instructions/request "with native SHA-256" atomics/request
declare -A IR NATIVE
for c in "${CASES[@]}"; do
  r=($(per_request "$c"))
  ir=$(( r[0] - base[0] ))
  native=$ir
  [[ "$HASHING" == *" $c "* ]] && native=$(( ir - sha_soft[0] + sha_ni ))
  IR[$c]=$ir; NATIVE[$c]=$native
  printf '%-24s %22d %22d %12d\n' "$c" "$ir" "$native" $(( r[1] - base[1] ))
done
for c in "${CASES[@]}"; do
  case "$c" in floor|bare|bare_json|tower_http_bearer) continue ;; esac
  if [ -n "${IR[floor]:-}" ]; then
    awk -v c="$c" -v a="${IR[$c]}" -v b="${IR[floor]}" -v na="${NATIVE[$c]}" -v nb="${NATIVE[floor]}" \
      'BEGIN { printf "%s / floor: %.3fx as executed under valgrind, %.3fx with native SHA-256\n", c, a / b, na / nb }'
  fi
done
