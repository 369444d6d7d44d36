package detectors

import (
	"sort"
	"sync/atomic"

	"github.com/twicehq/twice/twicetype"
)

// MaxListed bounds the jobs and events listed on one finding; the full
// count stays in Count and details.omitted_events/omitted_jobs.
const MaxListed = 1000

// Findings collects findings by fingerprint: the same problem found twice
// (for example a key released by the horizon and seen again) is one
// finding.
type Findings struct {
	byFP  map[string]*twicetype.Finding
	order []string
	// dirty, when live views are on, collects the findings added to since
	// the last Set.Changes.
	dirty map[liveKey]struct{}
	// made counts the distinct findings, for progress shown while the
	// audit runs (Made).
	made atomic.Int64
}

// NewFindings returns an empty collection. The Set keeps one; an audit
// elsewhere (the SQL audit of storage/clickhouse) uses its own, so that
// findings merge by the same rules.
func NewFindings() *Findings { return newFindings() }

// Add records a finding, merging it into an earlier one with the same
// fingerprint, as the detectors do; rawSubject is the subject before
// redaction.
func (f *Findings) Add(rawSubject string, n *twicetype.Finding) { f.add(rawSubject, n) }

func newFindings() *Findings {
	return &Findings{byFP: make(map[string]*twicetype.Finding)}
}

// add records a finding, merging it into an earlier one with the same
// fingerprint. rawSubject is the subject before redaction; it keys the
// fingerprint so that fingerprints do not change with redaction.
func (f *Findings) add(rawSubject string, n *twicetype.Finding) {
	normalize(rawSubject, n)
	if f.dirty != nil {
		f.dirty[liveKey{n.Detector, rawSubject}] = struct{}{}
	}
	old := f.byFP[n.Fingerprint]
	if old == nil {
		f.byFP[n.Fingerprint] = n
		f.order = append(f.order, n.Fingerprint)
		f.made.Add(1)
		return
	}
	merge(old, n)
}

// Made returns how many distinct findings were made so far. Unlike the
// other methods it may be called from any goroutine while the detectors
// run.
func (f *Findings) Made() int64 { return f.made.Load() }

// normalize sets a new finding's fingerprint, fills its nil lists and
// caps them.
func normalize(rawSubject string, n *twicetype.Finding) {
	n.Fingerprint = twicetype.Fingerprint(n.Detector, rawSubject)
	if n.Jobs == nil {
		n.Jobs = []string{}
	}
	if n.Events == nil {
		n.Events = []string{}
	}
	if n.Details == nil {
		n.Details = map[string]any{}
	}
	capList(n, &n.Jobs, "omitted_jobs")
	capList(n, &n.Events, "omitted_events")
}

// merge folds n into old, a finding with the same fingerprint.
func merge(old, n *twicetype.Finding) {
	old.Count += n.Count
	old.FirstTime = min(old.FirstTime, n.FirstTime)
	old.LastTime = max(old.LastTime, n.LastTime)
	old.Jobs = union(old.Jobs, n.Jobs)
	old.Events = union(old.Events, n.Events)
	capList(old, &old.Jobs, "omitted_jobs")
	capList(old, &old.Events, "omitted_events")
	if old.Cause == "" {
		old.Cause = n.Cause
	}
	if old.JobType == "" {
		old.JobType = n.JobType
	}
	if old.Queue == "" {
		old.Queue = n.Queue
	}
	for k, v := range n.Details {
		switch ov := old.Details[k].(type) {
		case []any:
			if nv, ok := v.([]any); ok {
				old.Details[k] = append(ov, nv...)
				continue
			}
		case int64:
			if nv, ok := v.(int64); ok && (k == "omitted_events" || k == "omitted_jobs") {
				old.Details[k] = ov + nv
				continue
			}
		}
		if _, ok := old.Details[k]; !ok {
			old.Details[k] = v
		}
	}
}

func capList(f *twicetype.Finding, l *[]string, key string) {
	if len(*l) <= MaxListed {
		return
	}
	extra := int64(len(*l) - MaxListed)
	*l = (*l)[:MaxListed:MaxListed]
	if v, ok := f.Details[key].(int64); ok {
		extra += v
	}
	f.Details[key] = extra
}

func union(a, b []string) []string {
	seen := make(map[string]struct{}, len(a))
	for _, x := range a {
		seen[x] = struct{}{}
	}
	for _, x := range b {
		if _, ok := seen[x]; !ok {
			seen[x] = struct{}{}
			a = append(a, x)
		}
	}
	return a
}

// Sorted returns the findings most severe first, then by detector id, then
// by subject (spec §5).
func (f *Findings) Sorted() []twicetype.Finding {
	out := make([]twicetype.Finding, 0, len(f.order))
	for _, fp := range f.order {
		out = append(out, *f.byFP[fp])
	}
	sort.SliceStable(out, func(i, k int) bool {
		a, b := &out[i], &out[k]
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.Detector != b.Detector {
			return a.Detector < b.Detector
		}
		return a.Subject < b.Subject
	})
	return out
}

// Counts returns the number of findings per detector id for the given ids
// (zero included).
func (f *Findings) Counts(ids []string) map[string]int {
	m := make(map[string]int, len(ids))
	for _, id := range ids {
		m[id] = 0
	}
	for _, fp := range f.order {
		m[f.byFP[fp].Detector]++
	}
	return m
}

// base starts a finding of detector d with its configured severity.
func base(id string, st Settings) *twicetype.Finding {
	return &twicetype.Finding{Detector: id, Severity: st.Severity}
}
