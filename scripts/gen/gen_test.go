package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testEvents = 20_000

// generateFile runs the command as a user would and returns the file's
// bytes and the stats of an in-process run with the same options.
func generateFile(tb testing.TB, seed string) ([]byte, string) {
	tb.Helper()
	dir := tb.TempDir()
	out := filepath.Join(dir, "events.jsonl")
	var stderr bytes.Buffer
	if err := run([]string{"-events", "20000", "-seed", seed, "-o", out, "-config", filepath.Join(dir, "twice.yaml")}, &stderr); err != nil {
		tb.Fatalf("gen: %v\n%s", err, stderr.String())
	}
	data, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "twice.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	if string(cfg) != ConfigYAML {
		tb.Fatalf("config file differs from ConfigYAML")
	}
	return data, stderr.String()
}

func generateStats(tb testing.TB, seed uint64) Stats {
	tb.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	st, err := Generate(w, Options{Events: testEvents, Seed: seed, JobInterval: defaultOptions().JobInterval})
	if err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return st
}

func TestDeterministic(t *testing.T) {
	a, sumA := generateFile(t, "7")
	b, sumB := generateFile(t, "7")
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with seed 7 wrote different bytes")
	}
	if sumA != sumB {
		t.Fatalf("summaries differ:\n%s\n%s", sumA, sumB)
	}
	c, _ := generateFile(t, "8")
	if bytes.Equal(a, c) {
		t.Fatal("seeds 7 and 8 wrote the same bytes")
	}
	if !strings.HasPrefix(sumA, "gen: lines=20000 ") || strings.Count(sumA, "\n") != 1 {
		t.Fatalf("summary is not one line starting with the line count: %q", sumA)
	}
}

var validKinds = map[string]bool{
	"job.enqueued": true, "job.started": true, "job.succeeded": true, "job.failed": true,
	"job.dead": true, "job.discarded": true, "effect": true, "state": true,
}

// invalid says why a line is not a valid event under spec §1, or "".
func invalid(line []byte) string {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return "json: " + err.Error()
	}
	for k, v := range m {
		if v == nil {
			return "null " + k
		}
	}
	str := func(k string) bool { _, ok := m[k].(string); return ok }
	switch ts := m["ts"].(type) {
	case string:
	case json.Number:
		if _, err := ts.Int64(); err != nil {
			return "ts not an integer"
		}
	default:
		return "ts missing or of the wrong type"
	}
	kind, _ := m["kind"].(string)
	if !validKinds[kind] {
		return "bad kind"
	}
	for _, k := range []string{"id", "queue", "job_type", "job_id", "key", "effect", "effect_key", "entity", "error"} {
		if _, ok := m[k]; ok && !str(k) {
			return k + " not a string"
		}
	}
	for _, k := range []string{"terminal", "retry"} {
		if _, ok := m[k].(bool); m[k] != nil && !ok {
			return k + " not a bool"
		}
	}
	if a, ok := m["attempt"]; ok {
		n, isNum := a.(json.Number)
		v, err := n.Int64()
		if !isNum || err != nil || v < 1 {
			return "attempt not an integer >= 1"
		}
	}
	switch {
	case strings.HasPrefix(kind, "job.") && !str("job_id"):
		return "job event without job_id"
	case kind == "effect" && (!str("effect") || !str("effect_key")):
		return "effect without effect or effect_key"
	case kind == "state" && !str("entity"):
		return "state without entity"
	}
	return ""
}

func TestLinesAndFaults(t *testing.T) {
	data, _ := generateFile(t, "1")
	st := generateStats(t, 1)

	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if int64(len(lines)) != testEvents || st.Lines != testEvents || st.Bytes != int64(len(data)) {
		t.Fatalf("lines=%d stats.Lines=%d stats.Bytes=%d file bytes=%d", len(lines), st.Lines, st.Bytes, len(data))
	}
	var bad int64
	kinds := map[string]int{}
	for i, l := range lines {
		if why := invalid(l); why != "" {
			bad++
			if bad > st.Malformed() {
				t.Errorf("line %d: %s: %s", i+1, why, l)
			}
			continue
		}
		var m struct{ Kind string }
		_ = json.Unmarshal(l, &m)
		kinds[m.Kind]++
	}
	if bad != st.Malformed() {
		t.Errorf("%d invalid lines, %d malformed injected", bad, st.Malformed())
	}
	for k := range validKinds {
		if kinds[k] == 0 {
			t.Errorf("no %s event", k)
		}
	}

	for i := 1; i < numTags; i++ {
		if st.Faults[i] == 0 {
			t.Errorf("fault %s: none injected", tagNames[i])
		}
	}
	for i, n := range st.Mal {
		if n == 0 {
			t.Errorf("malformed %s: none injected", malNames[i])
		}
	}
	if st.Repeated == 0 || st.Reorders == 0 {
		t.Errorf("repeated=%d reorders=%d, want both > 0", st.Repeated, st.Reorders)
	}
	if st.Events+st.Repeated+st.Malformed() != st.Lines {
		t.Errorf("events %d + repeated %d + malformed %d != lines %d", st.Events, st.Repeated, st.Malformed(), st.Lines)
	}
	// Most jobs are clean.
	var faulty int64
	for i := 1; i < tagTransientRetry; i++ {
		faulty += st.Faults[i]
	}
	if faulty*20 > st.Jobs {
		t.Errorf("%d faults in %d jobs: more than 5%%", faulty, st.Jobs)
	}
}
