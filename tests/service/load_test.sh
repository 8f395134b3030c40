#!/usr/bin/env bash
# Bounded load test of pms-derm-cds with wrk (docs/service.md, "Tests").
#
#  1. Below capacity: 4 connections against a queue of 64. At most 4 requests can ever wait, so
#     the queue cannot fill: every answer must be 200 and no socket may fail.
#  2. Above capacity: 64 connections against a queue of 4 and batches of 4. Requests beyond what
#     the queue holds must be refused at once with 503 + Retry-After + resource_exhausted, the
#     rest answered 200: no other status, no socket errors, no timeouts.
# Each phase runs for a fixed time (LOAD_TEST_SECONDS, default 5) on the tiny-conv test model.
#
# usage: load_test.sh PMS_DERM_CDS REPOSITORY IMAGE WORK_DIR
set -euo pipefail
binary=${1:?usage: load_test.sh PMS_DERM_CDS REPOSITORY IMAGE WORK_DIR}
repository=${2:?missing REPOSITORY}
image=${3:?missing IMAGE}
work=${4:?missing WORK_DIR}
seconds=${LOAD_TEST_SECONDS:-5}
here=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "load_test: wrk is not installed (scripts/debian-packages.txt)" >&2; exit 1; }
mkdir -p "$work"

server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || { echo "load_test: the server exited with status $? on SIGTERM" >&2; return 1; }
  fi
  server_pid=""
}
trap 'stop_server || true' EXIT

start_server() { # name, flags...
  local name=$1; shift
  rm -f "$work/port"
  "$binary" --repository "$repository" --model tiny-conv --default-model tiny-conv --host 127.0.0.1 --port 0 \
    --port-file "$work/port" --no-banner --log-level warn "$@" >"$work/$name.out" 2>"$work/$name.log" &
  server_pid=$!
  until [ -s "$work/port" ]; do
    kill -0 "$server_pid" 2>/dev/null || { echo "load_test: server exited:" >&2; cat "$work/$name.log" >&2; exit 1; }
    sleep 0.05
  done
  url="http://127.0.0.1:$(cat "$work/port")"
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/v2/health/ready")" = 200 ]; do sleep 0.05; done
}

run_wrk() { # connections -> writes $work/wrk-<connections>.txt
  local connections=$1 out="$work/wrk-$1.txt"
  wrk --threads 2 --connections "$connections" --duration "${seconds}s" --timeout 10s --latency \
    --script "$here/classify.lua" "$url" -- "$image" image/jpeg >"$out"
  cat "$out"
}

field() { # file key -> value of key=value in the script's summary
  grep -o "$2=[0-9.]*" "$1" | head -n 1 | cut -d= -f2
}

status_count() { # file status
  grep '^statuses:' "$1" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2 || true
}

failures=0
check() { # description, condition...
  local description=$1; shift
  if "$@"; then echo "load_test: ok: $description"; else echo "load_test: FAILED: $description" >&2; failures=$((failures + 1)); fi
}

echo "== below capacity: 4 connections, queue of 64, batches of 8 =="
start_server below --max-queue-size 64 --max-batch-size 8
run_wrk 4
below="$work/wrk-4.txt"
check "requests were answered" [ "$(status_count "$below" 200)" -gt 0 ]
check "every answer was 200" [ -z "$(grep '^statuses:' "$below" | tr ' ' '\n' | grep '=' | grep -v '^200=')" ]
check "no socket errors or timeouts" [ "$(field "$below" socket_errors)" -eq 0 ]
stop_server

echo "== above capacity: 64 connections, queue of 4, batches of 4 =="
start_server above --max-queue-size 4 --max-batch-size 4 --http-threads 80
run_wrk 64
above="$work/wrk-64.txt"
ok=$(status_count "$above" 200)
refused=$(status_count "$above" 503)
check "some requests were answered 200 (got ${ok:-0})" [ "${ok:-0}" -gt 0 ]
check "the overload was refused with 503 (got ${refused:-0})" [ "${refused:-0}" -gt 0 ]
check "no status other than 200 and 503" \
  [ -z "$(grep '^statuses:' "$above" | tr ' ' '\n' | grep '=' | grep -v -e '^200=' -e '^503=')" ]
check "every 503 had Retry-After and resource_exhausted" [ "$(field "$above" malformed_503)" -eq 0 ]
check "no socket errors or timeouts" [ "$(field "$above" socket_errors)" -eq 0 ]
stop_server

[ "$failures" -eq 0 ] || { echo "load_test: $failures check(s) failed" >&2; exit 1; }
echo "load_test: all checks passed"
