package clickhouse

import (
	"context"

	"fmt"
	ch "github.com/ClickHouse/clickhouse-go/v2"
	"math/big"
	"sort"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	scrub "github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/twicetype"
)

// AuditOptions say what to audit.
type AuditOptions struct {
	// Config gives the expectation rules, the detectors' settings and the
	// redacted fields; nil means the defaults of the spec (no rules).
	Config *config.Config
	// Since and Until bound the audit to events with Since <= ts < Until;
	// a zero time leaves that side open. Malformed lines, which have no
	// time, are reported only when both are zero.
	Since, Until time.Time
}

// Audit runs the enabled detectors of spec §2 as SQL inside ClickHouse over
// the events of the range and returns the report: only findings and the
// summary's counts cross the wire, never the events.
//
// It matches the in-process engine (`twice audit` of the same events as
// JSON Lines) field for field when the engine sorts its input exactly
// (unbounded lateness, a reorder buffer as large as the input) and keeps
// state for the whole input (a horizon longer than the input spans): SQL
// sees the whole range at once, so it has no horizon. What is done in Go,
// and why: messages and details are formatted here (Go's duration and
// float formatting, and redaction, are the engine's own code, which SQL
// would have to imitate); findings of one subject are merged by
// fingerprint here, with the engine's merge rules, from the few rows SQL
// returns per finding.
//
// Impact (twice.yaml impact) is not computed here: the SQL does not read
// amounts, currencies or customers from attrs, so duplicate-effect
// findings carry no details amount, currency or customers and
// Report.Impact stays nil; `twice audit` of the events computes it.
func (s *Store) Audit(ctx context.Context, o AuditOptions) (*twicetype.Report, error) {
	if s.conn == nil {
		return nil, errClosed
	}
	// Over Distributed tables the IN and JOIN subqueries of the audit read
	// Distributed tables too: GLOBAL makes each run once, on the
	// initiator. It changes nothing on one server.
	ctx = ch.Context(ctx, ch.WithSettings(ch.Settings{"distributed_product_mode": "global"}))
	cfg := o.Config
	if cfg == nil {
		cfg = config.Default()
	}
	settings := detectors.DefaultSettings()
	for id, st := range cfg.Detectors {
		settings[id] = st
	}
	var rules []ruleSQL
	for _, r := range cfg.Expect {
		v, c, at, err := templateSQL(r.EffectKey)
		if err != nil {
			return nil, err
		}
		count := r.Count
		if count <= 0 {
			count = 1
		}
		rules = append(rules, ruleSQL{jobTypeName: r.JobType, effect: r.Effect, value: v, cond: c, at: at, within: r.Within, count: count})
	}
	redact := audit.Redactor(cfg.Redact)
	redactID := false
	for _, f := range cfg.Redact {
		if f == "id" {
			redactID = true
		}
	}
	var since, until int64
	if !o.Since.IsZero() {
		since = o.Since.UnixNano()
	}
	if !o.Until.IsZero() {
		until = o.Until.UnixNano()
	}
	q := newQuerySet(s.tables.Events, since, until, !o.Since.IsZero(), !o.Until.IsZero(), redactID, rules)
	a := &auditRun{s: s, q: q, redact: redact, settings: settings, rules: cfg.Expect, fs: detectors.NewFindings()}
	drop, err := a.materialize(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()

	rep := &twicetype.Report{}
	if err := a.summary(ctx, &rep.Summary); err != nil {
		return nil, err
	}
	if o.Since.IsZero() && o.Until.IsZero() {
		if err := a.malformed(ctx, &rep.Summary); err != nil {
			return nil, err
		}
	}
	var enabled []string
	for _, id := range twicetype.DetectorIDs {
		if settings[id].Enabled {
			enabled = append(enabled, id)
		}
	}
	if rep.Summary.Events > 0 {
		for _, id := range enabled {
			if err := a.run(ctx, id); err != nil {
				return nil, fmt.Errorf("clickhouse: %s: %w", id, err)
			}
		}
		pq := q.pending(settings[twicetype.MissingEffect].Enabled, settings[twicetype.LostJob].Enabled, settings[twicetype.LostJob].LostAfter)
		if pq != "" {
			if err := s.conn.QueryRow(ctx, pq).Scan(&rep.Summary.Pending); err != nil {
				return nil, fmt.Errorf("clickhouse: pending: %w", err)
			}
		}
	}
	if len(rules) > 0 {
		if err := a.coverage(ctx, &rep.Summary); err != nil {
			return nil, err
		}
	}
	rep.Summary.Findings = a.fs.Counts(enabled)
	rep.Findings = a.fs.Sorted()
	if rep.Summary.Events > 0 {
		counts, err := a.scoreCounts(ctx)
		if err != nil {
			return nil, err
		}
		rep.Scorecard = detectors.Scorecard(counts, rep.Findings)
	}
	if !cfg.KeepEmails {
		// As the engine does (package redact): addresses never reach a
		// report or the findings table unless redact_emails: false.
		scrub.Report(rep)
	}
	return rep, nil
}

type auditRun struct {
	s        *Store
	q        *querySet
	redact   func(field, value string) string
	settings map[string]detectors.Settings
	rules    []config.Rule
	fs       *detectors.Findings
}

func (a *auditRun) show(field, v string) string {
	if a.redact == nil || v == "" {
		return v
	}
	return a.redact(field, v)
}

func (a *auditRun) showQueue(q string) string {
	if q == "(none)" {
		return q
	}
	return a.show("queue", q)
}

func (a *auditRun) jobLabel(jobType, id string) string {
	if jobType == "" {
		return "job " + a.show("job_id", id)
	}
	return a.show("job_type", jobType) + " " + a.show("job_id", id)
}

// label sets a finding's job_type and queue: its first job's (spec §5).
func (a *auditRun) label(f *twicetype.Finding, jobType, queue string) {
	f.JobType, f.Queue = a.show("job_type", jobType), a.show("queue", queue)
}

func (a *auditRun) base(id string) *twicetype.Finding {
	return &twicetype.Finding{Detector: id, Severity: a.settings[id].Severity}
}

func (a *auditRun) summary(ctx context.Context, sum *twicetype.Summary) error {
	var raw uint64
	var events, effects, jobs uint64
	var from, to int64
	if err := a.s.conn.QueryRow(ctx, a.q.summary()).Scan(&raw, &events, &effects, &jobs, &from, &to); err != nil {
		return fmt.Errorf("clickhouse: summary: %w", err)
	}
	sum.Events, sum.RepeatedIDs, sum.Effects, sum.Jobs = int64(events), int64(raw-events), int64(effects), int64(jobs)
	if events > 0 {
		sum.From, sum.To = from, to
	}
	return nil
}

// coverage sets Summary.Rules: per rule, the jobs of its job_type and
// those its template renders for.
func (a *auditRun) coverage(ctx context.Context, sum *twicetype.Summary) error {
	var jobs, rendered []int64
	if err := a.s.conn.QueryRow(ctx, a.q.coverage()).Scan(&jobs, &rendered); err != nil {
		return fmt.Errorf("clickhouse: rule coverage: %w", err)
	}
	if len(jobs) != len(a.rules) || len(rendered) != len(a.rules) {
		return fmt.Errorf("clickhouse: rule coverage: %d and %d counts for %d rules", len(jobs), len(rendered), len(a.rules))
	}
	sum.Rules = make([]twicetype.RuleCoverage, len(jobs))
	for i := range jobs {
		sum.Rules[i] = twicetype.RuleCoverage{Jobs: jobs[i], Rendered: rendered[i]}
	}
	return nil
}

func (a *auditRun) malformed(ctx context.Context, sum *twicetype.Summary) error {
	var n uint64
	if err := a.s.conn.QueryRow(ctx, "SELECT count() FROM "+a.s.tables.Malformed).Scan(&n); err != nil {
		return fmt.Errorf("clickhouse: malformed: %w", err)
	}
	sum.Malformed = int64(n)
	if n == 0 {
		return nil
	}
	rows, err := a.s.conn.Query(ctx, fmt.Sprintf("SELECT source, line, reason FROM %s ORDER BY pos LIMIT %d",
		a.s.tables.Malformed, twicetype.MaxMalformedLines))
	if err != nil {
		return fmt.Errorf("clickhouse: malformed: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m twicetype.Malformed
		if err := rows.Scan(&m.Source, &m.Line, &m.Reason); err != nil {
			return err
		}
		sum.MalformedLines = append(sum.MalformedLines, m)
	}
	return rows.Err()
}

// rawFinding is one finding as a detector adds it, before merging by
// fingerprint; order is where the engine would have added it.
type rawFinding struct {
	rawSubject string
	f          *twicetype.Finding
	order      []orderKey
}

type orderKey struct {
	big *big.Int
	n   int64
}

func bigOrd(s string) orderKey {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		b = new(big.Int)
	}
	return orderKey{big: b}
}

func lessOrder(a, b []orderKey) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		if x.big != nil && y.big != nil {
			if c := x.big.Cmp(y.big); c != 0 {
				return c < 0
			}
			continue
		}
		if x.n != y.n {
			return x.n < y.n
		}
	}
	return len(a) < len(b)
}

