#!/usr/bin/env bash
# What the reports package's HTML test opens the report in, as a reader
# does: Debian's chromium, driven headless over the DevTools protocol by
# github.com/chromedp/chromedp (a Go module, fetched by go test). Installed
# only when missing; the apt package lists are refreshed only when the
# install fails without them. scripts/test runs it before `go test`.
#
#   scripts/deps.d/chromium.sh     # prints nothing on stdout; progress on stderr
set -euo pipefail
log() { printf 'deps chromium: %s\n' "$*" >&2; }

have() { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }

if ! have; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "chromium is missing; install Debian's chromium package"
		exit 1
	fi
	log "installing chromium with apt-get"
	install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2; }
	if ! install; then
		apt-get update -qq >&2
		install
	fi
	have || { log "chromium installed, but not on the PATH"; exit 1; }
fi
