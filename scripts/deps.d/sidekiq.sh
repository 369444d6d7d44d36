#!/usr/bin/env bash
# Ruby packages for the sidekiq tap's tests: Debian's ruby-sidekiq (6.4.1 on
# Debian 12), which brings ruby, ruby-redis and ruby-connection-pool, and
# ruby-redis-namespace (for the namespace: key); minitest comes with ruby.
# Installed with apt-get only when missing; the package lists are refreshed
# only when the install fails without it.
# scripts/test runs it before `go test`.
#
#   scripts/deps.d/sidekiq.sh       # prints nothing on stdout; progress on stderr
set -euo pipefail
log() { printf 'deps sidekiq: %s\n' "$*" >&2; }

have() {
	command -v sidekiq >/dev/null && ruby -e 'require "sidekiq"; require "redis/namespace"; require "minitest"' 2>/dev/null
}
have && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	log "sidekiq is missing; install Debian's ruby-sidekiq and ruby-redis-namespace packages"
	exit 1
fi
log "installing ruby-sidekiq and ruby-redis-namespace with apt-get"
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ruby-sidekiq ruby-redis-namespace >&2; }
if ! install; then
	apt-get update -qq >&2
	install
fi
have || { log "ruby-sidekiq installed, but ruby cannot load sidekiq"; exit 1; }
log "$(sidekiq --version 2>/dev/null || echo sidekiq) installed"
