package clickhouse

import (
	"sort"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/twicetype"
)

// merger collects findings by fingerprint with the engine's rules
// (detectors.Findings.add): the same problem found twice is one finding.
type merger struct {
	byFP  map[string]*twicetype.Finding
	order []string
}

func newMerger() *merger { return &merger{byFP: map[string]*twicetype.Finding{}} }

func (m *merger) add(rawSubject string, n *twicetype.Finding) {
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
	old := m.byFP[n.Fingerprint]
	if old == nil {
		m.byFP[n.Fingerprint] = n
		m.order = append(m.order, n.Fingerprint)
		return
	}
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
	if len(*l) <= detectors.MaxListed {
		return
	}
	extra := int64(len(*l) - detectors.MaxListed)
	*l = (*l)[:detectors.MaxListed:detectors.MaxListed]
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

func (m *merger) sorted() []twicetype.Finding {
	out := make([]twicetype.Finding, 0, len(m.order))
	for _, fp := range m.order {
		out = append(out, *m.byFP[fp])
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

func (m *merger) counts(ids []string) map[string]int {
	c := make(map[string]int, len(ids))
	for _, id := range ids {
		c[id] = 0
	}
	for _, fp := range m.order {
		c[m.byFP[fp].Detector]++
	}
	return c
}
