package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/twicetype"
)

// Re-judging. A state written under other rules, detector settings,
// redaction or engine settings (another Engine.ConfigHash) is not thrown
// away: positions, finding revisions, the outbox and the store's backlog
// stay as they are, and the detector state is rebuilt under the new
// configuration by replaying the history (history.go) and the journal
// through a new engine — the events of at least the detectors' horizon
// before the watermark. Then:
//
//   - a finding the replay makes that was published differently gets a
//     new revision (a threshold that now gives another severity, count or
//     cause); one it makes that is new is published;
//   - a finding that stands but that the replay no longer makes is
//     resolved, when every event behind it was replayed (its first_ts is
//     after every event the history lacks);
//   - a finding resting on events older than the history stays as it was
//     published: the new rules cannot judge it again.
//
// Identities older than the history are forgotten (a copy of such an
// event delivered again would count twice), and jobs, keys and entities
// whose first events are older than the history are rebuilt from the
// events the history has. The summary's counts go on from where they
// were. The first snapshot under the new configuration makes it the
// state's; until then a restart re-judges again, the same way.
//
// A state whose snapshot another twice version wrote (another format) is
// refused with ErrStateMismatch unless Options.ResetState, which rebuilds
// the same way from the history.

// ErrStateMismatch is wrapped by Open's error when the state cannot be
// used as it is: written by another twice version. The error says what
// to do.
var ErrStateMismatch = errors.New("state does not match this twice")

// counts are the summary counts a sidecar keeps across re-judging.
type counts struct {
	Events      int64 `json:"events"`
	RepeatedIDs int64 `json:"repeated_ids"`
	Malformed   int64 `json:"malformed"`
	Late        int64 `json:"late"`
	Evicted     int64 `json:"evicted"`
}

func countsOf(s twicetype.Summary) counts {
	return counts{Events: s.Events, RepeatedIDs: s.RepeatedIDs, Malformed: s.Malformed, Late: s.Late, Evicted: s.Evicted}
}

// summary returns the engine's summary with the counts of what it was
// rebuilt without (meta.Base).
func (w *Watcher) summary() twicetype.Summary {
	s := w.eng.Summary()
	if w.meta != nil {
		b := w.meta.Base
		s.Events += b.Events
		s.RepeatedIDs += b.RepeatedIDs
		s.Malformed += b.Malformed
		s.Late += b.Late
		s.Evicted += b.Evicted
	}
	return s
}

// checkState decides, on a state just opened, how it is restored: as it
// is, re-judged (another configuration) or refused.
func (w *Watcher) checkState(m *meta) error {
	if m.Version != storeVersion {
		return fmt.Errorf("%w: state %s was written by another twice version (state format %d, this build reads %d): run that version, or move the directory away to start afresh (positions, findings and the store's backlog are then lost)",
			ErrStateMismatch, w.opts.StateDir, m.Version, storeVersion)
	}
	hash := w.opts.Engine.ConfigHash
	if m.ConfigHash != hash {
		w.rejudging = true
		w.opts.Logf("configuration changed since the state was written:\n%s\n%s",
			configDiff(m.ConfigText, w.opts.ConfigText), w.rejudgeScope(m))
		return nil
	}
	if m.Snapshot == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(w.opts.StateDir, m.Snapshot))
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	err = engine.CheckSnapshotFormat(f)
	if err == nil {
		return nil
	}
	if !w.opts.ResetState {
		if errors.Is(err, engine.ErrSnapshotFormat) {
			return fmt.Errorf("%w: %s: %v.\n--reset-state rebuilds the detector state from the history in the state; %s",
				ErrStateMismatch, filepath.Join(w.opts.StateDir, m.Snapshot), err, w.rejudgeScope(m))
		}
		return fmt.Errorf("%s: %w (--reset-state rebuilds the detector state from the history)", m.Snapshot, err)
	}
	w.rejudging = true
	w.opts.Logf("--reset-state: the snapshot is set aside (%v); %s", err, w.rejudgeScope(m))
	return nil
}

// rejudgeScope says what rebuilding from the history keeps and loses.
func (w *Watcher) rejudgeScope(m *meta) string {
	var b strings.Builder
	b.WriteString("re-judging: the detector state is rebuilt under the new configuration from ")
	var n int64
	for _, s := range m.History {
		n += s.Records
	}
	switch floor := historyFloor(m); floor {
	case math.MinInt64:
		b.WriteString("every event audited so far (the history and the journal)")
	case math.MaxInt64:
		fmt.Fprintf(&b, "the %d records of history and the journal (events audited before them, by a twice that kept no history, are not replayed)", n)
	default:
		fmt.Fprintf(&b, "the %d records of history and the journal: every event after %s (the detectors' horizon before the watermark, at least)",
			n, time.Unix(0, floor).UTC().Format(time.RFC3339))
	}
	b.WriteString("; positions, finding revisions, the outbox and the store's backlog are kept. Lost: identities of older events (a copy delivered again counts twice) and the older events of jobs, effect keys and entities still open; findings resting on them stay as published.")
	return b.String()
}

