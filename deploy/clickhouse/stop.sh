#!/usr/bin/env bash
# Stop the two instances that start.sh started in DATA_DIR (by their pid files).
set -euo pipefail
DATA_DIR="${1:?usage: stop.sh DATA_DIR}"
for name in ch1 ch2; do
  pidfile="$DATA_DIR/$name/server.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$pidfile"
done