func (a *auditRun) run(ctx context.Context, id string) error {
	st := a.settings[id]
	var raws []rawFinding
	var err error
	switch id {
	case twicetype.DuplicateEffect:
		raws, err = a.duplicateEffect(ctx, st)
	case twicetype.MissingEffect:
		if len(a.rules) == 0 {
			return nil
		}
		raws, err = a.missingEffect(ctx)
	case twicetype.EffectBeforeFailure:
		raws, err = a.effectBeforeFailure(ctx)
	case twicetype.DuplicateExecution:
		raws, err = a.duplicateExecution(ctx)
	case twicetype.OutOfOrder:
		raws, err = a.outOfOrder(ctx)
	case twicetype.StaleExecution:
		raws, err = a.staleExecution(ctx, st)
	case twicetype.EffectAfterTerminal:
		raws, err = a.effectAfterTerminal(ctx)
	case twicetype.LostJob:
		raws, err = a.lostJob(ctx, st)
	case twicetype.RetryStorm:
		raws, err = a.retryStorm(ctx, st)
	case twicetype.DeadLetter:
		raws, err = a.deadLetter(ctx)
	}
	if err != nil {
		return err
	}
	sort.SliceStable(raws, func(i, k int) bool { return lessOrder(raws[i].order, raws[k].order) })
	for _, r := range raws {
		a.fs.Add(r.rawSubject, r.f)
	}
	return nil
}

