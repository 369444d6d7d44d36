package reports

import (
	"github.com/twicehq/twice/internal/hashset"
	"github.com/twicehq/twice/twicetype"
)

// TimelineBuckets is the most buckets a Timeline keeps.
const TimelineBuckets = 120

// Timeline counts events per time bucket for the HTML report's chart.
// Buckets are aligned to the Unix epoch and start one second wide; when
// the events span more than TimelineBuckets buckets the width doubles and
// neighbours merge, so it keeps at most TimelineBuckets counters whatever
// the input and in whatever order the events come. Each identity counts
// once, as the engine counts it, so the buckets add up to
// Summary.Events. It is not safe for concurrent use.
type Timeline struct {
	width  int64 // ns
	lo     int64 // index of counts[0], in widths since the epoch
	counts []int64
	ids    hashset.Set
}

// NewTimeline returns an empty Timeline.
func NewTimeline() *Timeline { return &Timeline{width: 1e9} }

// Add counts ev at its time, unless its identity was counted already.
func (t *Timeline) Add(ev *twicetype.Event) {
	if !t.ids.Add(ev.Identity) {
		return
	}
	t.add(ev.Time)
}

func (t *Timeline) add(ns int64) {
	idx := floorDiv(ns, t.width)
	if len(t.counts) == 0 {
		t.lo, t.counts = idx, []int64{1}
		return
	}
	for {
		lo, hi := min(t.lo, idx), max(t.lo+int64(len(t.counts))-1, idx)
		if hi-lo+1 <= TimelineBuckets {
			if lo < t.lo {
				grown := make([]int64, t.lo-lo, int64(len(t.counts))+t.lo-lo)
				t.counts, t.lo = append(grown, t.counts...), lo
			}
			for int64(len(t.counts)) <= idx-t.lo {
				t.counts = append(t.counts, 0)
			}
			t.counts[idx-t.lo]++
			return
		}
		// Double the width: bucket i goes to floor(i/2).
		newLo := floorDiv(t.lo, 2)
		merged := make([]int64, floorDiv(t.lo+int64(len(t.counts))-1, 2)-newLo+1)
		for i, n := range t.counts {
			merged[floorDiv(t.lo+int64(i), 2)-newLo] += n
		}
		t.lo, t.counts, t.width = newLo, merged, t.width*2
		idx = floorDiv(ns, t.width)
	}
}

// Start is the time of the first bucket's start, in Unix nanoseconds.
func (t *Timeline) Start() int64 { return t.lo * t.width }

// Width is the width of a bucket in nanoseconds.
func (t *Timeline) Width() int64 { return t.width }

// Counts has the events per bucket, from Start on; nil before any Add.
func (t *Timeline) Counts() []int64 { return t.counts }

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
