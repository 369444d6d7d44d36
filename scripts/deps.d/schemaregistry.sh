#!/usr/bin/env bash
# Node packages for the kafka source's Schema Registry tests: the real
# @kafkajs/confluent-schema-registry serializer and kafkajs, pinned by
# integrations/schemaregistry/package-lock.json, installed with `npm ci`
# into .services/node/schemaregistry (gitignored). Runs again only when the
# lock file changed. scripts/test runs it before `go test`; the tests find
# the packages there (or in $TWICE_SCHEMAREGISTRY_MODULES).
#
#   scripts/deps.d/schemaregistry.sh   # prints nothing on stdout; progress on stderr
#
# Needs node and npm (Debian's nodejs and npm packages, installed with apt-get
# when missing and running as root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
src=$root/integrations/schemaregistry
dest=${TWICE_SCHEMAREGISTRY_MODULES:-$root/.services/node/schemaregistry}
log() { printf 'deps schemaregistry: %s\n' "$*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "node and npm are missing; install Debian's nodejs and npm packages"
		exit 1
	fi
	log "installing nodejs and npm with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2 || {
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >&2
	}
fi

sum=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
if [ -f "$dest/.installed" ] && [ "$(<"$dest/.installed")" = "$sum" ] && [ -d "$dest/node_modules/@kafkajs/confluent-schema-registry" ]; then
	exit 0
fi
log "npm ci into $dest"
rm -rf "$dest"
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
printf '%s\n' "$sum" >"$dest/.installed"
log "@kafkajs/confluent-schema-registry $(node -p "require('$dest/node_modules/@kafkajs/confluent-schema-registry/package.json').version") installed"