func (a *auditRun) query(ctx context.Context, sql string, scan func(sc func(...any) error) error) error {
	rows, err := a.s.conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("%w\n%s", err, sql)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func fmtDur(ns int64) string { return time.Duration(ns).String() }

func (a *auditRun) duplicateEffect(ctx context.Context, st detectors.Settings) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.duplicateEffect(st.MaxPerKey), func(scan func(...any) error) error {
		var key, eff0 string
		var n, ft, lt int64
		var refs, jobs []string
		var replay uint8
		var jtype, jqueue string
		if err := scan(&key, &n, &ft, &lt, &refs, &eff0, &jobs, &replay, &jtype, &jqueue); err != nil {
			return err
		}
		cause := "unknown"
		switch {
		case len(jobs) == 0:
		case replay == 1:
			cause = "replay"
		case len(jobs) == 1:
			cause = "redelivery"
		default:
			cause = "duplicate-enqueue"
		}
		f := a.base(twicetype.DuplicateEffect)
		f.Subject = a.show("effect_key", key)
		f.Count = n
		f.FirstTime, f.LastTime = ft, lt
		for _, j := range jobs {
			f.Jobs = append(f.Jobs, a.show("job_id", j))
		}
		f.Events = refs
		f.Cause = cause
		a.label(f, jtype, jqueue)
		f.Message = fmt.Sprintf("%s %s happened %d times", a.show("effect", eff0), f.Subject, n)
		f.Details = map[string]any{"effect": a.show("effect", eff0), "max_per_key": int64(st.MaxPerKey)}
		out = append(out, rawFinding{rawSubject: key, f: f})
		return nil
	})
	return out, err
}

