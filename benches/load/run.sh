#!/usr/bin/env bash
# Load comparison on loopback: nginx returning a fixed body, `mockforge mock` (single-document
# mode) and a hosted-mode edge (tenant routing, plan limits and telemetry on every request),
# each driven by wrk with the same settings in one run. Prism, Mockoon and WireMock are added
# when their commands are installed.
#
# Usage: benches/load/run.sh
# Settings (environment): DURATION (default 10s), CONNECTIONS (32), THREADS (1),
# BASE_PORT (18081; the servers use BASE_PORT to BASE_PORT+5).
# Installs wrk and nginx with apt-get when missing, so it needs root for the first run.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18081}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mockforge-target}

NGINX_PORT=$BASE_PORT
MOCK_PORT=$((BASE_PORT + 1))
EDGE_PORT=$((BASE_PORT + 2))
PRISM_PORT=$((BASE_PORT + 3))
MOCKOON_PORT=$((BASE_PORT + 4))
WIREMOCK_PORT=$((BASE_PORT + 5))
DOCUMENT=$PWD/benches/load/petstore.yaml
# The body of `GET /pets` in petstore.yaml, as the engine serializes it.
PETS_BODY='[{"id":1,"name":"Rex","tag":"dog"},{"id":2,"name":"Tom","tag":"cat"}]'

install_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    # Wrappers such as the wiremock npm command start a child (java) that must stop too.
    pkill -P "$pid" 2>/dev/null || true
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Waits up to 30 s until a URL responds with a 2xx status.
wait_ready() {
  local url=$1
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$url" && return 0
    sleep 0.1
  done
  echo "error: $url did not respond within 30 s" >&2
  return 1
}

start_nginx() {
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      default_type application/json;
      return 200 '$PETS_BODY';
    }
  }
}
EOF
  /usr/sbin/nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
  PIDS+=($!)
}

RESULTS=()
NGINX_RPS=""

# Runs wrk against a URL and records requests/s, p50 and p99 under a label.
measure() {
  local label=$1 url=$2
  local output rps p50 p99 ratio
  output=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$output")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$output")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$output")
  if grep -q "Non-2xx" <<<"$output"; then
    echo "warning: $label got non-2xx responses: $(grep Non-2xx <<<"$output")" >&2
  fi
  [ -z "$NGINX_RPS" ] && NGINX_RPS=$rps
  ratio=$(awk -v rps="$rps" -v base="$NGINX_RPS" 'BEGIN {printf "%.0f%%", 100 * rps / base}')
  RESULTS+=("$(printf '%-34s %12s %10s %10s %8s' "$label" "$rps" "$p50" "$p99" "$ratio")")
  echo "measured $label: $rps requests/s, p50 $p50, p99 $p99 ($ratio of nginx)"
}

install_missing

echo "building the release binaries (several minutes on a cold cache)"
cargo build --release -p mockforge-cli -p mockforge-benches --bins --example edge_server
MOCKFORGE=$CARGO_TARGET_DIR/release/mockforge
EDGE_SERVER=$CARGO_TARGET_DIR/release/examples/edge_server

start_nginx
RUST_LOG=warn "$MOCKFORGE" mock "$DOCUMENT" --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
PIDS+=($!)
"$EDGE_SERVER" "127.0.0.1:$EDGE_PORT" >"$WORK/edge.log" 2>&1 &
PIDS+=($!)

wait_ready "http://127.0.0.1:$NGINX_PORT/pets"
wait_ready "http://127.0.0.1:$MOCK_PORT/pets"
wait_ready "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/pets"

measure "nginx fixed body" "http://127.0.0.1:$NGINX_PORT/pets"
measure "mockforge mock, example" "http://127.0.0.1:$MOCK_PORT/pets"
measure "mockforge mock, generated" "http://127.0.0.1:$MOCK_PORT/owners/42"
measure "edge hosted, example" "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/pets"
measure "edge hosted, generated" "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/owners/42"

if command -v prism >/dev/null; then
  prism mock --port "$PRISM_PORT" "$DOCUMENT" >"$WORK/prism.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$PRISM_PORT/pets" && measure "prism, example" "http://127.0.0.1:$PRISM_PORT/pets"
else
  echo "skipped Prism: the prism command is not installed (npm install -g @stoplight/prism-cli)"
fi

if command -v mockoon-cli >/dev/null; then
  mockoon-cli start --data "$DOCUMENT" --port "$MOCKOON_PORT" >"$WORK/mockoon.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$MOCKOON_PORT/pets" && measure "mockoon, example" "http://127.0.0.1:$MOCKOON_PORT/pets"
else
  echo "skipped Mockoon: the mockoon-cli command is not installed (npm install -g @mockoon/cli)"
fi

if command -v wiremock >/dev/null && command -v java >/dev/null; then
  mkdir -p "$WORK/wiremock/mappings"
  cat >"$WORK/wiremock/mappings/pets.json" <<EOF
{"request": {"method": "GET", "url": "/pets"},
 "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": $(printf '%s' "$PETS_BODY" | sed 's/"/\\"/g; s/^/"/; s/$/"/')}}
EOF
  wiremock --port "$WIREMOCK_PORT" --bind-address 127.0.0.1 --root-dir "$WORK/wiremock" >"$WORK/wiremock.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$WIREMOCK_PORT/pets" && measure "wiremock, stub" "http://127.0.0.1:$WIREMOCK_PORT/pets"
else
  echo "skipped WireMock: the wiremock command (npm install -g wiremock) or java is not installed"
fi

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-34s %12s %10s %10s %8s\n' "server" "requests/s" "p50" "p99" "vs nginx"
printf '%s\n' "${RESULTS[@]}"
