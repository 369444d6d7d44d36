# shellcheck shell=bash
# A two-shard ClickHouse cluster for tests: two servers of the kind
# clickhouse.sh starts (ClickHouse's local mode from libchdb.so, run by
# the same launcher), each given a config file (--config-file) with
# <remote_servers> naming both as the cluster "twice", one replica per
# shard, and the macros {cluster}, {shard} and {replica}. Sourced by
# scripts/services.
#
#   eval "$(scripts/services up clickhouse_cluster)"
#   # CLICKHOUSE_CLUSTER_DSNS=clickhouse://127.0.0.1:P1/default,clickhouse://127.0.0.1:P2/default
#   # CLICKHOUSE_CLUSTER_HTTP_DSNS=http://127.0.0.1:H1/default,http://127.0.0.1:H2/default
#   # CLICKHOUSE_CLUSTER=twice
#
# What it is not: there is no Keeper. libchdb.so carries no Keeper server
# (no clickhouse-keeper entry point), so ON CLUSTER DDL (the distributed
# DDL queue) and Replicated*MergeTree cannot run here; tests create the
# tables on each shard themselves. Distributed tables, the sharding key and
# queries across shards are real.
#
# Known chDB defect: a shard aborts ("Terminate called for uncaught
# exception", TCPHandler: Connection reset by peer) when the initiator
# cancels a remote read and drops the connection; chDB's server mode does
# not catch it, a real clickhouse-server does. Before the audit computed
# its counted events once into a local table, its queries over small
# inputs made that happen within 1 to 30 scenarios; since, the cluster
# test passed 8 runs of 8. Each shard logs to sN/clickhouse.log and
# sN/clickhouse.err.log: look there for "Terminate called" if a shard
# stops answering.
#
# Tunables: CLICKHOUSE_CLUSTER_TCP_PORT / CLICKHOUSE_CLUSTER_HTTP_PORT
# (preferred first ports), and those of clickhouse.sh (version, threads,
# memory).

# shellcheck source=scripts/services.d/clickhouse.sh
source "$SERVICES_DEFS/clickhouse.sh"

clickhouse_cluster_pattern() { printf 'twice-clickhouse'; }

clickhouse_cluster_running() {
	local dir=$SERVICES_STATE/clickhouse_cluster i
	for i in 1 2; do
		svc_pid_alive "$dir/s$i/server.pid" "$(clickhouse_cluster_pattern)" || return 1
	done
}

clickhouse_cluster_exports() {
	local dir=$1
	printf 'export CLICKHOUSE_CLUSTER_DSNS=clickhouse://127.0.0.1:%s/default,clickhouse://127.0.0.1:%s/default\n' \
		"$(cat "$dir/s1/tcp.port")" "$(cat "$dir/s2/tcp.port")"
	printf 'export CLICKHOUSE_CLUSTER_HTTP_DSNS=http://127.0.0.1:%s/default,http://127.0.0.1:%s/default\n' \
		"$(cat "$dir/s1/http.port")" "$(cat "$dir/s2/http.port")"
	printf 'export CLICKHOUSE_CLUSTER=twice\n'
}

