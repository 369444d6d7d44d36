-- twice on a ClickHouse cluster: run on every node (ON CLUSTER does it from
-- one). Replace {cluster} with your cluster's name; {shard} and {replica}
-- are the usual macros of each server's config.
--
-- Local tables are ReplicatedMergeTree, with the columns of the
-- single-server schema (migrations/); the Distributed tables in front of
-- them shard events by job: cityHash64(coalesce(job_id, entity,
-- effect_key)) keeps every event of one job on one shard (an effect without
-- job_id goes by its entity, else its effect key). Point twice at the
-- Distributed tables:
--
--   clickhouse.Options{Tables: clickhouse.Tables{Events: "twice_events_all",
--       Malformed: "twice_malformed_all", Findings: "twice_findings_all"}}
--
-- The audit SQL runs unchanged over them.

CREATE TABLE IF NOT EXISTS twice_events_local ON CLUSTER '{cluster}'
(
    identity   UInt64,
    pos        UInt64,
    ts         DateTime64(9, 'UTC'),
    kind       Enum8('job.enqueued' = 1, 'job.started' = 2, 'job.succeeded' = 3, 'job.failed' = 4,
                     'job.dead' = 5, 'job.discarded' = 6, 'effect' = 7, 'state' = 8),
    id         String,
    source     LowCardinality(String),
    line       Int64,
    queue      LowCardinality(String),
    job_type   LowCardinality(String),
    job_id     String,
    key        String,
    effect     LowCardinality(String),
    effect_key String,
    entity     String,
    error      String,
    attempt    Nullable(Int64),
    seq        Nullable(Int64),
    terminal   Nullable(Bool),
    retry      Nullable(Bool),
    attrs      String,
    attrs_flat Map(String, String)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/twice_events_local', '{replica}')
PARTITION BY toYYYYMM(ts)
ORDER BY (toStartOfHour(ts), identity);

CREATE TABLE IF NOT EXISTS twice_events_all ON CLUSTER '{cluster}' AS twice_events_local
ENGINE = Distributed('{cluster}', currentDatabase(), twice_events_local,
    cityHash64(coalesce(nullIf(job_id, ''), nullIf(entity, ''), effect_key)));

CREATE TABLE IF NOT EXISTS twice_malformed_local ON CLUSTER '{cluster}'
(
    pos    UInt64,
    source LowCardinality(String),
    line   Int64,
    reason String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/twice_malformed_local', '{replica}')
ORDER BY pos;

CREATE TABLE IF NOT EXISTS twice_malformed_all ON CLUSTER '{cluster}' AS twice_malformed_local
ENGINE = Distributed('{cluster}', currentDatabase(), twice_malformed_local, cityHash64(source, line));

CREATE TABLE IF NOT EXISTS twice_findings_local ON CLUSTER '{cluster}'
(
    audited_at  DateTime64(3, 'UTC'),
    since       Nullable(DateTime64(9, 'UTC')),
    until       Nullable(DateTime64(9, 'UTC')),
    detector    LowCardinality(String),
    severity    LowCardinality(String),
    subject     String,
    fingerprint String,
    count       Int64,
    first_ts    DateTime64(9, 'UTC'),
    last_ts     DateTime64(9, 'UTC'),
    jobs        Array(String),
    events      Array(String),
    cause       LowCardinality(String),
    message     String,
    details     String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/twice_findings_local', '{replica}', audited_at)
PARTITION BY toYYYYMM(last_ts)
ORDER BY (detector, fingerprint);

CREATE TABLE IF NOT EXISTS twice_findings_all ON CLUSTER '{cluster}' AS twice_findings_local
ENGINE = Distributed('{cluster}', currentDatabase(), twice_findings_local, cityHash64(fingerprint));
