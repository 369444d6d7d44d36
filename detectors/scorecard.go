package detectors

import (
	"cmp"
	"slices"

	"github.com/twicehq/twice/internal/codec"
	"github.com/twicehq/twice/twicetype"
)

// The handler safety scorecard (twicetype.HandlerScore) is built from two
// things: per job type and queue, counters the Set keeps while it runs
// (ScoreCount), and the findings. The counters are all that is kept for
// it: two integers per job type and queue, and two bits per job record.
// The SQL audit of storage/clickhouse computes the same counters with one
// query and builds its scorecard with the same Scorecard function.

// ScoreCount is what an audit counted of the jobs of one job type and
// queue, the two as reports show them (redacted when configured).
type ScoreCount struct {
	JobType string
	Queue   string
	// Jobs counts the distinct job ids whose first job_type and queue
	// these are.
	Jobs int64
	// Restarted counts those of them that started more than once (a
	// second job.started for the same job_id: a retry, a redelivery, a
	// replay).
	Restarted int64
}

// scoreMark is what a job record keeps for the scorecard: whether it is
// the first record of its job id (a job seen again after the horizon
// released it is counted once), and its starts up to two.
type scoreMark uint8

const (
	scoreFirst   scoreMark = 1 << 2
	scoreStarts  scoreMark = 3 // mask: 0, 1 or 2 (more than once)
	scoreRestart scoreMark = 2
)

type scoreKey struct{ jobType, queue string }

// scoreCounts keeps the counters while the Set runs. A job is counted
// when its record is released: its job_type and queue are final then.
type scoreCounts struct {
	m map[scoreKey]*[2]int64 // Jobs, Restarted
}

func newScoreCounts() *scoreCounts { return &scoreCounts{m: make(map[scoreKey]*[2]int64)} }

func (c *scoreCounts) observe(_ *Set, ev *twicetype.Event, r *refs) {
	if j := r.job; j != nil && ev.Kind == twicetype.JobStarted && j.score&scoreStarts < scoreRestart {
		j.score++
	}
}

func (c *scoreCounts) releaseJob(_ *Set, j *Job) {
	if j.score&scoreFirst == 0 || j.Type == "" {
		return
	}
	j.score &^= scoreFirst // counted once, even if released again
	k := scoreKey{j.Type, j.Queue}
	n := c.m[k]
	if n == nil {
		n = new([2]int64)
		c.m[k] = n
	}
	n[0]++
	if j.score&scoreStarts >= scoreRestart {
		n[1]++
	}
}

// snapshot writes the counters sorted by key.
func (c *scoreCounts) snapshot(w *codec.Writer) {
	keys := make([]scoreKey, 0, len(c.m))
	for k := range c.m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b scoreKey) int {
		return cmp.Or(cmp.Compare(a.jobType, b.jobType), cmp.Compare(a.queue, b.queue))
	})
	w.Uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.String(k.jobType)
		w.String(k.queue)
		w.Varint(c.m[k][0])
		w.Varint(c.m[k][1])
	}
}

func (c *scoreCounts) restore(r *codec.Reader) {
	n := r.Count(4)
	for range n {
		k := scoreKey{r.String(), r.String()}
		c.m[k] = &[2]int64{r.Varint(), r.Varint()}
	}
}

// ScoreCounts returns the scorecard counters of the jobs released so far
// (every job, after Finish), sorted by job type and queue as shown.
func (s *Set) ScoreCounts() []ScoreCount {
	out := make([]ScoreCount, 0, len(s.score.m))
	for k, n := range s.score.m {
		out = append(out, ScoreCount{JobType: s.show("job_type", k.jobType), Queue: s.show("queue", k.queue),
			Jobs: n[0], Restarted: n[1]})
	}
	slices.SortFunc(out, func(a, b ScoreCount) int {
		return cmp.Or(cmp.Compare(a.JobType, b.JobType), cmp.Compare(a.Queue, b.Queue))
	})
	return out
}

