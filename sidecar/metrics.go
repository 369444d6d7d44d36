package sidecar

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the sidecar's Prometheus metrics, registered on the registry
// the caller passes (no global registry).
type metrics struct {
	events        *prometheus.CounterVec
	malformed     *prometheus.CounterVec
	repeated      prometheus.Counter
	late          prometheus.Counter
	redelivered   *prometheus.CounterVec
	findings      *prometheus.GaugeVec
	revisions     *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	watermarkLag  prometheus.Gauge
	stateRecords  *prometheus.GaugeVec
	evicted       prometheus.Gauge
	checkpointDur prometheus.Histogram
	snapshotDur   prometheus.Histogram
	journalBytes  prometheus.Gauge
	checkpoints   prometheus.Counter
	publishErrors *prometheus.CounterVec
	stored        prometheus.Counter
	storeErrors   prometheus.Counter
	storeDropped  prometheus.Counter

	// What the state holds, and what the last start restored: a restart
	// after a crash says which path it took (tests drive kills by these).
	snapshots          prometheus.Counter
	journalCheckpoints prometheus.Gauge
	restoredSnapshot   prometheus.Gauge
	restoredJournal    prometheus.Gauge
	restoredUnpub      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_events_total", Help: "Events audited, by source and kind (repeats excluded).",
		}, []string{"source", "kind"}),
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_malformed_total", Help: "Messages that did not map to an event, by source and reason (at most 100 reasons a source, then \"(other)\").",
		}, []string{"source", "reason"}),
		repeated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_repeated_events_total", Help: "Events whose identity was already seen: counted once, dropped.",
		}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_late_events_total", Help: "Events that arrived after the watermark had passed their time; audited in arrival order.",
		}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_redelivered_total", Help: "Messages read again at an offset already taken (after a restart or a rebalance), skipped.",
		}, []string{"source"}),
		findings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twice_findings", Help: "Findings that stand now, by detector and severity.",
		}, []string{"detector", "severity"}),
		revisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_finding_revisions_total", Help: "Finding revisions emitted, by detector and status.",
		}, []string{"detector", "status"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twice_consumer_lag", Help: "Records behind the end of each lane (topic partition).",
		}, []string{"source", "lane"}),
		watermarkLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_watermark_delay_seconds", Help: "Wall clock minus the event time the detectors have reached.",
		}),
		stateRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twice_state_records", Help: "Records held by the detectors, by kind (jobs, effect_keys, entities).",
		}, []string{"kind"}),
		evicted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_state_evicted", Help: "Records dropped by a state cap since the state was created: coverage is reduced when above 0.",
		}),
		checkpointDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "twice_checkpoint_duration_seconds", Help: "Time to commit a checkpoint (journal, positions, outbox).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		snapshotDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "twice_snapshot_duration_seconds", Help: "Time to write a full snapshot of the detector state.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}),
		journalBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_journal_bytes", Help: "Compressed journal held since the last snapshot.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_checkpoints_total", Help: "Checkpoints committed.",
		}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twice_publish_errors_total", Help: "Failed attempts to publish findings, by sink; retried at the next checkpoint.",
		}, []string{"sink"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_store_events_total", Help: "Events written to the event store (ClickHouse).",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_store_errors_total", Help: "Failed attempts to prepare or write the event store; retried with backoff while the events wait in state_dir.",
		}),
		storeDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_store_dropped_total", Help: "Records audited that the event store will never get: the history in state_dir outgrew its cap while the store was behind.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twice_snapshots_total", Help: "Snapshots committed; each replaces the journal.",
		}),
		journalCheckpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_journal_checkpoints", Help: "Checkpoints committed with a journal since the last snapshot: what a restart replays on top of it.",
		}),
		restoredSnapshot: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_restored_snapshot", Help: "1 when this run started from a snapshot, 0 when from the journal alone or afresh.",
		}),
		restoredJournal: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twice_restored_journal_checkpoints", Help: "Journal checkpoints this run replayed when it started.",
		}),
		restoredUnpub: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "twice_restored_unpublished_revisions", Help: "Revisions the run before committed but did not record as published to the sink; this run published them at start (skipping those the sink held).",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.malformed, m.repeated, m.late, m.redelivered, m.findings,
			m.revisions, m.lag, m.watermarkLag, m.stateRecords, m.evicted, m.checkpointDur,
			m.snapshotDur, m.journalBytes, m.checkpoints, m.publishErrors, m.stored, m.storeErrors, m.storeDropped,
			m.snapshots, m.journalCheckpoints, m.restoredSnapshot, m.restoredJournal, m.restoredUnpub)
	}
	return m
}

// restored records what a start restored: the snapshot of meta (if any),
// the journal checkpoints replayed after it and, per sink, the revisions
// committed that the sink is not recorded to hold.
func (m *metrics) restored(mt *meta, journalCheckpoints int) {
	if mt.Snapshot != "" {
		m.restoredSnapshot.Set(1)
	}
	m.restoredJournal.Set(float64(journalCheckpoints))
	m.journalCheckpoints.Set(float64(journalCheckpoints))
	for sink, published := range mt.Published {
		m.restoredUnpub.WithLabelValues(sink).Set(float64(mt.NextSeq - 1 - published))
	}
}

// committed records a checkpoint committed: a snapshot, or one with a
// journal chunk, or neither (nothing taken since the last).
func (m *metrics) committed(snapshot, journal bool) {
	switch {
	case snapshot:
		m.snapshots.Inc()
		m.journalCheckpoints.Set(0)
	case journal:
		m.journalCheckpoints.Inc()
	}
}
