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
# shellcheck source=../lib/npm-harness.sh
. "$root/scripts/lib/npm-harness.sh"
npm_harness bullmq "$root/collectors/bullmq/testdata/harness" "${TWICE_BULLMQ_MODULES:-$root/.services/node/bullmq}" bullmq
