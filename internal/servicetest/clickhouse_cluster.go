package servicetest

import (
	"net/url"
	"os"
	"strings"
	"testing"
)

// The variables `scripts/services up clickhouse_cluster` exports: the
// native and the HTTP DSNs of the shards (comma-separated, shard 1
// first) and the cluster's name in their remote_servers.
const (
	EnvClickHouseClusterDSNs     = "CLICKHOUSE_CLUSTER_DSNS"
	EnvClickHouseClusterHTTPDSNs = "CLICKHOUSE_CLUSTER_HTTP_DSNS"
	EnvClickHouseCluster         = "CLICKHOUSE_CLUSTER"
)

// ClickHouseCluster creates a database of tb's own, of one name, on every
// shard of the test cluster, drops it when tb ends, and returns the
// cluster's name and the shards' native and HTTP DSNs pointing at it
// (shard 1 first). When the cluster's variables are unset the test is
// skipped, or fails under TWICE_REQUIRE_SERVICES=1.
func ClickHouseCluster(tb testing.TB) (cluster string, native, httpDSNs []string) {
	tb.Helper()
	native = addrs(os.Getenv(EnvClickHouseClusterDSNs))
	httpDSNs = addrs(os.Getenv(EnvClickHouseClusterHTTPDSNs))
	cluster = strings.TrimSpace(os.Getenv(EnvClickHouseCluster))
	if len(native) == 0 || len(native) != len(httpDSNs) || cluster == "" {
		unavailable(tb, "clickhouse_cluster", EnvClickHouseClusterDSNs)
	}
	name := strings.ReplaceAll(uniqueName(tb), "-", "_")
	for i, h := range httpDSNs {
		if err := clickhouseHTTP(h, "CREATE DATABASE `"+name+"`"); err != nil {
			tb.Fatalf("servicetest: create database %s on shard %d: %v", name, i+1, err)
		}
		tb.Cleanup(func() {
			if err := clickhouseHTTP(h, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
				tb.Errorf("servicetest: drop database %s on shard %d: %v", name, i+1, err)
			}
		})
		for _, l := range [][]string{native, httpDSNs} {
			u, err := url.Parse(l[i])
			if err != nil {
				tb.Fatalf("servicetest: DSN %q: %v", l[i], err)
			}
			u.Path = "/" + name
			l[i] = u.String()
		}
	}
	return cluster, native, httpDSNs
}