func (a *auditRun) missingEffect(ctx context.Context) ([]rawFinding, error) {
	st := a.settings[twicetype.MissingEffect]
	_ = st
	var out []rawFinding
	err := a.query(ctx, a.q.missingEffect(), func(scan func(...any) error) error {
		var jobID, rkey, sref, jtype, jqueue string
		var rule uint32
		var succ, deadline int64
		var seen []string
		if err := scan(&jobID, &rule, &rkey, &succ, &sref, &deadline, &jtype, &jqueue, &seen); err != nil {
			return err
		}
		r := a.rules[rule]
		count := r.Count
		if count <= 0 {
			count = 1
		}
		f := a.base(twicetype.MissingEffect)
		f.Subject = a.show("job_id", jobID)
		f.Count = 1
		f.FirstTime, f.LastTime = succ, deadline
		f.Jobs = []string{f.Subject}
		f.Events = append([]string{sref}, seen...)
		a.label(f, jtype, jqueue)
		effect, key := a.show("effect", r.Effect), a.show("effect_key", rkey)
		f.Message = fmt.Sprintf("%s succeeded but %s %s was observed %d of %d times within %s",
			a.jobLabel(jtype, jobID), effect, key, len(seen), count, r.Within)
		f.Details = map[string]any{
			"job_type": a.show("job_type", jtype),
			"missing": []any{map[string]any{
				"effect":     effect,
				"effect_key": key,
				"expected":   int64(count),
				"observed":   int64(len(seen)),
				"within":     r.Within.String(),
				"deadline":   twicetype.FormatTime(deadline),
			}},
		}
		// The engine judges deadlines in time order, each rule's queue in
		// turn when several fall due before one event: (deadline, rule)
		// is that order except for two deadlines of one job with no event
		// between them.
		out = append(out, rawFinding{rawSubject: jobID, f: f, order: []orderKey{{n: deadline}, {n: int64(rule)}}})
		return nil
	})
	return out, err
}

func (a *auditRun) effectBeforeFailure(ctx context.Context) ([]rawFinding, error) {
	var out []rawFinding
	i := int64(0)
	err := a.query(ctx, a.q.effectBeforeFailure(), func(scan func(...any) error) error {
		var jobID, endO, endRef, endKind, jtype, jqueue string
		var attempt, first, endT int64
		var refs []string
		if err := scan(&jobID, &attempt, &refs, &first, &endO, &endT, &endRef, &endKind, &jtype, &jqueue); err != nil {
			return err
		}
		how := "then " + endKind
		if endKind == "job.started" {
			how = "another attempt started"
		}
		f := a.base(twicetype.EffectBeforeFailure)
		f.Subject = a.show("job_id", jobID)
		f.Count = 1
		f.FirstTime, f.LastTime = first, endT
		f.Jobs = []string{f.Subject}
		f.Events = append(append([]string(nil), refs...), endRef)
		a.label(f, jtype, jqueue)
		f.Message = fmt.Sprintf("attempt %d of %s produced %d effect(s), %s: a retry repeats them",
			attempt, a.jobLabel(jtype, jobID), len(refs), how)
		f.Details = map[string]any{
			"attempts": []any{map[string]any{
				"attempt":  attempt,
				"effects":  int64(len(refs)),
				"ended_by": endKind,
			}},
		}
		// Rows of one job come in the order of the fold's output.
		i++
		out = append(out, rawFinding{rawSubject: jobID, f: f, order: []orderKey{bigOrd(endO), {n: i}}})
		return nil
	})
	return out, err
}

func (a *auditRun) duplicateExecution(ctx context.Context) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.duplicateExecution(), func(scan func(...any) error) error {
		var jobID, o, ref, sref, jtype, jqueue string
		var t, st int64
		var attempt *int64
		if err := scan(&jobID, &o, &t, &ref, &attempt, &st, &sref, &jtype, &jqueue); err != nil {
			return err
		}
		f := a.base(twicetype.DuplicateExecution)
		f.Subject = a.show("job_id", jobID)
		f.Count = 1
		f.FirstTime, f.LastTime = st, t
		f.Jobs = []string{f.Subject}
		f.Events = []string{sref, ref}
		a.label(f, jtype, jqueue)
		att := "a new attempt"
		if attempt != nil {
			att = fmt.Sprintf("attempt %d", *attempt)
		}
		f.Message = fmt.Sprintf("%s started again (%s) after it had succeeded at %s",
			a.jobLabel(jtype, jobID), att, twicetype.FormatTime(st))
		f.Details = map[string]any{"succeeded_at": twicetype.FormatTime(st)}
		out = append(out, rawFinding{rawSubject: jobID, f: f, order: []orderKey{bigOrd(o)}})
		return nil
	})
	return out, err
}

