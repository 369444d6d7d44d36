// Package cluster holds the DDL for running twice on a ClickHouse cluster:
// ReplicatedMergeTree tables on every shard and Distributed tables in front
// of them, sharded so that each job's events stay together. See
// cluster.sql; the audit runs unchanged over the Distributed tables.
package cluster

import _ "embed"

// DDL is cluster.sql.
//
//go:embed cluster.sql
var DDL string
