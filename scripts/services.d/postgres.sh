# shellcheck shell=bash
# PostgreSQL for tests: Debian's postgresql package (installed with apt-get
# when missing; its own cluster is never started), a throwaway cluster made
# by initdb in .services/postgres/data, on 127.0.0.1. Sourced by
# scripts/services; see the contract there.
#
#   eval "$(scripts/services up postgres)"
#   # POSTGRES_URL=postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   # TWICE_POSTGRES_BIN=/usr/lib/postgresql/15/bin   (initdb, pg_ctl, ...)
#
#   TWICE_POSTGRES_PORT   port to prefer (default 15432; a free one if taken)
#
# Trust authentication on loopback, fsync off: a test server, never a place
# for data. Every start is an empty cluster; tests take a database each
# (internal/servicetest: servicetest.Postgres). PostgreSQL refuses to run
# as root: as root the server runs as the `postgres` user the package made.

postgres_pattern() { printf '%s' "$SERVICES_STATE/postgres/data"; }

postgres_running() {
	svc_pid_alive "$SERVICES_STATE/postgres/postgres.pid" "$(postgres_pattern)"
}

# postgres_bin: the directory of the newest installed server's programs.
postgres_bin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/initdb" ] && printf '%s\n' "$d"
}

# postgres_need: the server programs, from Debian's packages if missing.
postgres_need() {
	postgres_bin >/dev/null && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		svc_log "postgres: the server is missing; install Debian's postgresql package"
		return 1
	fi
	svc_log "postgres: installing postgresql with apt-get"
	if ! postgres_apt_install; then
		apt-get update -qq >&2
		postgres_apt_install
	fi
	postgres_bin >/dev/null || { svc_log "postgres: installed, but no initdb under /usr/lib/postgresql"; return 1; }
}

postgres_apt_install() {
	local policy=/usr/sbin/policy-rc.d had_policy=0 rc=0
	[ -e "$policy" ] && had_policy=1
	if [ $had_policy = 0 ]; then
		# 101: the package must not start the system's own cluster on 5432.
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2 || rc=$?
	[ $had_policy = 0 ] && rm -f "$policy"
	return $rc
}

# postgres_as CMD...: CMD as the user the server runs as.
postgres_as() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
	else
		"$@"
	fi
}

postgres_ready() {
	postgres_as "$(postgres_bin)/pg_isready" -q -h 127.0.0.1 -p "$1" -U postgres -d postgres
}

postgres_exports() {
	printf 'export POSTGRES_URL=postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$1"
	printf 'export TWICE_POSTGRES_BIN=%s\n' "$(postgres_bin)"
}

postgres_up() {
	local dir bin port pid i
	dir=$(svc_dir postgres)
	postgres_need
	bin=$(postgres_bin)
	if postgres_running && [ -s "$dir/port" ] && postgres_ready "$(<"$dir/port")"; then
		port=$(<"$dir/port")
		svc_log "postgres: already running (pid $(<"$dir/postgres.pid")) on 127.0.0.1:$port"
		postgres_exports "$port"
		return 0
	fi
	svc_stop "$dir/postgres.pid" "$(postgres_pattern)" 20 # a stale or half-started one
	port=$(svc_free_port "${TWICE_POSTGRES_PORT:-15432}")
	rm -rf "$dir/data" "$dir/port"
	mkdir -p "$dir/data"
	if [ "$(id -u)" = 0 ]; then
		chown postgres:postgres "$dir/data"
		# The server must reach its data directory through the repo's path.
		if ! postgres_as test -x "$dir/data"; then
			svc_log "postgres: user postgres cannot reach $dir/data (a parent directory is not world-searchable)"
			return 1
		fi
	fi
	postgres_as "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
		svc_log "postgres: initdb failed:"
		tail -n 20 "$dir/initdb.log" >&2
		return 1
	}
	cat >>"$dir/data/postgresql.conf" <<CONF
# Written by scripts/services.d/postgres.sh: a test server.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/data'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
logging_collector = off
CONF
	svc_log "postgres: starting on 127.0.0.1:$port, log $dir/postgres.log"
	# setsid: the server outlives this shell; 9>&- : not the lock of `up`.
	local as=()
	[ "$(id -u)" = 0 ] && as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
	setsid "${as[@]}" "$bin/postgres" -D "$dir/data" >"$dir/postgres.log" 2>&1 </dev/null 9>&- &
	pid=$!
	echo "$pid" >"$dir/postgres.pid"
	for ((i = 0; i < 600; i++)); do
		postgres_ready "$port" && break
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	if ! postgres_ready "$port"; then
		svc_log "postgres: not ready; last lines of its log:"
		tail -n 20 "$dir/postgres.log" >&2 || true
		svc_stop "$dir/postgres.pid" "$(postgres_pattern)" 20
		return 1
	fi
	echo "$port" >"$dir/port"
	svc_log "postgres: ready (pid $pid)"
	postgres_exports "$port"
}

postgres_down() {
	local dir=$SERVICES_STATE/postgres
	if postgres_running; then
		svc_log "postgres: stopping pid $(<"$dir/postgres.pid")"
	fi
	# SIGTERM is PostgreSQL's "smart" shutdown, which waits for clients;
	# svc_stop's SIGKILL after 20 s ends it either way.
	if svc_pid_alive "$dir/postgres.pid" "$(postgres_pattern)"; then
		kill -INT "$(<"$dir/postgres.pid")" 2>/dev/null || true # fast shutdown
	fi
	svc_stop "$dir/postgres.pid" "$(postgres_pattern)" 20
	rm -rf "$dir/data" "$dir/port"
}
