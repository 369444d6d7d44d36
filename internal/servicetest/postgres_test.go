package servicetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPostgresDatabaseAndRole gives an inner test a database and a role,
// checks that the role can read only what it was granted, and finds both
// gone once the inner test ended.
func TestPostgresDatabaseAndRole(t *testing.T) {
	admin := PostgresURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var db, role string
	t.Run("inner", func(t *testing.T) {
		dbURL := Postgres(t)
		db = mustConnectInfo(t, dbURL).Database
		roleURL := PostgresRole(t, dbURL)
		role = mustConnectInfo(t, roleURL).User
		if len(db) > 63 || len(role) > 63 {
			t.Fatalf("names longer than Postgres keeps: %q %q", db, role)
		}
		super := connect(ctx, t, dbURL)
		defer super.Close(ctx)
		for _, sql := range []string{
			"CREATE TABLE granted (id int)", "INSERT INTO granted VALUES (1)",
			"CREATE TABLE secret (id int)",
			"GRANT SELECT ON granted TO " + pgx.Identifier{role}.Sanitize(),
		} {
			if _, err := super.Exec(ctx, sql); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		ro := connect(ctx, t, roleURL)
		defer ro.Close(ctx)
		var n int
		if err := ro.QueryRow(ctx, "SELECT count(*) FROM granted").Scan(&n); err != nil || n != 1 {
			t.Errorf("read a granted table: n=%d err=%v", n, err)
		}
		if _, err := ro.Exec(ctx, "SELECT * FROM secret"); err == nil {
			t.Error("the role read a table it was not granted")
		}
		if _, err := ro.Exec(ctx, "INSERT INTO granted VALUES (2)"); err == nil {
			t.Error("the role wrote to a table it may only read")
		}
	})
	conn := connect(ctx, t, admin)
	defer conn.Close(ctx)
	var dbs, roles int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db).Scan(&dbs); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_roles WHERE rolname = $1", role).Scan(&roles); err != nil {
		t.Fatal(err)
	}
	if db == "" || role == "" || dbs != 0 || roles != 0 {
		t.Errorf("after the test: database %q left %d, role %q left %d", db, dbs, role, roles)
	}
}

func mustConnectInfo(t *testing.T, rawURL string) *pgx.ConnConfig {
	t.Helper()
	c, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func connect(ctx context.Context, t *testing.T, rawURL string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
