-- Normalized events, one row per valid line that twice read (spec §1),
-- copies included: identity and pos let every audit count the first copy
-- of an identity in input order (dedup on read), and the copies are what
-- summary.repeated_ids counts. A plain MergeTree on purpose: a
-- ReplacingMergeTree would drop copies whenever parts merge, so
-- repeated_ids would depend on merge timing.
CREATE TABLE IF NOT EXISTS twice_events
(
    identity   UInt64 COMMENT 'xxHash64 of id, or of the canonical content without id',
    pos        UInt64 COMMENT 'input position: increasing in the order the sink received events',
    ts         DateTime64(9, 'UTC'),
    kind       Enum8('job.enqueued' = 1, 'job.started' = 2, 'job.succeeded' = 3, 'job.failed' = 4,
                     'job.dead' = 5, 'job.discarded' = 6, 'effect' = 7, 'state' = 8),
    id         String COMMENT 'empty when the event had none',
    source     LowCardinality(String) COMMENT 'file, topic/partition: where it was read',
    line       Int64 COMMENT 'line or offset within source',
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
    attrs      String COMMENT 'raw JSON object, empty when absent',
    attrs_flat Map(String, String) COMMENT 'attrs paths (a.b) to their value as templates render it'
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (toStartOfHour(ts), identity);

-- Lines that were not valid events: they have no time, so they are kept by
-- input position and counted by audits that cover all time.
CREATE TABLE IF NOT EXISTS twice_malformed
(
    pos    UInt64,
    source LowCardinality(String),
    line   Int64,
    reason String
)
ENGINE = MergeTree
ORDER BY pos;
