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
# shellcheck source=../lib/npm-harness.sh
. "$root/scripts/lib/npm-harness.sh"
npm_harness schemaregistry "$root/integrations/schemaregistry" "${TWICE_SCHEMAREGISTRY_MODULES:-$root/.services/node/schemaregistry}" @kafkajs/confluent-schema-registry
