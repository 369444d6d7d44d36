# shellcheck shell=bash
# Apache Kafka for tests: one KRaft node (broker and controller in one JVM) on
# 127.0.0.1, run with the machine's Java 17+ from the Maven Central jars that
# kafka/pom.xml lists (cached in .services/kafka/jars-*, so only the first
# `up` downloads). Sourced by scripts/services; see the contract there.
#
#   TWICE_KAFKA_PORT   client port to prefer (default 19092; a free one if taken)
#   KAFKA_HEAP_OPTS    JVM heap (default -Xms256m -Xmx512m)
#
# Every start formats a fresh, empty cluster: no topic survives `down`.
#
# Besides PLAINTEXT (TWICE_KAFKA_BROKERS), the broker has secured listeners
# for the tests of `tls` and `sasl` (kafka/security.sh makes a CA, a server
# certificate for 127.0.0.1/localhost, a client certificate and passwords,
# new at every start): TWICE_KAFKA_TLS_BROKERS (SSL), TWICE_KAFKA_MTLS_BROKERS
# (SSL, client certificate required), TWICE_KAFKA_SASL_SSL_BROKERS and
# TWICE_KAFKA_SASL_BROKERS (SASL_SSL and SASL_PLAINTEXT, with PLAIN,
# SCRAM-SHA-256 and SCRAM-SHA-512), and TWICE_KAFKA_CA_FILE,
# TWICE_KAFKA_CLIENT_CERT, TWICE_KAFKA_CLIENT_KEY, TWICE_KAFKA_SCRAM_USER,
# TWICE_KAFKA_SCRAM_PASSWORD, TWICE_KAFKA_PLAIN_USER, TWICE_KAFKA_PLAIN_PASSWORD.

kafka_defs=$SERVICES_ROOT/scripts/services.d/kafka
# shellcheck source=kafka/security.sh
. "$kafka_defs/security.sh"

kafka_running() {
	svc_pid_alive "$SERVICES_STATE/kafka/kafka.pid" "$SERVICES_STATE/kafka/server.properties"
}

