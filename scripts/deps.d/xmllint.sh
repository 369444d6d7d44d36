#!/usr/bin/env bash
# What the reports package's JUnit test reads its output with, as CI
# systems do: xmllint (Debian's libxml2-utils) validates it against the
# Jenkins JUnit schema in reports/testdata, and Python's junitparser (from
# PyPI, for the python3 on the PATH) parses it; markdown-it-py (PyPI)
# parses the markdown format as a CommonMark renderer with GFM tables
# does. Installed only when
# missing; the apt package lists are refreshed only when the install fails
# without it. scripts/test runs it before `go test`.
#
#   scripts/deps.d/xmllint.sh      # prints nothing on stdout; progress on stderr
set -euo pipefail
log() { printf 'deps xmllint: %s\n' "$*" >&2; }

if ! command -v xmllint >/dev/null; then
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		log "xmllint is missing; install Debian's libxml2-utils package"
		exit 1
	fi
	log "installing libxml2-utils with apt-get"
	install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libxml2-utils >&2; }
	if ! install; then
		apt-get update -qq >&2
		install
	fi
	command -v xmllint >/dev/null || { log "libxml2-utils installed, but no xmllint on the PATH"; exit 1; }
fi

if ! python3 -c 'import junitparser' 2>/dev/null; then
	log "installing junitparser with pip"
	python3 -m pip install -q 'junitparser>=5,<6' >&2
	python3 -c 'import junitparser' || { log "junitparser installed, but python3 cannot import it"; exit 1; }
fi

if ! python3 -c 'import markdown_it' 2>/dev/null; then
	log "installing markdown-it-py with pip"
	python3 -m pip install -q 'markdown-it-py>=3,<5' >&2
	python3 -c 'import markdown_it' || { log "markdown-it-py installed, but python3 cannot import it"; exit 1; }
fi
