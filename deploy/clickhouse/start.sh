#!/usr/bin/env bash
# Start the local 2-shard ClickHouse test cluster: two clickhouse-server instances on
# 127.0.0.1 (native 19001/19002, HTTP 18123/18124, interserver 19011/19012), data under
# DATA_DIR/ch1 and DATA_DIR/ch2, run as the current user (root included: the data
# folders belong to whoever starts them). Waits until both answer; idempotent.
#   deploy/clickhouse/start.sh DATA_DIR     then   deploy/clickhouse/stop.sh DATA_DIR
set -euo pipefail
DATA_DIR="${1:?usage: start.sh DATA_DIR}"
HERE="$(cd "$(dirname "$0")" && pwd)"
SERVER="${CLICKHOUSE_SERVER_BIN:-$(command -v clickhouse-server || echo /usr/sbin/clickhouse-server)}"
TCP_PORTS=(19001 19002); HTTP_PORTS=(18123 18124); INTERSERVER_PORTS=(19011 19012)
mkdir -p "$DATA_DIR"
DATA_DIR="$(cd "$DATA_DIR" && pwd)"

# The HTTP port's /ping answers "Ok." once the server is ready (bash's /dev/tcp: no curl needed).
answers() {
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /ping HTTP/1.0\r\n\r\n' >&3
  grep -q "Ok." <&3; local found=$?
  exec 3<&-
  return $found
}

for i in 0 1; do
  name="ch$((i + 1))"; dir="$DATA_DIR/$name"; http="${HTTP_PORTS[$i]}"
  if answers "$http"; then echo "$name already answers on :$http"; continue; fi
  mkdir -p "$dir"/{log,data,tmp,user_files,format_schemas}
  sed -e "s|@DIR@|$dir|g" -e "s|@CONF_DIR@|$HERE|g" -e "s|@HTTP_PORT@|$http|g" \
      -e "s|@TCP_PORT@|${TCP_PORTS[$i]}|g" -e "s|@INTERSERVER_PORT@|${INTERSERVER_PORTS[$i]}|g" \
      -e "s|@SHARD1_PORT@|${TCP_PORTS[0]}|g" -e "s|@SHARD2_PORT@|${TCP_PORTS[1]}|g" \
      "$HERE/config.xml.in" > "$dir/config.xml"
  # In the foreground of a background job, so $! is the server and stop.sh ends exactly it.
  # The server refuses a data folder owned by another user, so the one running this creates it.
  "$SERVER" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
  echo $! > "$dir/server.pid"
done

for i in 0 1; do
  http="${HTTP_PORTS[$i]}"
  for _ in $(seq 60); do answers "$http" && break; sleep 0.5; done
  if ! answers "$http"; then
    echo "ClickHouse ch$((i + 1)) did not answer on :$http; its log:" >&2
    tail -n 30 "$DATA_DIR/ch$((i + 1))/log/server.err.log" "$DATA_DIR/ch$((i + 1))/log/stdout.log" >&2 || true
    exit 1
  fi
done
echo "ClickHouse cluster warehouse_2shards: clickhouse://default@127.0.0.1:19001/default and :19002 (data in $DATA_DIR)"