func (a *auditRun) outOfOrder(ctx context.Context) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.outOfOrder(), func(scan func(...any) error) error {
		var entity string
		var n, ft, lt, hi, last int64
		var refs, jobs []string
		var seqs, after []int64
		var jtype, jqueue string
		if err := scan(&entity, &n, &ft, &lt, &refs, &seqs, &after, &jobs, &hi, &last, &jtype, &jqueue); err != nil {
			return err
		}
		f := a.base(twicetype.OutOfOrder)
		f.Subject = a.show("entity", entity)
		f.Count = n
		f.FirstTime, f.LastTime = ft, lt
		for _, j := range jobs {
			f.Jobs = append(f.Jobs, a.show("job_id", j))
		}
		f.Events = refs
		a.label(f, jtype, jqueue)
		pairs := make([]any, len(refs))
		for i := range refs {
			pairs[i] = map[string]any{"event": refs[i], "seq": seqs[i], "after_seq": after[i]}
		}
		stale := last < hi
		f.Message = fmt.Sprintf("%s went back in seq %d time(s) (highest %d)", f.Subject, n, hi)
		if stale {
			f.Message += fmt.Sprintf("; its last update carries seq %d, so its final state is stale", last)
		}
		f.Details = map[string]any{
			"final_stale": stale,
			"highest_seq": hi,
			"last_seq":    last,
			"regressions": pairs,
		}
		out = append(out, rawFinding{rawSubject: entity, f: f})
		return nil
	})
	return out, err
}

func (a *auditRun) staleExecution(ctx context.Context, st detectors.Settings) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.staleExecution(st.MaxStartDelay), func(scan func(...any) error) error {
		var jobID, o, ref, eref, ent, jtype, jqueue string
		var t, et, eseq, emax int64
		var attempt *int64
		var waiting, stale uint8
		if err := scan(&jobID, &o, &t, &ref, &attempt, &waiting, &et, &eref, &stale, &ent, &eseq, &emax, &jtype, &jqueue); err != nil {
			return err
		}
		flag := func(sub int64, from int64, fromRef, what string, detail map[string]any) {
			f := a.base(twicetype.StaleExecution)
			f.Subject = a.show("job_id", jobID)
			f.Count = 1
			f.FirstTime, f.LastTime = from, t
			f.Jobs = []string{f.Subject}
			if fromRef != "" {
				f.Events = append(f.Events, fromRef)
			}
			f.Events = append(f.Events, ref)
			a.label(f, jtype, jqueue)
			att := ""
			if attempt != nil {
				att = fmt.Sprintf(" attempt %d", *attempt)
			}
			detail["started_at"] = twicetype.FormatTime(t)
			f.Message = fmt.Sprintf("%s%s %s", a.jobLabel(jtype, jobID), att, what)
			f.Details = map[string]any{"starts": []any{detail}}
			out = append(out, rawFinding{rawSubject: jobID, f: f, order: []orderKey{bigOrd(o), {n: sub}}})
		}
		if waiting == 1 && t-et > int64(st.MaxStartDelay) {
			delay := t - et
			flag(0, et, eref, fmt.Sprintf("started %s after it was enqueued (max %s)", fmtDur(delay), st.MaxStartDelay),
				map[string]any{
					"reason":          "start-delay",
					"start_delay":     fmtDur(delay),
					"max_start_delay": st.MaxStartDelay.String(),
				})
		}
		if stale == 1 {
			e := a.show("entity", ent)
			flag(1, t, "", fmt.Sprintf("started on %s seq %d, but %s had reached seq %d", e, eseq, e, emax),
				map[string]any{
					"reason":       "stale-seq",
					"entity":       e,
					"enqueued_seq": eseq,
					"entity_seq":   emax,
				})
		}
		return nil
	})
	return out, err
}

func (a *auditRun) effectAfterTerminal(ctx context.Context) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.effectAfterTerminal(), func(scan func(...any) error) error {
		var key, o, ref, effect, jobID, entity, tref, jtype, jqueue string
		var t, tt int64
		if err := scan(&key, &o, &t, &ref, &effect, &jobID, &entity, &tt, &tref, &jtype, &jqueue); err != nil {
			return err
		}
		f := a.base(twicetype.EffectAfterTerminal)
		f.Subject = a.show("effect_key", key)
		f.Count = 1
		f.FirstTime, f.LastTime = t, t
		if jobID != "" {
			f.Jobs = []string{a.show("job_id", jobID)}
		}
		f.Events = []string{tref, ref}
		a.label(f, jtype, jqueue)
		e := a.show("entity", entity)
		f.Message = fmt.Sprintf("%s %s on %s after it reached a terminal state at %s",
			a.show("effect", effect), f.Subject, e, twicetype.FormatTime(tt))
		f.Details = map[string]any{
			"entity":         e,
			"terminal_at":    twicetype.FormatTime(tt),
			"terminal_event": tref,
		}
		out = append(out, rawFinding{rawSubject: key, f: f, order: []orderKey{bigOrd(o)}})
		return nil
	})
	return out, err
}

