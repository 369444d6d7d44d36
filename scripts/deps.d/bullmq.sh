#!/usr/bin/env bash
# Node packages for the bullmq tap's tests: the real bullmq (6.7, pinned by
# collectors/bullmq/testdata/harness/package-lock.json) and ioredis, installed
# with `npm ci` into .services/node/bullmq (gitignored). Runs again only when
# the lock file changed. scripts/test runs it before `go test`; the tests find
# the packages there (or in $TWICE_BULLMQ_MODULES).
#
#   scripts/deps.d/bullmq.sh        # prints nothing on stdout; progress on stderr
#
# Needs node and npm (Debian's nodejs and npm packages, installed with apt-get
# when missing and running as root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
harness=$root/collectors/bullmq/testdata/harness
dest=${TWICE_BULLMQ_MODULES:-$root/.services/node/bullmq}
log() { printf 'deps bullmq: %s\n' "$*" >&2; }

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

sum=$(cat "$harness/package.json" "$harness/package-lock.json" | sha256sum | cut -c1-16)
if [ -f "$dest/.installed" ] && [ "$(<"$dest/.installed")" = "$sum" ] && [ -d "$dest/node_modules/bullmq" ]; then
	exit 0
fi
log "npm ci into $dest"
rm -rf "$dest"
mkdir -p "$dest"
cp "$harness/package.json" "$harness/package-lock.json" "$dest/"
# --ignore-scripts: msgpackr's optional native speed-up is not needed.
(cd "$dest" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
printf '%s\n' "$sum" >"$dest/.installed"
log "bullmq $(node -p "require('$dest/node_modules/bullmq/package.json').version") installed"
