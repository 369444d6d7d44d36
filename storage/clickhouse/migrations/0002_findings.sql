-- Findings of audits, the latest per detector and fingerprint (an audit
-- that finds the same problem again replaces the row when parts merge).
CREATE TABLE IF NOT EXISTS twice_findings
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
    details     String COMMENT 'JSON object'
)
ENGINE = ReplacingMergeTree(audited_at)
PARTITION BY toYYYYMM(last_ts)
ORDER BY (detector, fingerprint);