# clickhouse_cluster_start DIR N TCP HTTP: start shard N; wait until it
# answers. The shards start one after the other: two started at once were
# seen to stop one of them with CANNOT_DETECT_FORMAT.
clickhouse_cluster_start() {
	local dir=$1 n=$2 tcp=$3 http=$4 pkg=$SERVICES_STATE/clickhouse pid i
	rm -rf "$dir/s$n/data"
	mkdir -p "$dir/s$n/data"
	svc_log "clickhouse_cluster: starting shard $n on 127.0.0.1 native :$tcp http :$http (log $dir/s$n/server.log)"
	setsid "$pkg/twice-clickhouse" "$pkg/pkg/libchdb.so" \
		--config-file="$dir/s$n/config.xml" \
		--listen_host=127.0.0.1 --tcp_port="$tcp" --http_port="$http" \
		--path="$dir/s$n/data/" \
		--max_threads="${CLICKHOUSE_MAX_THREADS:-2}" \
		--max_memory_usage="${CLICKHOUSE_MAX_MEMORY:-4294967296}" \
		--function_sleep_max_microseconds_per_block=0 \
		--input-format=TSV --structure='unused UInt8' \
		--query "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; SELECT sleepEachRow(3600) FROM numbers(1000000) FORMAT Null" \
		</dev/null >"$dir/s$n/server.log" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$dir/s$n/server.pid"
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			svc_log "clickhouse_cluster: shard $n exited; its log:"
			tail -n 20 "$dir/s$n/server.log" >&2
			rm -f "$dir/s$n/server.pid"
			return 1
		fi
		if clickhouse_ping "$http"; then
			svc_log "clickhouse_cluster: shard $n ready (pid $pid)"
			return 0
		fi
		sleep 0.2
	done
	svc_log "clickhouse_cluster: shard $n: no answer on :$http/ping within 120s"
	return 1
}

clickhouse_cluster_up() {
	local dir n tcp1 tcp2 http1 http2
	dir=$(svc_dir clickhouse_cluster)
	if clickhouse_cluster_running && clickhouse_ping "$(cat "$dir/s1/http.port")" && clickhouse_ping "$(cat "$dir/s2/http.port")"; then
		clickhouse_cluster_exports "$dir"
		return 0
	fi
	clickhouse_cluster_down
	clickhouse_fetch "$SERVICES_STATE/clickhouse"
	clickhouse_build "$SERVICES_STATE/clickhouse"
	tcp1=$(svc_free_port "${CLICKHOUSE_CLUSTER_TCP_PORT:-19101}")
	http1=$(svc_free_port "${CLICKHOUSE_CLUSTER_HTTP_PORT:-18201}")
	tcp2=$(svc_free_port $((tcp1 + 1)))
	http2=$(svc_free_port $((http1 + 1)))
	# svc_free_port falls back to a port from the kernel: make sure the
	# four differ.
	while [ "$(printf '%s\n' "$tcp1" "$tcp2" "$http1" "$http2" | sort -u | wc -l)" -ne 4 ]; do
		http2=$(svc_free_port 0)
		tcp2=$(svc_free_port 0)
	done
	mkdir -p "$dir/s1" "$dir/s2"
	printf '%s\n' "$tcp1" >"$dir/s1/tcp.port"
	printf '%s\n' "$http1" >"$dir/s1/http.port"
	printf '%s\n' "$tcp2" >"$dir/s2/tcp.port"
	printf '%s\n' "$http2" >"$dir/s2/http.port"
	for n in 1 2; do
		cat >"$dir/s$n/config.xml" <<EOF
<clickhouse>
  <remote_servers>
    <twice>
      <shard><replica><host>127.0.0.1</host><port>$tcp1</port></replica></shard>
      <shard><replica><host>127.0.0.1</host><port>$tcp2</port></replica></shard>
    </twice>
  </remote_servers>
  <macros><cluster>twice</cluster><shard>$n</shard><replica>r1</replica></macros>
  <logger><level>warning</level><log>$dir/s$n/clickhouse.log</log><errorlog>$dir/s$n/clickhouse.err.log</errorlog></logger>
</clickhouse>
EOF
	done
	if ! clickhouse_cluster_start "$dir" 1 "$tcp1" "$http1" || ! clickhouse_cluster_start "$dir" 2 "$tcp2" "$http2"; then
		clickhouse_cluster_down
		return 1
	fi
	clickhouse_cluster_exports "$dir"
}

clickhouse_cluster_down() {
	local dir=$SERVICES_STATE/clickhouse_cluster n
	[ -d "$dir" ] || return 0
	for n in 1 2; do
		svc_stop "$dir/s$n/server.pid" "$(clickhouse_cluster_pattern)" 30
	done
}
