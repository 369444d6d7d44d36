package jsonl_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// TestParseAgreesWithEncodingJSON reads every line of the repository's
// JSON Lines test data (testdata/ and each package's testdata/) and of the
// FuzzParse corpus with the hand-written scanner and with encoding/json
// (first of duplicate keys wins, as in Parse), and checks that they agree:
// a line the scanner accepts is JSON, and each field of the event is the
// value encoding/json decodes for it (strings with their escapes, integer
// attempt and seq, booleans, attrs as the same value).
func TestParseAgreesWithEncodingJSON(t *testing.T) {
	lines := differentialLines(t)
	if len(lines) < 1000 {
		t.Fatalf("only %d lines of test data found", len(lines))
	}
	var p jsonl.Parser
	parsed := 0
	for _, l := range lines {
		var ev twicetype.Event
		err := p.Parse(l.b, &ev)
		if err != nil {
			if utf8.Valid(l.b) && json.Valid(l.b) && strings.HasPrefix(err.Error(), "not valid JSON") {
				t.Errorf("%s: scanner rejects what encoding/json accepts: %v", l.where, err)
			}
			continue
		}
		parsed++
		if !json.Valid(l.b) {
			t.Errorf("%s: scanner accepts what encoding/json rejects", l.where)
			continue
		}
		obj, ok := firstWins(t, l.b).(map[string]any)
		if !ok {
			t.Errorf("%s: parsed, but not an object for encoding/json", l.where)
			continue
		}
		str := func(field, got string) {
			want, _ := obj[field].(string)
			if got != want {
				t.Errorf("%s: %s = %q, encoding/json %q", l.where, field, got, want)
			}
		}
		str("id", ev.ID)
		str("kind", ev.Kind.String())
		str("job_id", ev.JobID)
		str("job_type", ev.JobType)
		str("queue", ev.Queue)
		str("key", ev.Key)
		str("effect", ev.Effect)
		str("effect_key", ev.EffectKey)
		str("entity", ev.Entity)
		str("error", ev.Error)
		integer := func(field string, got int64, has bool) {
			v, present := obj[field]
			if present != has {
				t.Errorf("%s: %s present = %v, encoding/json %v", l.where, field, has, present)
				return
			}
			if !present {
				return
			}
			n, ok := v.(json.Number)
			want, err := strconv.ParseInt(string(n), 10, 64)
			if !ok || err != nil {
				// 2.0 or 1e0: accepted as integers by value.
				f, ferr := strconv.ParseFloat(string(n), 64)
				if ferr != nil || float64(got) != f {
					t.Errorf("%s: %s = %d, encoding/json %v", l.where, field, got, v)
				}
				return
			}
			if got != want {
				t.Errorf("%s: %s = %d, encoding/json %d", l.where, field, got, want)
			}
		}
		integer("attempt", ev.Attempt, ev.HasAttempt)
		integer("seq", ev.Seq, ev.HasSeq)
		boolean := func(field string, got, has bool) {
			v, present := obj[field]
			if present != has || (present && v != got) {
				t.Errorf("%s: %s = %v (set %v), encoding/json %v", l.where, field, got, has, v)
			}
		}
		boolean("terminal", ev.Terminal, ev.HasTerminal)
		boolean("retry", ev.Retry, ev.HasRetry)
		if a, present := obj["attrs"]; present != (ev.Attrs != nil) {
			t.Errorf("%s: attrs present = %v, encoding/json %v", l.where, ev.Attrs != nil, present)
		} else if present {
			got := firstWins(t, ev.Attrs)
			if !jsonEqual(got, a) {
				t.Errorf("%s: attrs = %s, encoding/json %v", l.where, ev.Attrs, a)
			}
		}
	}
	t.Logf("%d lines, %d parsed as events", len(lines), parsed)
	if parsed == 0 {
		t.Fatal("no line parsed")
	}
}

// jsonEqual compares values decoded by firstWins.
func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

type diffLine struct {
	where string
	b     []byte
}

// differentialLines returns the lines of every *.jsonl file under a
// testdata directory of the module, and the inputs of the FuzzParse
// corpus.
func differentialLines(t *testing.T) []diffLine {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var out []diffLine
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".jsonl") || !strings.Contains(path, string(filepath.Separator)+"testdata"+string(filepath.Separator)) {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		rel, _ := filepath.Rel(root, path)
		for n := 1; sc.Scan(); n++ {
			b := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
			if len(bytes.TrimSpace(b)) == 0 {
				continue
			}
			out = append(out, diffLine{rel + ":" + strconv.Itoa(n), bytes.Clone(b)})
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	corpus := filepath.Join("testdata", "fuzz", "FuzzParse")
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(corpus, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// go test fuzz v1, then one []byte("...") literal.
		_, lit, ok := strings.Cut(string(b), "\n")
		lit = strings.TrimSpace(lit)
		if !ok || !strings.HasPrefix(lit, "[]byte(") || !strings.HasSuffix(lit, ")") {
			t.Fatalf("%s: not a corpus file of one []byte", e.Name())
		}
		s, err := strconv.Unquote(lit[len("[]byte(") : len(lit)-1])
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, diffLine{"fuzz corpus " + e.Name(), []byte(s)})
	}
	return out
}
