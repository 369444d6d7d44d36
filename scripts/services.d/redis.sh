# shellcheck shell=bash
# Redis for tests: Debian's redis-server (installed with apt-get when it is
# missing) on 127.0.0.1, its dir, log and pid in .services/redis. Sourced by
# scripts/services; see the contract there.
#
#   eval "$(scripts/services up redis)"
#   # REDIS_URL=redis://127.0.0.1:PORT
#   # TWICE_REDIS_SERVER=/usr/bin/redis-server   (tests that must kill and
#   #                                             restart a Redis run their own)
#
#   TWICE_REDIS_PORT   port to prefer (default 16379; a free one if taken)
#
# No persistence: every start is an empty server. Tests isolate themselves
# by key prefix or database number (internal/servicetest).

redis_pattern() { printf '%s' "$SERVICES_STATE/redis/redis.conf"; }

redis_running() {
	svc_pid_alive "$SERVICES_STATE/redis/redis.pid" "$(redis_pattern)"
}

# redis_need: redis-server and redis-cli, from Debian's packages if missing.
# The package lists are refreshed only when the install fails without it.
redis_need() {
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		svc_log "redis: redis-server is missing; install Debian's redis-server package"
		return 1
	fi
	svc_log "redis: installing redis-server with apt-get"
	# policy-rc.d 101: the package must not start the system's own Redis on 6379.
	if ! redis_apt_install; then
		apt-get update -qq >&2
		redis_apt_install
	fi
}

redis_apt_install() {
	local policy=/usr/sbin/policy-rc.d had_policy=0 rc=0
	[ -e "$policy" ] && had_policy=1
	if [ $had_policy = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2 || rc=$?
	[ $had_policy = 0 ] && rm -f "$policy"
	return $rc
}

redis_ping() {
	[ "$(redis-cli -h 127.0.0.1 -p "$1" --no-raw PING 2>/dev/null)" = "PONG" ]
}

redis_exports() {
	printf 'export REDIS_URL=redis://127.0.0.1:%s\n' "$1"
	printf 'export TWICE_REDIS_SERVER=%s\n' "$(command -v redis-server)"
}

redis_up() {
	local dir port pid i
	dir=$(svc_dir redis)
	redis_need
	if redis_running && [ -s "$dir/port" ] && redis_ping "$(<"$dir/port")"; then
		port=$(<"$dir/port")
		svc_log "redis: already running (pid $(<"$dir/redis.pid")) on 127.0.0.1:$port"
		redis_exports "$port"
		return 0
	fi
	svc_stop "$dir/redis.pid" "$(redis_pattern)" 10 # a stale or half-started one
	port=$(svc_free_port "${TWICE_REDIS_PORT:-16379}")
	rm -rf "$dir/data" "$dir/port"
	mkdir -p "$dir/data"
	cat >"$dir/redis.conf" <<CONF
# Written by scripts/services.d/redis.sh; rewritten on every start.
bind 127.0.0.1
port $port
protected-mode yes
daemonize no
dir $dir/data
logfile $dir/redis.log
save ""
appendonly no
# Tests take a database each (servicetest.RedisDB).
databases 64
# svc_pid_alive finds the server by its config file in its title.
proc-title-template "{title} {listen-addr} {server-mode} {config-file}"
CONF
	svc_log "redis: starting on 127.0.0.1:$port, log $dir/redis.log"
	# setsid: the server outlives this shell; stdout to a file so that
	# \$(scripts/services up) does not wait on it.
	setsid redis-server "$dir/redis.conf" >"$dir/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/redis.pid"
	for ((i = 0; i < 200; i++)); do
		redis_ping "$port" && break
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		sleep 0.05
	done
	if ! redis_ping "$port"; then
		svc_log "redis: did not answer PING; last lines of its log:"
		tail -n 20 "$dir/redis.log" "$dir/stdout.log" >&2 || true
		svc_stop "$dir/redis.pid" "$(redis_pattern)" 10
		return 1
	fi
	echo "$port" >"$dir/port"
	svc_log "redis: ready (pid $pid)"
	redis_exports "$port"
}

redis_down() {
	local dir=$SERVICES_STATE/redis
	if redis_running; then
		svc_log "redis: stopping pid $(<"$dir/redis.pid")"
	fi
	svc_stop "$dir/redis.pid" "$(redis_pattern)" 10
	rm -rf "$dir/data" "$dir/port"
}
