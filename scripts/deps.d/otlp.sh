#!/usr/bin/env bash
# Packages for the otlp tap's tests. Python: the OpenTelemetry Python SDK,
# its OTLP/HTTP exporter and the Celery instrumentation, pinned by
# collectors/otlp/testdata/python/requirements.txt, installed from PyPI
# with pip --target into .services/python/otel (gitignored), for Debian's
# /usr/bin/python3 and its python3-celery (scripts/deps.d/celery.sh).
# Node: the real bullmq with bullmq-otel and the OpenTelemetry Node SDK,
# pinned by collectors/otlp/testdata/bullmq/package-lock.json, installed
# with `npm ci` into .services/node/otlp-bullmq (node and npm come with
# scripts/deps.d/bullmq.sh). Each runs again only when its pins changed.
# scripts/test runs it before `go test`; the tests find the packages there
# (or in $TWICE_OTEL_PYTHON and $TWICE_OTEL_NODE).
#
#   scripts/deps.d/otlp.sh         # prints nothing on stdout; progress on stderr
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
req=$root/collectors/otlp/testdata/python/requirements.txt
dest=${TWICE_OTEL_PYTHON:-$root/.services/python/otel}
log() { printf 'deps otlp: %s\n' "$*" >&2; }

# shellcheck source=../lib/npm-harness.sh
. "$root/scripts/lib/npm-harness.sh"
npm_harness otlp "$root/collectors/otlp/testdata/bullmq" "${TWICE_OTEL_NODE:-$root/.services/node/otlp-bullmq}" bullmq-otel

sum=$(sha256sum <"$req" | cut -c1-16)
if [ -f "$dest/.installed" ] && [ "$(<"$dest/.installed")" = "$sum" ]; then
	exit 0
fi
pip=(/usr/bin/python3 -m pip)
if ! "${pip[@]}" --version >/dev/null 2>&1; then
	if command -v pip3 >/dev/null; then
		pip=(pip3)
	else
		if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
			log "pip is missing; install Debian's python3-pip package"
			exit 1
		fi
		log "installing python3-pip with apt-get"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >&2 || {
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >&2
		}
	fi
fi
log "pip install --target $dest"
rm -rf "$dest"
mkdir -p "$dest"
# --python-version/--only-binary: wheels for Debian's Python 3.11 whichever
# pip runs them.
"${pip[@]}" install -q --disable-pip-version-check --no-warn-script-location --target "$dest" \
	--python-version 3.11 --only-binary=:all: -r "$req" >&2
printf '%s\n' "$sum" >"$dest/.installed"
