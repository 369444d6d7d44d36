package kafka

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/twicetype"
)

// source parses one kafka source from the YAML of its entries (indented
// by four spaces, after name, type, brokers and topics).
func source(tb testing.TB, entries string) config.Source {
	tb.Helper()
	y := "sources:\n  - name: src\n    type: kafka\n    brokers: [localhost:9092]\n    topics: [t]\n" + entries
	c, err := config.Parse("twice.yaml", []byte(y))
	if err != nil {
		tb.Fatalf("config:\n%s\n%v", y, err)
	}
	return c.Sources[0]
}

func mapper(tb testing.TB, entries string, opts MapperOptions) *Mapper {
	tb.Helper()
	m, err := NewMapper(source(tb, entries), opts)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func msg(value string) *Message {
	return &Message{Topic: "t", Partition: 3, Offset: 1234, Value: []byte(value), Time: time.UnixMilli(1700000000123).UTC()}
}

const mapConfig = `    format: map
    map:
      id: value.uuid
      ts: timestamp
      kind: 'value.type == "sent" ? "effect" : value.type == "refund" ? "state" : value.type'
      queue: topic + "/" + string(partition)
      job_id: value.job?.id
      attempt: value.job?.attempt
      effect: '"email." + value.type'
      effect_key: '"receipt/" + value.payment_id'
      entity: key
      seq: value.version
      terminal: 'value.type == "refund" ? true : nil'
      error: headers["err"]
      attrs: '{"trace": headers["trace-id"], "ms": timestamp_ms, "ms2": unix_ms(timestamp), "off": offset}'
`

func TestMapTwice(t *testing.T) {
	t.Parallel()
	m := mapper(t, "", MapperOptions{})
	var ev twicetype.Event
	line := `{"ts":"2026-11-24T10:00:00Z","kind":"effect","effect":"email.sent","effect_key":"r/1","attrs":{"b":1}}`
	if err := m.Map(msg(line), &ev); err != nil {
		t.Fatal(err)
	}
	var want twicetype.Event
	if err := jsonl.NewParser().Parse([]byte(line), &want); err != nil {
		t.Fatal(err)
	}
	want.Source, want.Line, want.Identity = "src t[3]", 1234, OffsetIdentity("t", 3, 1234)
	if !eventsEqual(&ev, &want) {
		t.Errorf("event = %+v\nwant %+v", ev, want)
	}
	if got := ev.Ref(); got != "src t[3]:1234" {
		t.Errorf("Ref = %q", got)
	}
}

func eventsEqual(a, b *twicetype.Event) bool {
	return a.ID == b.ID && a.Identity == b.Identity && a.Time == b.Time && a.Kind == b.Kind &&
		a.Queue == b.Queue && a.JobType == b.JobType && a.JobID == b.JobID && a.Key == b.Key &&
		a.Effect == b.Effect && a.EffectKey == b.EffectKey && a.Entity == b.Entity && a.Error == b.Error &&
		a.Attempt == b.Attempt && a.HasAttempt == b.HasAttempt && a.Seq == b.Seq && a.HasSeq == b.HasSeq &&
		a.Terminal == b.Terminal && a.HasTerminal == b.HasTerminal && a.Retry == b.Retry && a.HasRetry == b.HasRetry &&
		string(a.Attrs) == string(b.Attrs) && a.Source == b.Source && a.Line == b.Line
}

// TestMapTwiceMalformedLikeAFile checks that format twice reports exactly
// the reasons the file collector's parser gives.
func TestMapTwiceMalformedLikeAFile(t *testing.T) {
	t.Parallel()
	m := mapper(t, "", MapperOptions{})
	for _, line := range []string{
		``,
		`not json`,
		`[1]`,
		"{\"ts\":\"2026-11-24T10:00:00Z\",\"kind\":\"state\",\"entity\":\"\xff\"}",
		`{"kind":"state","entity":"e"}`,
		`{"ts":"2026-11-24T10:00:00Z","entity":"e"}`,
		`{"ts":"yesterday","kind":"state","entity":"e"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"job.begun","job_id":"j"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"job.started"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"effect","effect":"e"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"state"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"job.started","job_id":"j","attempt":0}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"state","entity":"e","seq":null}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"state","entity":"e","terminal":"yes"}`,
		`{"ts":"2026-11-24T10:00:00Z","kind":"state","entity":"e","attrs":[]}`,
	} {
		var ev twicetype.Event
		err := m.Map(msg(line), &ev)
		var mal twicetype.Malformed
		if !errors.As(err, &mal) {
			t.Errorf("%s: error %v, want a Malformed", line, err)
			continue
		}
		perr := jsonl.NewParser().Parse([]byte(line), &ev)
		if perr == nil {
			t.Fatalf("%s: the parser accepts it", line)
		}
		want := twicetype.Malformed{Source: "src t[3]", Line: 1234, Reason: perr.Error()}
		if mal != want {
			t.Errorf("%s: %+v, want %+v", line, mal, want)
		}
	}
	if c := m.Stats().Counts(); c.Malformed != 15 || c.ByReason[`missing field "ts"`] != 1 {
		t.Errorf("counts = %+v", c)
	}
}

func TestMapIdentity(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, config, noID, withID string }{
		{"twice", "",
			`{"ts":1,"kind":"state","entity":"e"}`,
			`{"id":"x","ts":1,"kind":"state","entity":"e"}`},
		{"map", "    format: map\n    map: {id: value.id, ts: value.ts, kind: value.kind, entity: value.entity}\n",
			`{"ts":1,"kind":"state","entity":"e"}`,
			`{"id":"x","ts":1,"kind":"state","entity":"e"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := mapper(t, tt.config, MapperOptions{})
			identity := func(value string, partition int, offset int64) uint64 {
				var ev twicetype.Event
				mm := &Message{Topic: "t", Partition: partition, Offset: offset, Value: []byte(value)}
				if err := m.Map(mm, &ev); err != nil {
					t.Fatal(err)
				}
				return ev.Identity
			}
			// Without id: equal content at two offsets is two events, one
			// offset read twice is one.
			a, b, a2 := identity(tt.noID, 0, 1), identity(tt.noID, 0, 2), identity(tt.noID, 0, 1)
			c := identity(tt.noID, 1, 1)
			if a == b || a != a2 || a == c || a == 0 {
				t.Errorf("identities without id: %x %x %x %x", a, b, a2, c)
			}
			// With id: the id decides, as in a file.
			x, y := identity(tt.withID, 0, 1), identity(tt.withID, 2, 9)
			var fromFile twicetype.Event
			_ = jsonl.NewParser().Parse([]byte(`{"id":"x","ts":5,"kind":"effect","effect":"a","effect_key":"b"}`), &fromFile)
			if x != y || x != fromFile.Identity {
				t.Errorf("identities with id: %x %x, file %x", x, y, fromFile.Identity)
			}
		})
	}
}

func TestMapExpressions(t *testing.T) {
	t.Parallel()
	m := mapper(t, mapConfig, MapperOptions{})
	mm := msg(`{"uuid":"u-1","type":"sent","payment_id":"p-9","version":4,"job":{"id":"j-1","attempt":2}}`)
	mm.Key = []byte("order:42")
	mm.Headers = []Header{{"trace-id", []byte("tr-7")}, {"other", []byte("x")}}
	var ev twicetype.Event
	if err := m.Map(mm, &ev); err != nil {
		t.Fatal(err)
	}
	want := twicetype.Event{
		ID: "u-1", Time: 1700000000123 * 1e6, Kind: twicetype.Effect, Queue: "t/3", JobID: "j-1",
		Attempt: 2, HasAttempt: true, Effect: "email.sent", EffectKey: "receipt/p-9", Entity: "order:42",
		Seq: 4, HasSeq: true, Attrs: []byte(`{"ms":1700000000123,"ms2":1700000000123,"off":1234,"trace":"tr-7"}`),
		Source: "src t[3]", Line: 1234,
	}
	want.Identity = ev.Identity // of the id, checked in TestMapIdentity
	if !eventsEqual(&ev, &want) {
		t.Errorf("event =\n%+v\nwant\n%+v", ev, want)
	}

	// The other branch of the conditionals; missing objects leave fields out.
	mm = msg(`{"type":"refund","version":5}`)
	mm.Key = []byte("order:42")
	if err := m.Map(mm, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != twicetype.State || !ev.HasTerminal || !ev.Terminal || ev.JobID != "" || ev.HasAttempt || ev.ID != "" ||
		ev.Identity != OffsetIdentity("t", 3, 1234) || ev.Effect != "email.refund" || string(ev.Attrs) != `{"ms":1700000000123,"ms2":1700000000123,"off":1234,"trace":""}` {
		t.Errorf("event = %+v", ev)
	}
}

func TestMapMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, config, value, want string
	}{
		{"value not JSON", "", `{"a":`, `value is not valid JSON: cannot parse JSON: cannot parse object: cannot parse object value: cannot parse empty string; unparsed tail: ""`},
		{"kind from a missing field", "", `{"ts":1}`, `missing field "kind"`},
		{"unknown kind", "", `{"ts":1,"kind":"sent"}`, `unknown kind "sent"`},
		{"ts not a time", "", `{"ts":"soon","kind":"state","entity":"e"}`, `field "ts": "soon" is not an RFC 3339 time`},
		{"attempt a string", "", `{"ts":1,"kind":"job.started","job_id":"j","attempt":"2"}`, `field "attempt": want an integer ≥ 1, got a string`},
		{"attempt fractional", "", `{"ts":1,"kind":"job.started","job_id":"j","attempt":1.5}`, `field "attempt": want an integer ≥ 1, got 1.5`},
		{"attempt from arithmetic", "", `{"ts":1,"kind":"job.started","job_id":"j","attempt":4.0}`, ``},
		{"attrs not an object", "", `{"ts":1,"kind":"state","entity":"e","attrs":"x"}`, `field "attrs": want an object, got a string`},
		{"needed field from a failed expression", "e", `{"ts":1,"kind":"state"}`, `missing field "entity" (needed by state) (map.entity: cannot fetch id from <nil>)`},
		{"value JSON cannot hold", "nan", `{"ts":1,"kind":"state","entity":"e"}`, `field "seq": expression yields NaN, which JSON cannot hold`},
		{"duration", "dur", `{"ts":1,"kind":"state","entity":"e"}`, `field "error": expression yields a time.Duration, which JSON cannot hold`},
		{"empty value", "", ``, `missing field "ts" (map.ts: cannot fetch ts from <nil>)`},
		{"invalid UTF-8 key", "key", `{"ts":1,"kind":"state"}`, `not valid UTF-8`},
	}
	configs := map[string]string{
		"":    "    format: map\n    map: {ts: value.ts, kind: value.kind, entity: value.entity, job_id: value.job_id, attempt: value.attempt, attrs: value.attrs}\n",
		"e":   "    format: map\n    map: {ts: value.ts, kind: value.kind, entity: value.owner.id}\n",
		"nan": "    format: map\n    map: {ts: value.ts, kind: value.kind, entity: value.entity, seq: 0.0 / 0.0}\n",
		"dur": "    format: map\n    map: {ts: value.ts, kind: value.kind, entity: value.entity, error: duration(\"1h\")}\n",
		"key": "    format: map\n    map: {ts: value.ts, kind: value.kind, entity: key}\n",
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mapper(t, configs[tt.config], MapperOptions{})
			mm := msg(tt.value)
			mm.Key = []byte("k\xff")
			var ev twicetype.Event
			err := m.Map(mm, &ev)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Map = %v", err)
				}
				return
			}
			var mal twicetype.Malformed
			if !errors.As(err, &mal) || mal.Source != "src t[3]" || mal.Line != 1234 {
				t.Fatalf("Map = %#v, want a Malformed of src t[3] at 1234", err)
			}
			if mal.Reason != tt.want {
				t.Errorf("reason =\n%s\nwant\n%s", mal.Reason, tt.want)
			}
			if got := mal.Error(); got != "src t[3]:1234: "+tt.want {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dead.jsonl")
	stats := NewStats()
	// Room for two lines of the message below (170 bytes each).
	dl := NewDeadLetter(path, 400)
	defer dl.Close()
	m := mapper(t, "", MapperOptions{Stats: stats, DeadLetter: dl})
	var ev twicetype.Event
	for i := range 5 {
		mm := msg(`{"ts":1,"kind":"nope"}`)
		mm.Offset = int64(i)
		mm.Key = []byte("k")
		if err := m.Map(mm, &ev); err == nil {
			t.Fatal("Map accepted a bad kind")
		}
	}
	c := stats.Counts()
	if c.Malformed != 5 || c.DeadLettered != 2 || c.DeadLetterDropped != 3 || c.ByReason[`unknown kind "nope"`] != 5 {
		t.Errorf("counts = %+v", c)
	}
	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	want := `{"topic":"t","partition":3,"offset":1,"key":"k","value":"{\"ts\":1,\"kind\":\"nope\"}","reason":"unknown kind \"nope\"","time":"2023-11-14T22:13:20.123Z"}`
	if lines[1] != want {
		t.Errorf("line =\n%s\nwant\n%s", lines[1], want)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &parsed); err != nil || parsed["offset"] != 0.0 {
		t.Errorf("line %s: %v", lines[0], err)
	}

	// Truncating the file lets writing resume.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_ = m.Map(msg(`{}`), &ev)
	if c := stats.Counts(); c.DeadLettered != 3 || len(readLines(t, path)) != 1 {
		t.Errorf("after truncate: %+v", c)
	}
	// A file that exists counts toward the cap.
	dl2 := NewDeadLetter(path, 200)
	defer dl2.Close()
	if ok, err := dl2.Write(msg(`{}`), "r"); ok || !errors.Is(err, ErrDeadLetterFull) {
		t.Errorf("Write into a full file = %v, %v", ok, err)
	}
	dl2.Close()
	if ok, err := dl2.Write(msg(`{}`), "r"); ok || err == nil {
		t.Errorf("Write after Close = %v, %v", ok, err)
	}
}

func readLines(tb testing.TB, path string) []string {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func TestStatsCapReasons(t *testing.T) {
	t.Parallel()
	s := NewStats()
	for i := range maxReasons + 10 {
		s.addMalformed("r" + strings.Repeat("x", i))
	}
	c := s.Counts()
	if len(c.ByReason) != maxReasons+1 || c.ByReason[OtherReasons] != 10 || c.Malformed != maxReasons+10 {
		t.Errorf("%d reasons, other %d", len(c.ByReason), c.ByReason[OtherReasons])
	}
}

func TestNewMapperRejects(t *testing.T) {
	t.Parallel()
	if _, err := NewMapper(config.Source{Name: "f", Type: "file", Paths: []string{"x"}}, MapperOptions{}); err == nil {
		t.Error("NewMapper accepted a file source")
	}
}
