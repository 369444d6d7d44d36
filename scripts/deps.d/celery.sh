#!/usr/bin/env bash
# Python packages for the celery tap's tests: Debian's python3-celery (5.2.6
# on Debian 12, the Celery the issue observed: task.multi batches, Python
# literal args), with python3-kombu 5.2.4, python3-amqp 5.1.1 (the RabbitMQ
# transport) and python3-redis 4.3.4 (the Redis transport), for Debian's own
# /usr/bin/python3 (a pyenv python3 on the PATH does not see them: the tests
# run /usr/bin/python3 -m celery). Debian's packages rather than PyPI's: the
# versions are pinned by the distribution, install offline from its mirror
# and need no virtualenv. Installed with apt-get only when missing; the
# package lists are refreshed only when the install fails without it.
# scripts/test runs it before `go test`.
#
#   scripts/deps.d/celery.sh       # prints nothing on stdout; progress on stderr
set -euo pipefail
log() { printf 'deps celery: %s\n' "$*" >&2; }

py=/usr/bin/python3
have() {
	[ -x "$py" ] && "$py" -c 'import celery, kombu, amqp, redis' 2>/dev/null
}
have && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	log "celery is missing; install Debian's python3-celery, python3-amqp and python3-redis packages"
	exit 1
fi
log "installing python3-celery, python3-amqp and python3-redis with apt-get"
install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		python3-celery python3-kombu python3-amqp python3-redis >&2
}
if ! install; then
	apt-get update -qq >&2
	install
fi
have || { log "python3-celery installed, but $py cannot import celery, kombu, amqp and redis"; exit 1; }
log "celery $("$py" -c 'import celery; print(celery.__version__)') installed"
