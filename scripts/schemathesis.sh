#!/usr/bin/env bash
# Fuzzes the management API against its own OpenAPI document with schemathesis.
#
# Starts the demo server (in memory) on a free loopback port, then runs schemathesis
# against http://ADDR/openapi.json with the server's printed admin key and every check
# (`--checks all`, less the ones turned off below, each with its reason), in every phase:
# the document's examples, the coverage of its constraints (boundaries, each one broken
# on its own), fuzzing with valid and invalid data, and stateful sequences through the
# document's links (a created key's id into get, update, roll and revoke). A fixed seed
# and a bounded number of examples per operation. Prints schemathesis's version, the
# number of requests sent, how many failed a check, and the time; exits non-zero on any
# failure.
#
# Environment: SCHEMATHESIS_MAX_EXAMPLES (default 100 per operation), SCHEMATHESIS_SEED
# (default 20240611), SCHEMATHESIS_VENV (where schemathesis is installed; default under
# ~/.cache), SCHEMATHESIS_CASSETTE (keep the network log there).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
seed="${SCHEMATHESIS_SEED:-20240611}"
venv="${SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/keygate-schemathesis-$version}"
st="$venv/bin/schemathesis"

# schemathesis and everything it imports, pinned, so that a release of a dependency
# cannot change what the run generates or checks.
pins="schemathesis==$version
anyio==4.16.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3 click==8.5.1
graphql-core==3.3.2 harfile==0.6.0 hypothesis==6.170.17 hypothesis-graphql==0.13.5
idna==3.20 iniconfig==2.3.1 jsonschema_rs==0.60.3 markdown-it-py==4.3.0 MarkupSafe==3.0.4
mdurl==0.1.2 packaging==26.4 pluggy==1.7.0 Pygments==2.21.0 pyrate-limiter==4.5.1
pytest==9.2.0 PyYAML==6.0.4 requests==2.34.2 rich==15.0.0 sortedcontainers==2.4.0
typing_extensions==4.16.0 urllib3==2.8.0 Werkzeug==3.1.9"

# Install them into their own virtual environment unless it already holds exactly these.
if [[ ! -x "$st" ]] || [[ "$(cat "$venv/keygate-pins" 2>/dev/null)" != "$pins" ]]; then
    echo "installing schemathesis $version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086 # one requirement per word
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps $pins
    printf '%s' "$pins" >"$venv/keygate-pins"
fi
"$st" --version

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cargo build --quiet --all-features --example server
RUST_LOG=warn target/debug/examples/server --addr 127.0.0.1:0 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!

# Wait (at most 60 s) for the address and the admin key.
addr=""
key=""
for _ in $(seq 600); do
    addr="$(sed -n 's|^listening on http://\([^ ]*\).*|\1|p' "$work/server.out")"
    key="$(sed -n 's|^admin key: ||p' "$work/server.out")"
    [[ -n "$addr" && -n "$key" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "the demo server exited:" >&2
        cat "$work/server.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$key" ]]; then
    echo "the demo server printed no admin key within 60 s" >&2
    exit 1
fi
echo "demo server on http://$addr"

checks=all
# Checks that do not apply by design, each with its reason:
# - use_after_free: `DELETE` revokes (the default router's `DeleteMode::Revoke`), and a
#   revoked key stays readable (`GET` answers it with `revoked_at` set) and listable with
#   `?status=revoked`, by design, so that its owner can see when it ended.
excluded="use_after_free"

# Per operation: a usage range is schema-valid whatever its dates, but one that reaches
# back past the retention, or spans more than 1,500 buckets, is answered 400 by design
# (`usage_range_beyond_retention`, `usage_range_too_large`): which dates those are
# depends on the current time, which a schema cannot say. So for that operation a 400
# is an accepted answer to schema-valid data; every other check still applies to it.
# Likewise a key's `plan` is any name by the schema, but only the deployment's configured
# plans exist: an unknown plan is 400 `invalid_request` ("plan: no such plan"), so create
# and update may answer 400 to schema-valid data.
cat >"$work/schemathesis.toml" <<'TOML'
[[operations]]
include-operation-id = "getApiKeyUsage"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-operation-id = "createApiKey"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]

[[operations]]
include-operation-id = "updateApiKey"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]
TOML

start=$(date +%s)
status=0
# From the scratch directory: schemathesis keeps a cache (`.schemathesis/`) where it runs.
(cd "$work" && "$st" --config-file "$work/schemathesis.toml" run "http://$addr/openapi.json" \
    --checks "$checks" \
    ${excluded:+--exclude-checks "$excluded"} \
    --phases examples,coverage,fuzzing,stateful \
    --mode all \
    --header "Authorization: Bearer $key" \
    --seed "$seed" \
    --max-examples "$max_examples" \
    --generation-database none \
    --suppress-health-check all \
    --request-timeout 10 \
    --workers 1 \
    --report vcr --report-vcr-path "$work/cassette.yaml" \
    --no-color) || status=$?
elapsed=$(( $(date +%s) - start ))

# Every request is one interaction in the network log; a failed one is not SUCCESS.
log="$work/cassette.yaml"
requests=0
failed=0
if [[ -f "$log" ]]; then
    requests=$(grep -c '^- id: ' "$log" || true)
    failed=$(grep -c "^  status: '[^S]" "$log" || true)
    [[ -n "${SCHEMATHESIS_CASSETTE:-}" ]] && cp "$log" "$SCHEMATHESIS_CASSETTE"
fi
echo "schemathesis $version: $requests requests, $failed failing a check, in ${elapsed} s (exit status $status)"
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the demo server died during the run:" >&2
    cat "$work/server.err" >&2
    exit 1
fi
exit "$status"
