package servicetest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// The variables `scripts/services up clickhouse` exports: the native and
// the HTTP DSN of the test server.
const (
	EnvClickHouseDSN     = "CLICKHOUSE_DSN"
	EnvClickHouseHTTPDSN = "CLICKHOUSE_HTTP_DSN"
)

// ClickHouseDSN returns the DSN of the test server for protocol "native"
// (clickhouse://) or "http" (http://). When its variable is unset the test
// is skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func ClickHouseDSN(tb testing.TB, protocol string) string {
	tb.Helper()
	env := EnvClickHouseDSN
	switch protocol {
	case "native":
	case "http":
		env = EnvClickHouseHTTPDSN
	default:
		tb.Fatalf("servicetest.ClickHouseDSN: protocol %q (want native or http)", protocol)
	}
	dsn := strings.TrimSpace(os.Getenv(env))
	if dsn == "" {
		unavailable(tb, "clickhouse", env)
	}
	return dsn
}

// ClickHouseDatabase creates a database of tb's own on the server of dsn,
// drops it when tb ends, and returns dsn pointing at it. It talks to the
// server over HTTP (CLICKHOUSE_HTTP_DSN), so that this package needs no
// ClickHouse client.
func ClickHouseDatabase(tb testing.TB, dsn string) string {
	tb.Helper()
	httpDSN := ClickHouseDSN(tb, "http")
	name := strings.ReplaceAll(uniqueName(tb), "-", "_")
	if err := clickhouseHTTP(httpDSN, "CREATE DATABASE `"+name+"`"); err != nil {
		tb.Fatalf("servicetest: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := clickhouseHTTP(httpDSN, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			tb.Errorf("servicetest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("servicetest: DSN %q: %v", dsn, err)
	}
	u.Path = "/" + name
	return u.String()
}

// clickhouseHTTP runs one statement through ClickHouse's HTTP interface.
func clickhouseHTTP(dsn, query string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	endpoint := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/"}
	if u.User != nil {
		endpoint.User = u.User
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(query))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
