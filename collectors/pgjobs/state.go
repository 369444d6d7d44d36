package pgjobs

import (
	"fmt"
	"github.com/twicehq/twice/sources"
	"strconv"
)

// stateVersion is the version of the saved tracker state; a state of
// another version is not read (the tracker starts afresh, which costs
// repeated ids only).
const stateVersion = 1

// savedState is what a watch keeps in twice's checkpoint as the lane's
// position: the cursor, the ids read above it, and per followed job what
// was emitted, so that after a restart each event is emitted once.
type savedState struct {
	V        int                  `json:"v"`
	Cursor   int64                `json:"cursor"`
	CursorAt int64                `json:"cursor_at,omitempty"`
	Started  bool                 `json:"started,omitempty"`
	Ahead    map[string]int64     `json:"ahead,omitempty"`
	Jobs     map[string]*jobState `json:"jobs,omitempty"`
}

// save writes the tracker's state as printable text: gzip'd JSON in
// base64.
func (t *tracker) save() (string, error) {
	st := savedState{V: stateVersion, Cursor: t.cursor, CursorAt: t.cursorAt, Started: t.started,
		Ahead: make(map[string]int64, len(t.ahead)), Jobs: make(map[string]*jobState, len(t.jobs))}
	for id, at := range t.ahead {
		st.Ahead[strconv.FormatInt(id, 10)] = at
	}
	for id, js := range t.jobs {
		st.Jobs[strconv.FormatInt(id, 10)] = js
	}
	text, err := sources.PackJSON(st)
	if err != nil {
		return "", fmt.Errorf("save the poll state: %w", err)
	}
	return text, nil
}

// load restores a state written by save into a new tracker.
func (t *tracker) load(text string) error {
	var st savedState
	if err := sources.UnpackJSON(text, &st); err != nil {
		return fmt.Errorf("poll state: %w", err)
	}
	if st.V != stateVersion {
		return fmt.Errorf("poll state of version %d, want %d", st.V, stateVersion)
	}
	ahead := make(map[int64]int64, len(st.Ahead))
	for k, at := range st.Ahead {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return fmt.Errorf("poll state: ahead id %q", k)
		}
		ahead[id] = at
	}
	jobs := make(map[int64]*jobState, len(st.Jobs))
	for k, js := range st.Jobs {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil || js == nil {
			return fmt.Errorf("poll state: job id %q", k)
		}
		jobs[id] = js
	}
	t.cursor, t.cursorAt, t.started, t.ahead, t.jobs = st.Cursor, st.CursorAt, st.Started, ahead, jobs
	return nil
}
