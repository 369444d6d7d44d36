# shellcheck shell=bash
# ClickHouse for tests, without Docker: ClickHouse's local mode from the npm
# package @chdb/lib-linux-x64-gnu (libchdb.so), run by a launcher of a few
# lines of C (clickhouse/launcher.c, built with gcc) whose query opens the
# native and HTTP listeners and then sleeps. Sourced by scripts/services.
#
#   eval "$(scripts/services up clickhouse)"
#   # CLICKHOUSE_DSN=clickhouse://127.0.0.1:PORT/default        (native)
#   # CLICKHOUSE_HTTP_DSN=http://127.0.0.1:PORT/default          (HTTP)
#
# Tunables (environment): CLICKHOUSE_CHDB_VERSION (npm version of the
# package), CLICKHOUSE_TCP_PORT / CLICKHOUSE_HTTP_PORT (preferred ports),
# CLICKHOUSE_MAX_THREADS (default 2), CLICKHOUSE_MAX_MEMORY (bytes a query
# may use, default 4 GiB).

CLICKHOUSE_CHDB_VERSION=${CLICKHOUSE_CHDB_VERSION:-26.7.3-stable.1}

clickhouse_pattern() { printf 'twice-clickhouse'; }

# clickhouse_fetch DIR: the package in DIR/pkg (once per version).
clickhouse_fetch() {
	local dir=$1 want="@chdb/lib-linux-x64-gnu@$CLICKHOUSE_CHDB_VERSION" tgz
	if [ -s "$dir/pkg/libchdb.so" ] && [ "$(cat "$dir/pkg.version" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	command -v npm >/dev/null || { svc_log "clickhouse: npm is needed to fetch $want"; return 1; }
	svc_log "clickhouse: fetching $want (about 180 MB) with npm"
	rm -rf "$dir/pkg" "$dir/fetch"
	mkdir -p "$dir/fetch"
	(cd "$dir/fetch" && npm pack --silent "$want" >/dev/null) || { svc_log "clickhouse: npm pack $want failed"; return 1; }
	tgz=$(ls "$dir"/fetch/*.tgz)
	tar -xzf "$tgz" -C "$dir/fetch"
	mv "$dir/fetch/package" "$dir/pkg"
	rm -rf "$dir/fetch"
	printf '%s\n' "$want" >"$dir/pkg.version"
}

# clickhouse_build DIR: the launcher in DIR/twice-clickhouse, rebuilt when
# its source changed.
clickhouse_build() {
	local dir=$1 src=$SERVICES_ROOT/scripts/services.d/clickhouse/launcher.c
	if [ -x "$dir/twice-clickhouse" ] && [ "$dir/twice-clickhouse" -nt "$src" ]; then
		return 0
	fi
	command -v gcc >/dev/null || { svc_log "clickhouse: gcc is needed to build the launcher"; return 1; }
	gcc -O2 -Wall -o "$dir/twice-clickhouse" "$src" -ldl
}

clickhouse_running() {
	local dir=$SERVICES_STATE/clickhouse
	svc_pid_alive "$dir/server.pid" "$(clickhouse_pattern)"
}

clickhouse_exports() {
	local dir=$1
	printf 'export CLICKHOUSE_DSN=clickhouse://127.0.0.1:%s/default\n' "$(cat "$dir/tcp.port")"
	printf 'export CLICKHOUSE_HTTP_DSN=http://127.0.0.1:%s/default\n' "$(cat "$dir/http.port")"
}

clickhouse_ping() {
	python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/ping" % sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.read().strip() == b"Ok." else 1)
except Exception:
    sys.exit(1)
PY
}

clickhouse_up() {
	local dir tcp http pid i
	dir=$(svc_dir clickhouse)
	if clickhouse_running && clickhouse_ping "$(cat "$dir/http.port")"; then
		clickhouse_exports "$dir"
		return 0
	fi
	# A stale pid file, or a server that no longer answers: start anew.
	svc_stop "$dir/server.pid" "$(clickhouse_pattern)" 10
	clickhouse_fetch "$dir"
	clickhouse_build "$dir"
	tcp=$(svc_free_port "${CLICKHOUSE_TCP_PORT:-19000}")
	http=$(svc_free_port "${CLICKHOUSE_HTTP_PORT:-18123}")
	if [ "$tcp" = "$http" ]; then
		http=$(svc_free_port 0)
	fi
	# The test server keeps nothing between starts: a data directory left by
	# an earlier server (killed, or stopped mid-DROP) was seen to stop the
	# next one at start with CANNOT_DETECT_FORMAT, so each start is empty.
	rm -rf "$dir/data"
	mkdir -p "$dir/data"
	svc_log "clickhouse: starting on 127.0.0.1 native :$tcp http :$http (log $dir/server.log)"
	# setsid: the server outlives the `up` that started it; 9>&- : it must not
	# inherit the lock scripts/services holds during `up`. --input-format and
	# --structure: local mode makes a table of stdin when it is not a
	# terminal and, without them, detects its format from the contents,
	# which fails on an empty stdin (CANNOT_DETECT_FORMAT, seen to stop a
	# cluster shard at start in CI).
	setsid "$dir/twice-clickhouse" "$dir/pkg/libchdb.so" \
		--listen_host=127.0.0.1 --tcp_port="$tcp" --http_port="$http" \
		--path="$dir/data/" \
		--max_threads="${CLICKHOUSE_MAX_THREADS:-2}" \
		--max_memory_usage="${CLICKHOUSE_MAX_MEMORY:-4294967296}" \
		--function_sleep_max_microseconds_per_block=0 \
		--input-format=TSV --structure='unused UInt8' \
		--query "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; SELECT sleepEachRow(3600) FROM numbers(1000000) FORMAT Null" \
		</dev/null >"$dir/server.log" 2>&1 9>&- &
	pid=$!
	printf '%s\n' "$pid" >"$dir/server.pid"
	printf '%s\n' "$tcp" >"$dir/tcp.port"
	printf '%s\n' "$http" >"$dir/http.port"
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			svc_log "clickhouse: the server exited; its log:"
			tail -n 20 "$dir/server.log" >&2
			rm -f "$dir/server.pid"
			return 1
		fi
		if clickhouse_ping "$http"; then
			svc_log "clickhouse: ready (pid $pid)"
			clickhouse_exports "$dir"
			return 0
		fi
		sleep 0.2
	done
	svc_log "clickhouse: no answer on :$http/ping within 120s; stopping it"
	svc_stop "$dir/server.pid" "$(clickhouse_pattern)" 10
	return 1
}

clickhouse_down() {
	local dir=$SERVICES_STATE/clickhouse
	[ -d "$dir" ] || return 0
	svc_stop "$dir/server.pid" "$(clickhouse_pattern)" 30
}
