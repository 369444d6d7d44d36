// Package servicetest gives tests the real servers that scripts/services
// starts, each test isolated in its own topic and consumer group:
//
//	eval "$(scripts/services up kafka)"   # from the repo root
//	go test ./...
//
// A test that needs a server it was not given skips, with the reason in its
// output; with TWICE_REQUIRE_SERVICES=1 (scripts/test sets it) it fails
// instead, so CI never passes by skipping.
package servicetest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// EnvRequire set to 1 turns a missing server from a skip into a failure.
const EnvRequire = "TWICE_REQUIRE_SERVICES"

// unavailable ends tb because the service's address variable env is unset.
func unavailable(tb testing.TB, service, env string) {
	tb.Helper()
	msg := env + ` is not set: start ` + service + ` with eval "$(scripts/services up ` + service + `)" from the repo root`
	if os.Getenv(EnvRequire) == "1" {
		tb.Fatalf("%s (%s=1 requires it)", msg, EnvRequire)
	}
	tb.Skipf("skipped: %s", msg)
}

// addrs splits a comma-separated list of host:port, dropping blanks.
func addrs(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// uniqueName is tb.Name() reduced to [A-Za-z0-9_-], at most 100 characters,
// then "-" and 12 random hex digits: valid as a Kafka topic, a group id and a
// ClickHouse identifier (quoted), and never reused.
func uniqueName(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	for _, r := range tb.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		tb.Fatalf("servicetest: random name: %v", err)
	}
	return b.String() + "-" + hex.EncodeToString(suffix[:])
}