// Scorecard builds the handler safety scorecard from the counters and the
// findings of an audit (any order). A finding counts for the job type and
// queue it shows (its first job's, spec §5); one without a job_type
// counts for no handler. Per handler:
//
//   - run-twice: exercised by its jobs that started more than once plus
//     the jobs of its duplicate-effect findings of cause
//     duplicate-enqueue (a replay is a second start of the same job, so
//     counted already); harmed: the jobs of its duplicate-effect findings
//     of any known cause.
//   - run-late: exercised by its jobs with a stale-execution finding for a
//     start delay; harmed: those of them named by an out-of-order or
//     effect-after-terminal finding.
//   - partial: exercised by its jobs with an effect-before-failure finding
//     (the crash window); harmed: those of them named by a
//     duplicate-effect finding (the retry repeated the effect).
//   - out-of-order: exercised by its jobs with a stale-execution finding
//     for a stale seq, and the jobs of its out-of-order findings; harmed:
//     the latter (an update of theirs regressed the entity).
//
// Exercised is never below Harmed (harm shows the condition happened,
// whether or not the audit saw it happen). The verdict is unsafe with any
// harm, safe when exercised without harm, not-exercised otherwise.
// Findings lists the evidence, at most twicetype.MaxScoreFindings
// fingerprints, sorted: the harm findings, and for run-late and partial
// the harmed job's own stale-execution or effect-before-failure finding.
// It returns nil when there is no handler.
func Scorecard(counts []ScoreCount, findings []twicetype.Finding) []twicetype.HandlerScore {
	type cond struct {
		exercised int64
		jobs      map[string]struct{} // exercised by these jobs (de-duplicated)
		harmed    map[string]struct{}
		evidence  map[string]struct{}
	}
	type row struct {
		count ScoreCount
		conds [4]cond
	}
	rows := map[scoreKey]*row{}
	get := func(t, q string) *row {
		k := scoreKey{t, q}
		r := rows[k]
		if r == nil {
			r = &row{count: ScoreCount{JobType: t, Queue: q}}
			rows[k] = r
		}
		return r
	}
	for _, c := range counts {
		r := get(c.JobType, c.Queue)
		r.count.Jobs += c.Jobs
		r.count.Restarted += c.Restarted
	}
	// Jobs named anywhere by the findings of harm, whatever their type.
	dupJobs, lateHarm := map[string][]string{}, map[string][]string{}
	for i := range findings {
		f := &findings[i]
		switch {
		case f.Detector == twicetype.DuplicateEffect && f.Cause != "unknown":
			for _, j := range f.Jobs {
				dupJobs[j] = append(dupJobs[j], f.Fingerprint)
			}
		case f.Detector == twicetype.OutOfOrder || f.Detector == twicetype.EffectAfterTerminal:
			for _, j := range f.Jobs {
				lateHarm[j] = append(lateHarm[j], f.Fingerprint)
			}
		}
	}
	add := func(m *map[string]struct{}, v ...string) {
		if *m == nil {
			*m = map[string]struct{}{}
		}
		for _, x := range v {
			(*m)[x] = struct{}{}
		}
	}
	for i := range findings {
		f := &findings[i]
		if f.JobType == "" {
			continue
		}
		r := get(f.JobType, f.Queue)
		twice, late, partial, ooo := &r.conds[0], &r.conds[1], &r.conds[2], &r.conds[3]
		switch f.Detector {
		case twicetype.DuplicateEffect:
			if f.Cause == "unknown" {
				continue
			}
			if f.Cause == "duplicate-enqueue" {
				add(&twice.jobs, f.Jobs...)
			}
			add(&twice.harmed, f.Jobs...)
			add(&twice.evidence, f.Fingerprint)
		case twicetype.StaleExecution:
			delay, seq := staleReasons(f)
			if delay {
				late.exercised += int64(len(f.Jobs))
				for _, j := range f.Jobs {
					if fps := lateHarm[j]; len(fps) > 0 {
						add(&late.harmed, j)
						add(&late.evidence, f.Fingerprint)
						add(&late.evidence, fps...)
					}
				}
			}
			if seq {
				add(&ooo.jobs, f.Jobs...)
			}
		case twicetype.EffectBeforeFailure:
			partial.exercised += int64(len(f.Jobs))
			for _, j := range f.Jobs {
				if fps := dupJobs[j]; len(fps) > 0 {
					add(&partial.harmed, j)
					add(&partial.evidence, f.Fingerprint)
					add(&partial.evidence, fps...)
				}
			}
		case twicetype.OutOfOrder:
			add(&ooo.jobs, f.Jobs...)
			add(&ooo.harmed, f.Jobs...)
			add(&ooo.evidence, f.Fingerprint)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	out := make([]twicetype.HandlerScore, 0, len(rows))
	for _, r := range rows {
		r.conds[0].exercised += r.count.Restarted
		h := twicetype.HandlerScore{JobType: r.count.JobType, Queue: r.count.Queue, Jobs: r.count.Jobs,
			Conditions: make([]twicetype.ConditionScore, len(twicetype.Conditions))}
		for i, name := range twicetype.Conditions {
			c := &r.conds[i]
			cs := twicetype.ConditionScore{Condition: name, Exercised: c.exercised + int64(len(c.jobs)),
				Harmed: int64(len(c.harmed))}
			cs.Exercised = max(cs.Exercised, cs.Harmed)
			switch {
			case cs.Harmed > 0:
				cs.Verdict = twicetype.VerdictUnsafe
			case cs.Exercised > 0:
				cs.Verdict = twicetype.VerdictSafe
			default:
				cs.Verdict = twicetype.VerdictNotExercised
			}
			if len(c.evidence) > 0 {
				cs.Findings = make([]string, 0, len(c.evidence))
				for fp := range c.evidence {
					cs.Findings = append(cs.Findings, fp)
				}
				slices.Sort(cs.Findings)
				if len(cs.Findings) > twicetype.MaxScoreFindings {
					cs.Findings = cs.Findings[:twicetype.MaxScoreFindings:twicetype.MaxScoreFindings]
				}
			}
			h.Conditions[i] = cs
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b twicetype.HandlerScore) int {
		return cmp.Or(cmp.Compare(a.JobType, b.JobType), cmp.Compare(a.Queue, b.Queue))
	})
	return out
}

// staleReasons tells what a stale-execution finding is about: a start
// delay, a stale seq, or both (the starts of one job merge into one
// finding).
func staleReasons(f *twicetype.Finding) (delay, seq bool) {
	starts, _ := f.Details["starts"].([]any)
	for _, s := range starts {
		m, _ := s.(map[string]any)
		switch m["reason"] {
		case "start-delay":
			delay = true
		case "stale-seq":
			seq = true
		}
	}
	return delay, seq
}
