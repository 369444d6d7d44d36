package clickhouse

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change: migrations/NNNN_name.sql.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "migrations/"), ".sql")
		v, name, ok := strings.Cut(base, "_")
		ver, err := strconv.Atoi(v)
		if !ok || err != nil || ver <= 0 {
			return nil, fmt.Errorf("clickhouse: migration %s: want NNNN_name.sql", n)
		}
		if len(out) > 0 && out[len(out)-1].Version == ver {
			return nil, fmt.Errorf("clickhouse: two migrations have version %d", ver)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: ver, Name: name, Statements: SplitStatements(string(b))})
	}
	return out, nil
}

// SplitStatements splits SQL text into statements at semicolons outside
// quotes and comments, dropping comments and empty statements.
func SplitStatements(sql string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if s := strings.TrimSpace(b.String()); s != "" {
			out = append(out, s)
		}
		b.Reset()
	}
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += 2 + end + 1
			}
			b.WriteByte(' ')
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(sql) && sql[j] != c {
				if sql[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(sql) {
				j = len(sql) - 1
			}
			b.WriteString(sql[i : j+1])
			i = j
		case c == ';':
			flush()
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return out
}

// Migrate creates the tables, or upgrades them: it applies, in order, the
// embedded migrations not yet recorded in twice_migrations, and records
// each. It is idempotent (every statement is, too, so two migrators racing
// do no harm). With Options.Retention set it then sets the TTL.
//
// Migrations create the default table names; a Store using other names
// (Distributed tables of a cluster) is migrated with the DDL of cluster/.
func (s *Store) Migrate(ctx context.Context) error {
	if s.conn == nil {
		return errClosed
	}
	if err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS twice_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime DEFAULT now()
)
ENGINE = MergeTree
ORDER BY version`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM twice_migrations")
	if err != nil {
		return fmt.Errorf("clickhouse: read twice_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[int(v)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	ms, err := Migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		for _, st := range m.Statements {
			if err := s.exec(ctx, st); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
		}
		if err := s.conn.Exec(ctx, "INSERT INTO twice_migrations (version, name) VALUES (?, ?)", uint32(m.Version), m.Name); err != nil {
			return fmt.Errorf("clickhouse: record migration %d: %w", m.Version, err)
		}
	}
	if s.opts.Retention > 0 {
		return s.SetRetention(ctx, s.opts.Retention)
	}
	return nil
}

// Version returns the highest applied migration, 0 when none.
func (s *Store) Version(ctx context.Context) (int, error) {
	var v uint32
	row := s.conn.QueryRow(ctx, "SELECT max(version) FROM twice_migrations")
	if err := row.Scan(&v); err != nil {
		return 0, fmt.Errorf("clickhouse: %w", err)
	}
	return int(v), nil
}
