#!/usr/bin/env bash
# promtool, which the deploy package's tests run over the alerting rules
# in deploy/prometheus (`promtool check rules` and `promtool test rules`).
# It comes with Debian's prometheus package; only promtool is used. The
# package would start a Prometheus server on install: a policy-rc.d that
# refuses every service start is put in place for the install (unless one
# is there already), and under systemd the service is stopped and
# disabled, so nothing keeps running or binds port 9090.
# Installed only when missing; the apt package lists are refreshed only
# when the install fails without it. scripts/test runs it before `go test`.
#
#   scripts/deps.d/prometheus.sh      # prints nothing on stdout; progress on stderr
set -euo pipefail
log() { printf 'deps prometheus: %s\n' "$*" >&2; }

command -v promtool >/dev/null && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	log "promtool is missing; install Debian's prometheus package"
	exit 1
fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# put by twice scripts/deps.d/prometheus.sh for one install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

log "installing prometheus (for promtool) with apt-get"
install() { DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends prometheus >&2; }
if ! install; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
	install
fi

# Under systemd the package enables the service (started at the next boot,
# or now by a service manager that ignores policy-rc.d): stop and disable
# it, only promtool is wanted.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
	log "stopping and disabling the prometheus service the package installed"
	systemctl disable --now prometheus >&2 || true
fi

command -v promtool >/dev/null || { log "prometheus installed, but no promtool on the PATH"; exit 1; }
