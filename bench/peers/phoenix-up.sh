#!/usr/bin/env bash
# Stands up Arize Phoenix, an OpenTelemetry trace store (OTLP/HTTP on /v1/traces, SQLite by
# default, a REST API to read spans back), from PyPI in DIR, for `vigie-bench traces
# --phoenix-url URL --phoenix-pid PID`. Of the trace stores users pick (Jaeger, Tempo, Zipkin,
# SigNoz, OpenObserve), it is the one this machine's registries (crates.io, PyPI, Debian, npm)
# carry; the others ship as Go or Java binaries and container images only.
#
#   bench/peers/phoenix-up.sh DIR [PORT]      prints URL= and PID=; stop it with kill PID
set -euo pipefail
dir=${1:?usage: phoenix-up.sh DIR [PORT]}
port=${2:-6006}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ ! -x "$dir/venv/bin/phoenix" ]; then
  python3 -m venv "$dir/venv"
  "$dir/venv/bin/pip" install --quiet --disable-pip-version-check arize-phoenix==20.26.1
fi
mkdir -p "$dir/data"
PHOENIX_WORKING_DIR="$dir/data" PHOENIX_PORT="$port" PHOENIX_GRPC_PORT=$((port + 1)) \
  nohup "$dir/venv/bin/phoenix" serve >"$dir/phoenix.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/phoenix.log" >&2; exit 1; }
  sleep 1
done
echo "URL=http://127.0.0.1:$port"
echo "PID=$pid"
