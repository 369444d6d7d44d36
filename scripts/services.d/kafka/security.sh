# shellcheck shell=bash
# The secured listeners of the test broker, for the tests of a kafka source's
# and sink's `tls` and `sasl`. Sourced by ../kafka.sh, which calls:
#
#   kafka_security_files DIR PORT CPORT   before writing server.properties:
#       picks the listeners' ports, makes DIR/tls (a CA, a server certificate
#       for 127.0.0.1 and localhost, a client certificate, EC P-256, valid 30
#       days, new at every start: about 0.1 s with openssl), new random
#       passwords, writes DIR/security.env (the export lines) and sets
#       kafka_sec_listeners, kafka_sec_protocols and kafka_sec_scram_args.
#   kafka_security_properties DIR         prints the broker properties.
#   kafka_security_ready DIR PID          waits until every listener accepts.
#
# Listeners (all on 127.0.0.1):
#   SSL             TLS, server certificate only   TWICE_KAFKA_TLS_BROKERS
#   MTLS            TLS, client certificate required  TWICE_KAFKA_MTLS_BROKERS
#   SASL_SSL        SASL over TLS                   TWICE_KAFKA_SASL_SSL_BROKERS
#   SASL_PLAINTEXT  SASL without TLS                TWICE_KAFKA_SASL_BROKERS
# SASL mechanisms PLAIN (user TWICE_KAFKA_PLAIN_USER) and SCRAM-SHA-256 and
# SCRAM-SHA-512 (user TWICE_KAFKA_SCRAM_USER, both hashes, created in the
# KRaft metadata by `kafka-storage format --add-scram`). No authorizer: an
# authenticated user may do anything.

kafka_security_files() {
	local dir=$1 port=$2 cport=$3 tls=$1/tls p used i scram_pw plain_pw
	local names=(SSL MTLS SASL_SSL SASL_PLAINTEXT)
	used=" $port $cport "
	kafka_sec_ports=()
	for i in 0 1 2 3; do
		p=$(svc_free_port $((port + 2 + i)))
		while [[ $used == *" $p "* ]]; do p=$(svc_free_port 0); done
		used+="$p "
		kafka_sec_ports+=("$p")
	done
	kafka_sec_listeners=""
	for i in 0 1 2 3; do
		kafka_sec_listeners+="${kafka_sec_listeners:+,}${names[$i]}://127.0.0.1:${kafka_sec_ports[$i]}"
	done
	kafka_sec_protocols="SSL:SSL,MTLS:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"

	rm -rf "$tls"
	mkdir -p "$tls"
	kafka_certs "$tls" >"$tls/openssl.log" 2>&1 || {
		svc_log "kafka: making the test certificates failed:"
		cat "$tls/openssl.log" >&2
		return 1
	}
	scram_pw=$(openssl rand -hex 12)
	plain_pw=$(openssl rand -hex 12)
	printf '%s\n' "$scram_pw" >"$tls/scram-password"
	printf '%s\n' "$plain_pw" >"$tls/plain-password"
	kafka_sec_scram_args=(
		--add-scram "SCRAM-SHA-256=[name=twice_scram,password=$scram_pw]"
		--add-scram "SCRAM-SHA-512=[name=twice_scram,password=$scram_pw]"
	)
	cat >"$dir/security.env" <<ENV
export TWICE_KAFKA_TLS_BROKERS=127.0.0.1:${kafka_sec_ports[0]}
export TWICE_KAFKA_MTLS_BROKERS=127.0.0.1:${kafka_sec_ports[1]}
export TWICE_KAFKA_SASL_SSL_BROKERS=127.0.0.1:${kafka_sec_ports[2]}
export TWICE_KAFKA_SASL_BROKERS=127.0.0.1:${kafka_sec_ports[3]}
export TWICE_KAFKA_CA_FILE=$tls/ca.pem
export TWICE_KAFKA_CLIENT_CERT=$tls/client.pem
export TWICE_KAFKA_CLIENT_KEY=$tls/client.key
export TWICE_KAFKA_SCRAM_USER=twice_scram
export TWICE_KAFKA_SCRAM_PASSWORD=$scram_pw
export TWICE_KAFKA_PLAIN_USER=twice_plain
export TWICE_KAFKA_PLAIN_PASSWORD=$plain_pw
ENV
}

# kafka_certs DIR: a CA, and server and client certificates it signs.
kafka_certs() {
	local d=$1 ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
	openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.pem" -days 30 \
		-subj "/CN=twice test CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
	openssl req "${ec[@]}" -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost"
	printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" >"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 30 -extfile "$d/server.ext" -out "$d/server.pem"
	openssl req "${ec[@]}" -keyout "$d/client.key" -out "$d/client.csr" -subj "/CN=twice-client"
	printf '%s\n' "extendedKeyUsage=clientAuth" >"$d/client.ext"
	openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
		-days 30 -extfile "$d/client.ext" -out "$d/client.pem"
	# Kafka's PEM key store: the key (PKCS#8, unencrypted) and the chain.
	cat "$d/server.key" "$d/server.pem" >"$d/server-keystore.pem"
	chmod 600 "$d"/*.key "$d/server-keystore.pem"
}

kafka_security_properties() {
	local tls=$1/tls l plain_pw
	plain_pw=$(<"$tls/plain-password")
	cat <<PROPS
# TLS and SASL listeners (kafka/security.sh).
ssl.keystore.type=PEM
ssl.keystore.location=$tls/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
listener.name.mtls.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
PROPS
	for l in sasl_ssl sasl_plaintext; do
		cat <<PROPS
listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_twice_plain="$plain_pw";
listener.name.$l.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.$l.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
PROPS
	done
}

# kafka_security_ready DIR PID: the broker opens every listener once it is
# ready on PLAINTEXT; this waits (up to 30 s) until each accepts a
# connection, and fails at once if the broker exits.
kafka_security_ready() {
	local dir=$1 pid=$2 p deadline=$((SECONDS + 30))
	for p in "${kafka_sec_ports[@]}"; do
		until (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
			if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
				svc_log "kafka: listener on 127.0.0.1:$p does not accept connections"
				return 1
			fi
			sleep 0.1
		done
	done
}
