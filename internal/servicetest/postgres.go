package servicetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvPostgresURL is what `scripts/services up postgres` exports: the URL of
// the shared test server's superuser (trust authentication on loopback).
const EnvPostgresURL = "POSTGRES_URL"

// postgresTimeout bounds each setup and cleanup step against Postgres.
const postgresTimeout = 30 * time.Second

// PostgresURL returns the superuser URL of the shared test server
// (POSTGRES_URL). When it is unset the test is skipped, or fails under
// TWICE_REQUIRE_SERVICES=1.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := strings.TrimSpace(os.Getenv(EnvPostgresURL))
	if u == "" {
		unavailable(tb, "postgres", EnvPostgresURL)
	}
	return u
}

// Postgres creates a new, empty database on the shared test server that
// belongs to tb, and drops it (closing its connections) when tb ends. It
// returns the superuser's URL of that database.
func Postgres(tb testing.TB) string {
	tb.Helper()
	admin := PostgresURL(tb)
	name := postgresName(tb, "t")
	postgresExec(tb, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	tb.Cleanup(func() {
		postgresExec(tb, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return postgresWithDatabase(tb, admin, name)
}

// PostgresRole creates a login role of tb's own that may only connect to
// the database of dbURL (a URL from Postgres) and returns a URL of that
// database that logs in as it. The test grants it what it needs, as the
// superuser of dbURL; the role is dropped when tb ends, after its grants.
func PostgresRole(tb testing.TB, dbURL string) string {
	tb.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		tb.Fatalf("servicetest: Postgres URL %q: %v", dbURL, err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	role := postgresName(tb, "r")
	password := postgresName(tb, "p")
	postgresExec(tb, dbURL, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'; GRANT CONNECT ON DATABASE %s TO %s",
		pgx.Identifier{role}.Sanitize(), password, pgx.Identifier{db}.Sanitize(), pgx.Identifier{role}.Sanitize()))
	tb.Cleanup(func() {
		// The database may be gone already (Postgres's cleanup runs
		// after this one only when it was registered first).
		ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dbURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP OWNED BY "+pgx.Identifier{role}.Sanitize())
			_ = conn.Close(ctx)
		}
		postgresExec(tb, PostgresURL(tb), "DROP ROLE IF EXISTS "+pgx.Identifier{role}.Sanitize())
	})
	u.User = url.UserPassword(role, password)
	return u.String()
}

// postgresExec runs sql on rawURL, failing tb on an error.
func postgresExec(tb testing.TB, rawURL, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), postgresTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		tb.Fatalf("servicetest: connect to Postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("servicetest: Postgres %q: %v", sql, err)
	}
}

// postgresWithDatabase returns rawURL with its database set to name.
func postgresWithDatabase(tb testing.TB, rawURL, name string) string {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("servicetest: %s %q: %v", EnvPostgresURL, rawURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// postgresName is uniqueName made a short lower-case Postgres identifier
// (at most 63 bytes): kind, "_", the test's name cut to 40, "_", 12 hex.
func postgresName(tb testing.TB, kind string) string {
	tb.Helper()
	n := strings.ToLower(uniqueName(tb))
	cut := strings.LastIndexByte(n, '-')
	base, suffix := n[:cut], n[cut+1:]
	base = strings.ReplaceAll(base, "-", "_")
	if len(base) > 40 {
		base = base[:40]
	}
	return kind + "_" + base + "_" + suffix
}