kafka_up() {
	local dir port cport jars pid start=$SECONDS
	dir=$(svc_dir kafka)
	kafka_ready_bin "$dir"
	# A broker without security.env was started before the secured
	# listeners existed: it is replaced below.
	if kafka_running && [ -s "$dir/port" ] && [ -s "$dir/security.env" ]; then
		port=$(<"$dir/port")
		svc_log "kafka: already running (pid $(<"$dir/kafka.pid")) on 127.0.0.1:$port"
		"$dir/bin/ready" -timeout 30s -pid "$(<"$dir/kafka.pid")" "127.0.0.1:$port"
		echo "export TWICE_KAFKA_BROKERS=127.0.0.1:$port"
		cat "$dir/security.env"
		return 0
	fi
	svc_stop "$dir/kafka.pid" "$dir/server.properties" # a stale or half-started one
	kafka_need_tools
	jars=$(kafka_jars "$dir")

	port=$(svc_free_port "${TWICE_KAFKA_PORT:-19092}")
	cport=$(svc_free_port $((port + 1)))
	while [ "$cport" = "$port" ]; do cport=$(svc_free_port 0); done
	rm -rf "$dir/data" "$dir/logs" "$dir/port" "$dir/security.env"
	mkdir -p "$dir/logs"
	kafka_security_files "$dir" "$port" "$cport"
	cat >"$dir/server.properties" <<PROPS
# Written by scripts/services.d/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport,$kafka_sec_listeners
advertised.listeners=PLAINTEXT://127.0.0.1:$port,$kafka_sec_listeners
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,$kafka_sec_protocols
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data

# Tests create the topics they use, each its own.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0

# Small and short-lived: a 2-core machine that also runs the tests.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.ms=3600000
log.retention.check.interval.ms=30000
log.segment.bytes=67108864

$(kafka_security_properties "$dir")
PROPS

	svc_log "kafka: formatting a new cluster in $dir/data"
	java -Xmx256m -Dlog4j2.configurationFile="$kafka_defs/log4j2.properties" \
		-Dkafka.logs.dir="$dir/logs/format" -cp "$jars/*" kafka.tools.StorageTool \
		format --standalone -t "$(kafka_cluster_id)" -c "$dir/server.properties" \
		"${kafka_sec_scram_args[@]}" >"$dir/format.log" 2>&1 || {
		tail -n 20 "$dir/format.log" >&2
		return 1
	}

	svc_log "kafka: starting on 127.0.0.1:$port (controller $cport), log $dir/logs/server.log"
	# setsid: the broker outlives this shell and a Ctrl-C of the caller;
	# stdout/stderr to a file so that $(scripts/services up) does not wait on it.
	# shellcheck disable=SC2086
	setsid java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$kafka_defs/log4j2.properties" \
		-Dkafka.logs.dir="$dir/logs" \
		-cp "$jars/*" kafka.Kafka "$dir/server.properties" \
		>"$dir/logs/stdout.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$dir/kafka.pid"
	if ! "$dir/bin/ready" -timeout "${TWICE_KAFKA_START_TIMEOUT:-120s}" -pid "$pid" "127.0.0.1:$port"; then
		svc_log "kafka: did not become ready; last lines of its logs:"
		tail -n 30 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 || true
		svc_stop "$dir/kafka.pid" "$dir/server.properties" 10
		return 1
	fi
	if ! kafka_security_ready "$dir" "$pid"; then
		tail -n 30 "$dir/logs/server.log" >&2 || true
		svc_stop "$dir/kafka.pid" "$dir/server.properties" 10
		return 1
	fi
	echo "$port" >"$dir/port"
	svc_log "kafka: ready in $((SECONDS - start))s (pid $pid)"
	echo "export TWICE_KAFKA_BROKERS=127.0.0.1:$port"
	cat "$dir/security.env"
}

kafka_down() {
	local dir=$SERVICES_STATE/kafka
	if kafka_running; then
		svc_log "kafka: stopping pid $(<"$dir/kafka.pid")"
	fi
	svc_stop "$dir/kafka.pid" "$dir/server.properties" 30
	rm -rf "$dir/data" "$dir/port" "$dir/security.env" "$dir/tls"
}

# kafka_jars DIR: prints the directory holding the broker's jars, copying
# them from Maven Central (through ~/.m2) when kafka/pom.xml changed.
kafka_jars() {
	local dir=$1 sum jars
	sum=$(sha256sum "$kafka_defs/pom.xml" | cut -c1-12)
	jars=$dir/jars-$sum
	if [ ! -f "$jars/.complete" ]; then
		svc_log "kafka: fetching the broker's jars with mvn (first run only)"
		rm -rf "$jars" "$dir"/jars-*
		# sed: Debian's mvn 3.8 prints colour codes even with -q -B.
		mvn -q -B -f "$kafka_defs/pom.xml" dependency:copy-dependencies \
			-DincludeScope=runtime -DoutputDirectory="$jars" 2>&1 |
			sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2
		touch "$jars/.complete"
	fi
	printf '%s\n' "$jars"
}

# kafka_ready_bin DIR: builds the readiness check into DIR/bin/ready (the Go
# build cache makes this a no-op when nothing changed).
kafka_ready_bin() {
	mkdir -p "$1/bin"
	go build -o "$1/bin/ready" ./scripts/services.d/kafka/ready
}

# kafka_cluster_id: a random cluster id, as `kafka-storage random-uuid`
# makes them (URL-safe base64 of 16 bytes), never one that starts with "-":
# kafka-storage's argument parser takes that for an option (seen once in
# 64 starts: "argument --cluster-id/-t: expected one argument").
kafka_cluster_id() {
	python3 -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

# kafka_need_tools: Java 17+, Maven and openssl, from Debian's packages if missing.
kafka_need_tools() {
	local missing=() major
	command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
	command -v mvn >/dev/null || missing+=(maven)
	command -v openssl >/dev/null || missing+=(openssl) # the test certificates (kafka/security.sh)
	if [ ${#missing[@]} -gt 0 ]; then
		if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
			svc_log "kafka needs Java 17+ and Maven; install: ${missing[*]}"
			return 1
		fi
		svc_log "kafka: installing ${missing[*]}"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
	major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
	if [ "${major:-0}" -lt 17 ]; then
		svc_log "kafka 4 needs Java 17+, java here is ${major:-unknown}"
		return 1
	fi
}
