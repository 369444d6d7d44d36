// Package story gathers, for each finding of a report, the events that
// tell how it came about — the events of its jobs, the events it names,
// the other effects on its effect_key, the updates of its entity — in
// event-time order, and renders them as a short timeline for people:
//
//	2026-11-24T10:00:00.000Z  j-1 enqueued (SendReceipt on mail, key payment:123)
//	+2.1s                     j-1 started attempt 1
//	+300ms                  * effect email.sent receipt/payment:123 by j-1 attempt 1
//
// Collect reads the input again, with the same collectors an audit reads
// it with, after the audit found what to tell.
package story

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/twicetype"
)

// Defaults of Options.
const (
	// DefaultPerFinding is how many events a story keeps.
	DefaultPerFinding = 50
	// DefaultMaxEvents bounds the events kept over all stories.
	DefaultMaxEvents = 10000
)

// Options bound what Collect keeps.
type Options struct {
	// PerFinding is the most events one story keeps; 0 means
	// DefaultPerFinding. The events a finding names are kept first,
	// then the earliest of the others.
	PerFinding int
	// MaxEvents bounds the events of all stories: stories are told for
	// the first MaxEvents/PerFinding findings in the order given (a
	// report's order: most severe first); 0 means DefaultMaxEvents.
	MaxEvents int
}

// Story is what happened around one finding.
type Story struct {
	Finding twicetype.Finding
	// Events are the events kept, in event-time order (ties in input
	// order), each observation once.
	Events []twicetype.Event
	// Named marks the events of Events the finding names itself
	// (Finding.Events), by index into Events.
	Named []bool
	// Omitted counts the events that belong to the story but were not
	// kept (over PerFinding).
	Omitted int64
}

// Collect reads every collector to its end, one after the other, and
// returns the story of each finding, keyed by fingerprint. Findings past
// the MaxEvents bound get no story. Collectors are started and shut down
// here.
func Collect(ctx context.Context, findings []twicetype.Finding, cols []collectors.Collector, opts Options) (map[string]*Story, error) {
	c := NewCollector(findings, opts)
	for _, col := range cols {
		if err := readAll(ctx, col, c); err != nil {
			return nil, err
		}
	}
	return c.Stories(), nil
}

func readAll(ctx context.Context, col collectors.Collector, c *Collector) (err error) {
	if err := col.Start(ctx); err != nil {
		return fmt.Errorf("story: start %s: %w", col.Name(), err)
	}
	defer func() {
		if serr := col.Shutdown(context.WithoutCancel(ctx)); serr != nil && err == nil {
			err = fmt.Errorf("story: shut down %s: %w", col.Name(), serr)
		}
	}()
	for {
		b, err := col.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("story: read %s: %w", col.Name(), err)
		}
		for i := range b.Events {
			c.Add(&b.Events[i])
		}
	}
}

// Collector builds stories from events added one at a time, for callers
// that read events themselves (a store query). It is not safe for
// concurrent use.
type Collector struct {
	per     int
	stories []*building
	byJob   map[string][]int
	byRef   map[string][]int
	byKey   map[string][]int
	byEnt   map[string][]int
	// stateEnt are entities whose state events belong to a story
	// (effect-after-terminal: the terminal state).
	stateEnt map[string][]int
	order    int64
}

type building struct {
	finding twicetype.Finding
	named   []item
	others  itemHeap // max-heap on (time, order): the latest is dropped first
	seen    map[uint64]bool
	omitted int64
}

type item struct {
	ev    twicetype.Event
	order int64
	named bool
}

