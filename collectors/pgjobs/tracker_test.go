package pgjobs

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
)

var testDialect = &Dialect{Type: "test", IDPrefix: "t", Roots: []string{"args"}}

func newTestTracker(t *testing.T, d *Dialect, grace time.Duration) *tracker {
	t.Helper()
	m, err := jobpath.NewMapping("args.k", "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newTracker(d, m, int64(grace))
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func names(specs []spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, fmt.Sprintf("%s@%d", s.id, (s.ts-t0.UnixNano())/int64(time.Millisecond)))
	}
	return out
}

// A job that failed twice and succeeded between two polls: three
// attempts, at the row's times; the same row again emits nothing, and
// neither does a tracker restored from the saved state.
func TestTrackerAttemptsFromOneRow(t *testing.T) {
	for _, tc := range []struct {
		name         string
		errorAtStart bool
		want         []string
	}{
		// Oban: an error's "at" is its failure; earlier starts are
		// estimated from the failure before.
		{"failure times", false, []string{"t:1:started:1@0", "t:1:failed:1@100", "t:1:started:2@100", "t:1:failed:2@300", "t:1:started:3@400", "t:1:succeeded:3@500"}},
		// River: an error's "at" is its attempt's start; it failed when
		// the next began.
		{"start times", true, []string{"t:1:started:1@100", "t:1:failed:1@300", "t:1:started:2@300", "t:1:failed:2@400", "t:1:started:3@400", "t:1:succeeded:3@500"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := *testDialect
			d.ErrorAtStart = tc.errorAtStart
			tr := newTestTracker(t, &d, time.Minute)
			row := Row{ID: 1, State: StateAvailable, RawState: "available", CreatedAt: at(0), ScheduledAt: at(0), Args: []byte(`{"k":"p-1"}`)}
			specs, _ := tr.observe(at(1).UnixNano(), []Row{row}, nil, nil)
			if got := names(specs); !slices.Equal(got, []string{"t:1:enqueued@0"}) {
				t.Fatalf("first poll %q", got)
			}
			if specs[0].fields.Key != "p-1" {
				t.Errorf("key %q", specs[0].fields.Key)
			}
			row.State, row.RawState, row.Attempt, row.NErrors = StateCompleted, "completed", 3, 2
			row.AttemptedAt, row.FinalizedAt = at(400), at(500)
			row.Errors = []AttemptError{{Attempt: 1, At: at(100), Error: "e1"}, {Attempt: 2, At: at(300), Error: "e2"}}
			if read, _ := tr.changed([]Row{row}); !slices.Equal(read, []int64{1}) {
				t.Fatalf("changed: %v", read)
			}
			saved, err := tr.save()
			if err != nil {
				t.Fatal(err)
			}
			specs, gaps := tr.observe(at(600).UnixNano(), nil, []Row{row}, nil)
			if got := names(specs); !slices.Equal(got, tc.want) || len(gaps) != 0 {
				t.Errorf("second poll %q %v\nwant %q", got, gaps, tc.want)
			}
			if specs, _ := tr.observe(at(700).UnixNano(), nil, []Row{row}, nil); len(specs) != 0 {
				t.Errorf("the row again: %q", names(specs))
			}
			// Restored from the state saved before the second poll, the
			// tracker judges the row the same way, with the same ids.
			tr2 := newTestTracker(t, &d, time.Minute)
			if err := tr2.load(saved); err != nil {
				t.Fatal(err)
			}
			specs, _ = tr2.observe(at(800).UnixNano(), nil, []Row{row}, nil)
			if got := names(specs); !slices.Equal(got, tc.want) {
				t.Errorf("restored: %q, want %q", got, tc.want)
			}
		})
	}
}

// An id missing between ids read is waited for gap_timeout (an insert
// not yet committed), then reported; one that comes in time is not.
func TestTrackerIDGaps(t *testing.T) {
	tr := newTestTracker(t, testDialect, time.Minute)
	row := func(id int64, ms int) Row {
		return Row{ID: id, State: StateAvailable, RawState: "available", CreatedAt: at(ms), ScheduledAt: at(ms)}
	}
	_, gaps := tr.observe(at(10).UnixNano(), []Row{row(5, 0), row(7, 0), row(9, 0)}, nil, nil)
	if len(gaps) != 0 || tr.cursor != 5 {
		t.Fatalf("gaps %v cursor %d: want none yet, cursor 5 (the table starts at 5)", gaps, tr.cursor)
	}
	_, gaps = tr.observe(at(20).UnixNano(), []Row{row(6, 5)}, nil, nil)
	if len(gaps) != 0 || tr.cursor != 7 {
		t.Fatalf("id 6 came late: gaps %v cursor %d", gaps, tr.cursor)
	}
	_, gaps = tr.observe(at(61_000).UnixNano(), nil, nil, nil)
	if len(gaps) != 1 || gaps[0].Count != 1 || gaps[0].Reason != ReasonIDsSkipped || tr.cursor != 9 {
		t.Fatalf("after gap_timeout: gaps %+v cursor %d, want id 8 lost", gaps, tr.cursor)
	}
}

// A job inserted for later is enqueued when it is due, not when it was
// inserted: no event while it waits for its time.
func TestTrackerScheduled(t *testing.T) {
	tr := newTestTracker(t, testDialect, time.Minute)
	row := Row{ID: 1, State: StateScheduled, RawState: "scheduled", CreatedAt: at(0), ScheduledAt: at(60_000)}
	if specs, _ := tr.observe(at(10).UnixNano(), []Row{row}, nil, nil); len(specs) != 0 {
		t.Fatalf("scheduled for later: %q", names(specs))
	}
	if read, _ := tr.changed([]Row{row}); len(read) != 0 {
		t.Fatalf("unchanged, read again: %v", read)
	}
	row.State, row.RawState = StateAvailable, "available"
	specs, _ := tr.observe(at(60_100).UnixNano(), nil, []Row{row}, nil)
	if got := names(specs); !slices.Equal(got, []string{"t:1:enqueued@60000"}) {
		t.Errorf("due: %q", got)
	}
}
