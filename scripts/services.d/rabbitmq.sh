# shellcheck shell=bash
# RabbitMQ for tests: Debian's rabbitmq-server (3.10 on Debian 12, installed
# with apt-get when missing) as a private node on 127.0.0.1: its own node
# name, AMQP and distribution ports, its own epmd on a free port (so it never
# meets the system's epmd on 4369 or another node), its mnesia, logs,
# config and Erlang cookie in .services/rabbitmq. No plugins. Sourced by
# scripts/services; see the contract there.
#
#   eval "$(scripts/services up rabbitmq)"
#   # RABBITMQ_URL=amqp://guest:guest@127.0.0.1:PORT/
#   # TWICE_RABBITMQCTL=.services/rabbitmq/rabbitmqctl   (rabbitmqctl bound
#   #                                      to this node: add_vhost, ...)
#
#   TWICE_RABBITMQ_PORT   AMQP port to prefer (default 15672; a free one if taken)
#
# Every start is an empty node (guest/guest, reachable from 127.0.0.1 only).
# Tests isolate themselves by vhost (internal/servicetest.RabbitMQ).

rabbitmq_bin=/usr/lib/rabbitmq/bin

rabbitmq_pattern() { printf "%s" "-home $SERVICES_STATE/rabbitmq/home"; }

# The pid file names the node's Erlang VM (beam), whose command line holds
# its home directory (-home DIR).
rabbitmq_running() {
	svc_pid_alive "$SERVICES_STATE/rabbitmq/rabbitmq.pid" "$(rabbitmq_pattern)"
}

# rabbitmq_need: Debian's rabbitmq-server when missing. policy-rc.d 101:
# the package must not start the system's own node on 5672.
rabbitmq_need() {
	[ -x "$rabbitmq_bin/rabbitmq-server" ] && [ -x "$rabbitmq_bin/rabbitmqctl" ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		svc_log "rabbitmq: $rabbitmq_bin/rabbitmq-server is missing; install Debian's rabbitmq-server package"
		return 1
	fi
	svc_log "rabbitmq: installing rabbitmq-server with apt-get"
	if ! rabbitmq_apt_install; then
		apt-get update -qq >&2
		rabbitmq_apt_install
	fi
}

rabbitmq_apt_install() {
	local policy=/usr/sbin/policy-rc.d had_policy=0 rc=0
	[ -e "$policy" ] && had_policy=1
	if [ $had_policy = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >&2 || rc=$?
	[ $had_policy = 0 ] && rm -f "$policy"
	return $rc
}

rabbitmq_answers() {
	# The AMQP port accepts connections and the node says it has booted.
	python3 - "$1" <<'EOF' || return 1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"AMQP\x00\x00\x09\x01")
data = s.recv(1)
s.close()
sys.exit(0 if data == b"\x01" else 1)  # a Connection.Start method frame
EOF
}

rabbitmq_exports() {
	printf 'export RABBITMQ_URL=amqp://guest:guest@127.0.0.1:%s/\n' "$1"
	printf 'export TWICE_RABBITMQCTL=%s\n' "$SERVICES_STATE/rabbitmq/rabbitmqctl"
}

rabbitmq_up() {
	local dir port dist epmd node pid i
	dir=$(svc_dir rabbitmq)
	rabbitmq_need
	if rabbitmq_running && [ -s "$dir/port" ] && rabbitmq_answers "$(<"$dir/port")"; then
		port=$(<"$dir/port")
		svc_log "rabbitmq: already running (pid $(<"$dir/rabbitmq.pid")) on 127.0.0.1:$port"
		rabbitmq_exports "$port"
		return 0
	fi
	rabbitmq_down # a stale or half-started one
	port=$(svc_free_port "${TWICE_RABBITMQ_PORT:-15672}")
	dist=$(svc_free_port 0)
	epmd=$(svc_free_port 0)
	node="twice-$port@localhost"
	mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
	cat >"$dir/rabbitmq.conf" <<CONF
# Written by scripts/services.d/rabbitmq.sh; rewritten on every start.
listeners.tcp.1 = 127.0.0.1:$port
loopback_users.guest = true
log.console = false
log.file.level = info
# A shared test machine: never block publishers on a nearly full disk.
disk_free_limit.absolute = 1MB
CONF
	printf '[].\n' >"$dir/enabled_plugins"
	# One environment for the server and for rabbitmqctl (same cookie, same
	# epmd, same node name).
	cat >"$dir/env" <<ENV
export HOME=$dir/home
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$port
export RABBITMQ_DIST_PORT=$dist
export ERL_EPMD_PORT=$epmd
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_MNESIA_BASE=$dir/mnesia
export RABBITMQ_LOG_BASE=$dir/log
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_PID_FILE=$dir/mnesia/node.pid
export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
ENV
	: >"$dir/rabbitmq-env.conf"
	cat >"$dir/rabbitmqctl" <<CTL
#!/bin/sh
# rabbitmqctl of the test node started by scripts/services.d/rabbitmq.sh.
. "$dir/env"
exec $rabbitmq_bin/rabbitmqctl -n "$node" "\$@"
CTL
	chmod +x "$dir/rabbitmqctl"
	echo "$epmd" >"$dir/epmd.port"
	svc_log "rabbitmq: starting node $node on 127.0.0.1:$port (epmd $epmd), log $dir/log"
	# setsid: the node outlives this shell; output to a file so that
	# \$(scripts/services up) does not wait on it.
	(
		# shellcheck source=/dev/null
		. "$dir/env"
		exec setsid "$rabbitmq_bin/rabbitmq-server" >"$dir/stdout.log" 2>&1 </dev/null
	) &
	pid=$!
	for ((i = 0; i < 1200; i++)); do
		rabbitmq_answers "$port" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# The beam's pid: the one whose command line names this home dir.
	local beam
	beam=$(pgrep -f -- "$(rabbitmq_pattern)" | while read -r p; do
		grep -qa beam "/proc/$p/cmdline" 2>/dev/null && echo "$p"
	done | head -n 1) || true
	if [ -n "$beam" ]; then
		echo "$beam" >"$dir/rabbitmq.pid"
	fi
	if ! rabbitmq_answers "$port" 2>/dev/null || ! "$dir/rabbitmqctl" -q await_startup --timeout 60 >&2; then
		svc_log "rabbitmq: did not come up; last lines of its logs:"
		tail -n 30 "$dir/stdout.log" "$dir"/log/*.log >&2 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
		rabbitmq_down
		return 1
	fi
	echo "$port" >"$dir/port"
	svc_log "rabbitmq: ready (pid $(<"$dir/rabbitmq.pid"))"
	rabbitmq_exports "$port"
}

rabbitmq_down() {
	local dir=$SERVICES_STATE/rabbitmq
	if rabbitmq_running; then
		svc_log "rabbitmq: stopping pid $(<"$dir/rabbitmq.pid")"
	fi
	svc_stop "$dir/rabbitmq.pid" "$(rabbitmq_pattern)" 30
	# The node's own epmd (started by its VM on a private port).
	# It refuses while a node is registered: the VM unregisters as it exits.
	if [ -s "$dir/epmd.port" ]; then
		local i
		for ((i = 0; i < 50; i++)); do
			ERL_EPMD_PORT=$(<"$dir/epmd.port") epmd -names >/dev/null 2>&1 || break
			ERL_EPMD_PORT=$(<"$dir/epmd.port") epmd -kill >/dev/null 2>&1 || true
			sleep 0.1
		done
	fi
	rm -rf "$dir/mnesia" "$dir/port" "$dir/epmd.port"
}