func (a *auditRun) lostJob(ctx context.Context, st detectors.Settings) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.lostJob(st.LostAfter), func(scan func(...any) error) error {
		var jobID, o, ref, kind, jtype, queue string
		var t, d, first int64
		var started uint8
		if err := scan(&jobID, &o, &t, &ref, &kind, &started, &d, &first, &jtype, &queue); err != nil {
			return err
		}
		cause, what := "never-started", "was enqueued and never started"
		if started == 1 {
			cause, what = "stuck", "started and never finished"
		}
		f := a.base(twicetype.LostJob)
		f.Subject = a.show("job_id", jobID)
		f.Count = 1
		f.FirstTime, f.LastTime = first, t
		f.Jobs = []string{f.Subject}
		f.Events = []string{ref}
		a.label(f, jtype, queue)
		f.Cause = cause
		f.Message = fmt.Sprintf("%s %s: no succeeded, dead or discarded within %s of its last %s",
			a.jobLabel(jtype, jobID), what, st.LostAfter, kind)
		f.Details = map[string]any{
			"queue":      a.show("queue", queue),
			"last_event": kind,
			"lost_after": st.LostAfter.String(),
			"deadline":   twicetype.FormatTime(d),
		}
		out = append(out, rawFinding{rawSubject: jobID, f: f, order: []orderKey{bigOrd(o)}})
		return nil
	})
	return out, err
}

func (a *auditRun) retryStorm(ctx context.Context, st detectors.Settings) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.retryStorm(st.Window, st.MinAttempts, st.Amplification), func(scan func(...any) error) error {
		var q, jtype string
		var ws, n, nj int64
		var refs, jobs []string
		if err := scan(&q, &ws, &n, &nj, &refs, &jobs, &jtype); err != nil {
			return err
		}
		when := twicetype.FormatTime(ws)
		rfc := time.Unix(0, ws).UTC().Format(time.RFC3339Nano)
		f := a.base(twicetype.RetryStorm)
		f.Subject = a.showQueue(q) + "@" + rfc
		f.Count = n
		f.FirstTime, f.LastTime = ws, ws+int64(st.Window)
		for _, j := range jobs {
			f.Jobs = append(f.Jobs, a.show("job_id", j))
		}
		f.Events = refs
		a.label(f, jtype, "")
		if q != "(none)" {
			f.Queue = a.show("queue", q)
		}
		amp := float64(n) / float64(nj)
		f.Message = fmt.Sprintf("%s: %d attempts of %d job(s) in the %s from %s (×%.1f)",
			a.showQueue(q), n, nj, st.Window, when, amp)
		f.Details = map[string]any{
			"queue":         a.showQueue(q),
			"window":        st.Window.String(),
			"window_start":  when,
			"attempts":      n,
			"jobs":          nj,
			"amplification": amp,
		}
		out = append(out, rawFinding{rawSubject: q + "@" + rfc, f: f})
		return nil
	})
	return out, err
}

func (a *auditRun) deadLetter(ctx context.Context) ([]rawFinding, error) {
	var out []rawFinding
	err := a.query(ctx, a.q.deadLetter(), func(scan func(...any) error) error {
		var q, jtype string
		var n, oldest, newest int64
		var jobs, refs []string
		var hours []int64
		if err := scan(&q, &n, &oldest, &newest, &jobs, &refs, &hours, &jtype); err != nil {
			return err
		}
		subject := a.showQueue(q)
		f := a.base(twicetype.DeadLetter)
		f.Subject = subject
		f.Count = n
		f.FirstTime, f.LastTime = oldest, newest
		for _, j := range jobs {
			f.Jobs = append(f.Jobs, a.show("job_id", j))
		}
		f.Events = refs
		a.label(f, jtype, "")
		if q != "(none)" {
			f.Queue = a.show("queue", q)
		}
		perHour := map[string]any{}
		for _, h := range hours {
			k := time.Unix(h*3600, 0).UTC().Format(time.RFC3339)
			c, _ := perHour[k].(int64)
			perHour[k] = c + 1
		}
		f.Message = fmt.Sprintf("%d job(s) on %s went dead and were never replayed (oldest %s)",
			n, subject, twicetype.FormatTime(oldest))
		f.Details = map[string]any{
			"count":    n,
			"oldest":   twicetype.FormatTime(oldest),
			"per_hour": perHour,
		}
		out = append(out, rawFinding{rawSubject: q, f: f})
		return nil
	})
	return out, err
}
