#!/usr/bin/env bash
# Load comparison on loopback, with requests/s, latency and CPU time per request for each server.
# The servers: nginx returning a fixed body, pingora's bare HTTP server returning the same body
# (the framework's floor), `mockforge mock` (single-document mode) and a hosted-mode edge
# (tenant routing, plan limits and telemetry on every request). wrk drives each of them with the
# same settings in one run. Prism, Mockoon and WireMock are added
# when their commands are installed.
#
# Usage: benches/load/run.sh
# Settings (environment): DURATION (default 10s), CONNECTIONS (32), THREADS (wrk threads, 1),
# WORKERS (worker processes or threads of nginx, the pingora floor and the edge; 2),
# BASE_PORT (18081; the servers use BASE_PORT to BASE_PORT+6).
# Installs wrk and nginx with apt-get when missing, so it needs root for the first run.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-2}
BASE_PORT=${BASE_PORT:-18081}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/mockforge-target}

NGINX_PORT=$BASE_PORT
MOCK_PORT=$((BASE_PORT + 1))
EDGE_PORT=$((BASE_PORT + 2))
PRISM_PORT=$((BASE_PORT + 3))
MOCKOON_PORT=$((BASE_PORT + 4))
WIREMOCK_PORT=$((BASE_PORT + 5))
FLOOR_PORT=$((BASE_PORT + 6))
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
worker_processes $WORKERS;
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
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

RESULTS=()
NGINX_RPS=""

# Prints a process and all its descendants, so wrappers that start the real server (npm
# commands, nginx's master) are measured whole.
process_tree() {
  local pid=$1 child
  echo "$pid"
  for child in $(pgrep -P "$pid"); do
    process_tree "$child"
  done
}

# Prints the CPU time in clock ticks that the given processes used so far (user and system).
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# Runs wrk against a URL and records requests/s, p50, p99 and the server's CPU time per request
# under a label. CPU time per request varies less than requests/s on a busy machine.
measure() {
  local label=$1 url=$2
  shift 2
  local pids=("$@")
  local output rps p50 p99 ratio requests before after cpu_us
  before=$(cpu_ticks "${pids[@]}")
  output=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
  after=$(cpu_ticks "${pids[@]}")
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$output")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$output")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$output")
  requests=$(awk '/requests in/ {print $1}' <<<"$output")
  cpu_us=$(awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN {printf "%.1f", ticks * 1000000 / hz / n}')
  if grep -q "Non-2xx" <<<"$output"; then
    echo "warning: $label got non-2xx responses: $(grep Non-2xx <<<"$output")" >&2
  fi
  [ -z "$NGINX_RPS" ] && NGINX_RPS=$rps
  ratio=$(awk -v rps="$rps" -v base="$NGINX_RPS" 'BEGIN {printf "%.0f%%", 100 * rps / base}')
  RESULTS+=("$(printf '%-34s %12s %10s %10s %8s %12s' "$label" "$rps" "$p50" "$p99" "$ratio" "$cpu_us")")
  echo "measured $label: $rps requests/s, p50 $p50, p99 $p99 ($ratio of nginx), $cpu_us µs CPU per request"
}

install_missing

echo "building the release binaries (several minutes on a cold cache)"
cargo build --release -p mockforge-cli -p mockforge-benches --bins --example edge_server \
  --example pingora_floor
MOCKFORGE=$CARGO_TARGET_DIR/release/mockforge
EDGE_SERVER=$CARGO_TARGET_DIR/release/examples/edge_server
PINGORA_FLOOR=$CARGO_TARGET_DIR/release/examples/pingora_floor

start_nginx
RUST_LOG=warn "$MOCKFORGE" mock "$DOCUMENT" --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
PIDS+=("$MOCK_PID")
"$EDGE_SERVER" "127.0.0.1:$EDGE_PORT" "$WORKERS" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
"$PINGORA_FLOOR" "127.0.0.1:$FLOOR_PORT" "$WORKERS" >"$WORK/floor.log" 2>&1 &
FLOOR_PID=$!
PIDS+=("$FLOOR_PID")

wait_ready "http://127.0.0.1:$NGINX_PORT/pets"
wait_ready "http://127.0.0.1:$MOCK_PORT/pets"
wait_ready "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/pets"
wait_ready "http://127.0.0.1:$FLOOR_PORT/pets"

measure "nginx fixed body" "http://127.0.0.1:$NGINX_PORT/pets" $(process_tree "$NGINX_PID")
measure "pingora floor, fixed body" "http://127.0.0.1:$FLOOR_PORT/pets" "$FLOOR_PID"
measure "mockforge mock, example" "http://127.0.0.1:$MOCK_PORT/pets" "$MOCK_PID"
measure "mockforge mock, generated" "http://127.0.0.1:$MOCK_PORT/owners/42" "$MOCK_PID"
measure "edge hosted, example" "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/pets" "$EDGE_PID"
measure "edge hosted, generated" "http://127.0.0.1:$EDGE_PORT/_m/acme/petstore/owners/42" "$EDGE_PID"

if command -v prism >/dev/null; then
  prism mock --port "$PRISM_PORT" "$DOCUMENT" >"$WORK/prism.log" 2>&1 &
  PRISM_PID=$!
  PIDS+=("$PRISM_PID")
  wait_ready "http://127.0.0.1:$PRISM_PORT/pets" \
    && measure "prism, example" "http://127.0.0.1:$PRISM_PORT/pets" $(process_tree "$PRISM_PID")
else
  echo "skipped Prism: the prism command is not installed (npm install -g @stoplight/prism-cli)"
fi

if command -v mockoon-cli >/dev/null; then
  mockoon-cli start --data "$DOCUMENT" --port "$MOCKOON_PORT" >"$WORK/mockoon.log" 2>&1 &
  MOCKOON_PID=$!
  PIDS+=("$MOCKOON_PID")
  wait_ready "http://127.0.0.1:$MOCKOON_PORT/pets" \
    && measure "mockoon, example" "http://127.0.0.1:$MOCKOON_PORT/pets" $(process_tree "$MOCKOON_PID")
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
  WIREMOCK_PID=$!
  PIDS+=("$WIREMOCK_PID")
  wait_ready "http://127.0.0.1:$WIREMOCK_PORT/pets" \
    && measure "wiremock, stub" "http://127.0.0.1:$WIREMOCK_PORT/pets" $(process_tree "$WIREMOCK_PID")
else
  echo "skipped WireMock: the wiremock command (npm install -g wiremock) or java is not installed"
fi

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $WORKERS server workers, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%-34s %12s %10s %10s %8s %12s\n' "server" "requests/s" "p50" "p99" "vs nginx" "CPU µs/req"
printf '%s\n' "${RESULTS[@]}"