// historyFloor returns a time at or after every event taken before the
// first chunk the history and journal hold: MinInt64 when they hold
// everything, MaxInt64 when it is not known (a state from before the
// history).
func historyFloor(m *meta) int64 {
	if m.Snapshot == "" {
		return math.MinInt64
	}
	if m.HistoryFloor == nil {
		return math.MaxInt64
	}
	return *m.HistoryFloor
}

// rebuild builds the engine of a re-judged state: a new one under the
// new configuration, with the history replayed into it (the journal
// follows, as in any restore).
func (w *Watcher) rebuild() error {
	w.eng = engine.New(w.opts.Engine)
	if w.meta.Snapshot == "" {
		return nil
	}
	replayed := 0
	for _, s := range w.meta.History {
		err := scanSegment(filepath.Join(w.historyDir(), s.Name), true, func(c journalChunk) error {
			n, err := replayChunk(w.eng, c.data)
			replayed += n
			return err
		})
		if err != nil {
			if w.opts.ResetState {
				w.opts.Logf("--reset-state: history %s skipped: %v", s.Name, err)
				continue
			}
			return fmt.Errorf("re-judging: %w (--reset-state skips what cannot be read)", err)
		}
	}
	w.opts.Logf("re-judging: %d events of history replayed", replayed)
	return nil
}

// rejudgeBase carries the summary's counts over a rebuild: what the
// rebuilt engine lacks of the counts at the last checkpoint.
func (w *Watcher) rejudgeBase() {
	m := w.meta
	if m.Totals == nil {
		m.Base = counts{}
		return
	}
	got := countsOf(w.eng.Summary())
	t := *m.Totals
	m.Base = counts{
		Events:      max(0, t.Events-got.Events),
		RepeatedIDs: max(0, t.RepeatedIDs-got.RepeatedIDs),
		Malformed:   max(0, t.Malformed-got.Malformed),
		Late:        max(0, t.Late-got.Late),
		Evicted:     max(0, t.Evicted-got.Evicted),
	}
}

// rejudgeFindings turns what the rebuilt engine finds into revisions of
// the findings published before (see the top of this file).
func (w *Watcher) rejudgeFindings() {
	floor := historyFloor(w.meta)
	judged := func(sf *savedFinding) bool {
		var h struct {
			FirstTS string `json:"first_ts"`
		}
		if json.Unmarshal(sf.Line, &h) != nil {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, h.FirstTS)
		return err == nil && floor != math.MaxInt64 && t.UnixNano() > floor
	}
	views := w.eng.Changes()
	made := make(map[string]bool, len(views))
	var apply []detectors.View
	kept := 0
	for _, v := range views {
		made[v.Fingerprint] = true
		if old := w.saved[v.Fingerprint]; old != nil && !judged(old) {
			kept++
			continue
		}
		apply = append(apply, v)
	}
	resolved := 0
	for fp, sf := range w.saved {
		if sf.Resolved || made[fp] {
			continue
		}
		if !judged(sf) {
			kept++
			continue
		}
		apply = append(apply, detectors.View{Detector: sf.detector, Fingerprint: fp})
		resolved++
	}
	before := w.meta.NextSeq
	w.applyViews(apply)
	w.opts.Logf("re-judged: %d revisions (%d findings no longer stand); %d findings resting on older events kept as published",
		w.meta.NextSeq-before, resolved, kept)
}

// configDiff lists the lines of ConfigText that changed.
func configDiff(old, cur string) string {
	if old == "" {
		return "  (the state does not record its configuration)"
	}
	was := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(old), "\n") {
		was[l] = true
	}
	is := map[string]bool{}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(cur), "\n") {
		is[l] = true
		if !was[l] {
			out = append(out, "  + "+l)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(old), "\n") {
		if !is[l] {
			out = append(out, "  - "+l)
		}
	}
	if len(out) == 0 {
		return "  (no line of the recorded configuration changed)"
	}
	return strings.Join(out, "\n")
}

// Open opens the state directory and checks that the state can be used,
// without restoring it: cheap, so that a mismatch (ErrStateMismatch) is
// reported before anything starts. It holds the state until Shutdown;
// Start calls it when it was not called.
func (w *Watcher) Open(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return nil
	}
	return w.open()
}

func (w *Watcher) open() error {
	if w.st != nil {
		return nil
	}
	st, err := openStore(w.opts.StateDir)
	if err != nil {
		return err
	}
	m, err := st.loadMeta()
	if err != nil {
		st.close()
		return err
	}
	if m == nil {
		floor := int64(math.MinInt64)
		m = &meta{Version: storeVersion, ConfigHash: w.opts.Engine.ConfigHash, ConfigText: w.opts.ConfigText,
			NextJournal: 1, NextSeq: 1, HistoryFloor: &floor}
	}
	if err := w.checkState(m); err != nil {
		st.close()
		return err
	}
	w.st, w.meta = st, m
	return nil
}
