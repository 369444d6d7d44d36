package detectors

import (
	"cmp"
	"maps"
	"slices"

	"github.com/twicehq/twice/twicetype"
)

// Live views: an audit judges a duplicate effect, an out-of-order entity
// or a queue's dead letters when their state is released, because only
// then is the count final. A sidecar cannot wait a horizon to say that a
// receipt went out twice. With Options.Live, the Set also tracks which
// findings changed, and Changes returns each changed finding as it stands
// now: what has been judged, merged with what the records still held
// would add if they were judged at this moment. Once every record is
// released the view equals the audit's finding.

// View is one finding as it stands now.
type View struct {
	// Detector and Fingerprint name the finding.
	Detector    string
	Fingerprint string
	// Finding is nil when the finding no longer stands: the dead jobs of
	// a queue were all replayed.
	Finding *twicetype.Finding
}

// liveKey names a finding by detector and raw (unredacted) subject.
type liveKey struct{ detector, raw string }

// Changes returns the views of the findings that changed since the last
// call, ordered by detector and subject, and forgets them. Without
// Options.Live it returns nil. The findings returned are copies.
func (s *Set) Changes() []View {
	dirty := s.findings.dirty
	if len(dirty) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(dirty), func(a, b liveKey) int {
		if c := cmp.Compare(a.detector, b.detector); c != 0 {
			return c
		}
		return cmp.Compare(a.raw, b.raw)
	})
	clear(dirty)
	views := make([]View, 0, len(keys))
	for _, k := range keys {
		fp := twicetype.Fingerprint(k.detector, k.raw)
		var f *twicetype.Finding
		if judged := s.findings.byFP[fp]; judged != nil {
			f = cloneFinding(judged)
		}
		if open := s.openView(k); open != nil {
			normalize(k.raw, open)
			if f == nil {
				f = cloneFinding(open)
			} else {
				merge(f, cloneFinding(open))
			}
		}
		views = append(views, View{Detector: k.detector, Fingerprint: fp, Finding: f})
	}
	return views
}

// openView judges the records still held for a finding, nil when they
// add nothing to it.
func (s *Set) openView(k liveKey) *twicetype.Finding {
	switch k.detector {
	case twicetype.DuplicateEffect:
		if rec := s.keys[k.raw]; rec != nil && s.dup != nil {
			return s.dup.judge(s, rec)
		}
	case twicetype.OutOfOrder:
		if rec := s.entities[k.raw]; rec != nil && s.ooo != nil {
			return s.ooo.judge(s, rec)
		}
	case twicetype.DeadLetter:
		if s.dl != nil {
			return s.dl.openView(s, k.raw)
		}
	}
	return nil
}

// markLive notes the findings an event may have changed, before the
// detectors see it: state they judge at release.
func (s *Set) markLive(ev *twicetype.Event, r *refs) {
	dirty := s.findings.dirty
	if k := r.key; k != nil && s.dup != nil && len(k.effects)+1 > s.dup.st.MaxPerKey {
		dirty[liveKey{twicetype.DuplicateEffect, k.Key}] = struct{}{}
	}
	if e := r.entity; e != nil && s.ooo != nil && ev.HasSeq && (e.ooo != nil && e.ooo.count > 0 || (e.hasSeq && ev.Seq < e.maxSeq)) {
		dirty[liveKey{twicetype.OutOfOrder, e.Name}] = struct{}{}
	}
}

// cloneFinding copies a finding deeply enough that merging into the copy
// or the original leaves the other alone.
func cloneFinding(f *twicetype.Finding) *twicetype.Finding {
	c := *f
	c.Jobs = slices.Clone(f.Jobs)
	c.Events = slices.Clone(f.Events)
	c.Details = make(map[string]any, len(f.Details))
	for k, v := range f.Details {
		c.Details[k] = cloneValue(v)
	}
	return &c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = cloneValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = cloneValue(x)
		}
		return out
	}
	return v
}