// NewCollector prepares the stories of findings.
func NewCollector(findings []twicetype.Finding, opts Options) *Collector {
	per := cmp.Or(opts.PerFinding, DefaultPerFinding)
	total := cmp.Or(opts.MaxEvents, DefaultMaxEvents)
	n := min(len(findings), max(1, total/per))
	c := &Collector{per: per, byJob: map[string][]int{}, byRef: map[string][]int{},
		byKey: map[string][]int{}, byEnt: map[string][]int{}, stateEnt: map[string][]int{}}
	for i, f := range findings[:n] {
		c.stories = append(c.stories, &building{finding: f, seen: map[uint64]bool{}})
		for _, j := range f.Jobs {
			c.byJob[j] = appendOnce(c.byJob[j], i)
		}
		for _, r := range f.Events {
			c.byRef[r] = appendOnce(c.byRef[r], i)
		}
		switch f.Detector {
		case twicetype.DuplicateEffect, twicetype.EffectAfterTerminal:
			c.byKey[f.Subject] = appendOnce(c.byKey[f.Subject], i)
			if ent, ok := f.Details["entity"].(string); ok && ent != "" {
				c.stateEnt[ent] = appendOnce(c.stateEnt[ent], i)
			}
		case twicetype.OutOfOrder:
			c.byEnt[f.Subject] = appendOnce(c.byEnt[f.Subject], i)
		}
	}
	return c
}

func appendOnce(s []int, i int) []int {
	if len(s) > 0 && s[len(s)-1] == i {
		return s
	}
	return append(s, i)
}

// Add offers one event to every story it belongs to. The event is copied.
func (c *Collector) Add(ev *twicetype.Event) {
	c.order++
	var named []int
	if len(c.byRef) > 0 {
		named = c.byRef[ev.Ref()]
	}
	for _, i := range named {
		c.stories[i].add(ev, c.order, true, c.per)
	}
	offer := func(idx []int) {
		for _, i := range idx {
			c.stories[i].add(ev, c.order, false, c.per)
		}
	}
	if ev.JobID != "" {
		offer(c.byJob[ev.JobID])
	}
	if ev.Kind == twicetype.Effect {
		offer(c.byKey[ev.EffectKey])
	}
	if ev.Entity != "" && (ev.Kind == twicetype.Effect || ev.Kind == twicetype.State) {
		offer(c.byEnt[ev.Entity])
		if ev.Kind == twicetype.State {
			offer(c.stateEnt[ev.Entity])
		}
	}
}

func (b *building) add(ev *twicetype.Event, order int64, named bool, per int) {
	if b.seen[ev.Identity] {
		// One observation seen twice, or one event matched twice
		// (its job and its effect_key): it counts once.
		return
	}
	b.seen[ev.Identity] = true
	if named {
		b.named = append(b.named, item{ev: *ev, order: order, named: true})
		if len(b.named) > per {
			// More named events than a story holds: keep the
			// earliest named ones, the rest is omitted.
			slices.SortFunc(b.named, itemCmp)
			b.named = b.named[:per]
			b.omitted++
		}
		for len(b.named)+b.others.Len() > per && b.others.Len() > 0 {
			heap.Pop(&b.others)
			b.omitted++
		}
		return
	}
	if len(b.named)+b.others.Len() < per {
		heap.Push(&b.others, item{ev: *ev, order: order})
		return
	}
	b.omitted++
	if b.others.Len() > 0 && itemCmp(item{ev: *ev, order: order}, b.others[0]) < 0 {
		b.others[0] = item{ev: *ev, order: order}
		heap.Fix(&b.others, 0)
	}
}

// Stories returns the stories built so far, keyed by fingerprint.
func (c *Collector) Stories() map[string]*Story {
	out := make(map[string]*Story, len(c.stories))
	for _, b := range c.stories {
		items := append(slices.Clone(b.named), b.others...)
		slices.SortFunc(items, itemCmp)
		s := &Story{Finding: b.finding, Omitted: b.omitted,
			Events: make([]twicetype.Event, len(items)), Named: make([]bool, len(items))}
		for i, it := range items {
			s.Events[i], s.Named[i] = it.ev, it.named
		}
		out[b.finding.Fingerprint] = s
	}
	return out
}

func itemCmp(a, b item) int {
	return cmp.Or(cmp.Compare(a.ev.Time, b.ev.Time), cmp.Compare(a.order, b.order))
}

// itemHeap keeps the latest item on top.
type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return itemCmp(h[i], h[j]) > 0 }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
