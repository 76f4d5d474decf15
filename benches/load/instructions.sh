#!/usr/bin/env bash
# Counts the instructions the hosted edge executes per request, with valgrind's callgrind. Unlike
# requests/s, the count does not depend on what else the machine is doing, so it compares two
# builds on a shared machine.
#
# The `edge_server` example runs under callgrind twice, serving FEW and then MANY keep-alive
# requests to URL_PATH from one client connection. The difference of the two totals divided by
# MANY - FEW is the per-request count, without startup and shutdown. Only the edge's user-space
# instructions count; the kernel's TCP work is not included.
#
# Usage: benches/load/instructions.sh [EDGE_SERVER_BINARY]
# Settings (environment): FEW (default 1000), MANY (11000), URL_PATH (/_m/acme/petstore/pets),
# PORT (18300). Needs valgrind, python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."

FEW=${FEW:-1000}
MANY=${MANY:-11000}
URL_PATH=${URL_PATH:-/_m/acme/petstore/pets}
PORT=${PORT:-18300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mockforge-target}

for command in valgrind python3 curl; do
  command -v "$command" >/dev/null || { echo "error: $command is not installed" >&2; exit 1; }
done

binary=${1:-}
if [ -z "$binary" ]; then
  cargo build --release -p mockforge-benches --example edge_server
  binary=$CARGO_TARGET_DIR/release/examples/edge_server
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Sends `count` GET requests on one keep-alive connection and fails on any status but 200.
cat >"$WORK/client.py" <<'EOF'
import http.client
import sys

port, count, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
connection = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(count):
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"GET {path} returned {response.status}")
EOF

# Prints the instructions the edge executed while serving `count` requests, startup included.
total_instructions() {
  local count=$1 pid
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$binary" "127.0.0.1:$PORT" >"$WORK/edge.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT$URL_PATH" && break
    sleep 0.2
  done
  python3 "$WORK/client.py" "$PORT" "$count" "$URL_PATH"
  kill -TERM "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$WORK/callgrind.out"
}

few=$(total_instructions "$FEW")
many=$(total_instructions "$MANY")
echo "$binary: $(( (many - few) / (MANY - FEW) )) instructions per request (GET $URL_PATH)"
