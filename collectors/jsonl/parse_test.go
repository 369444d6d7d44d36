package jsonl_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// 2026-11-24T10:00:00Z in Unix milliseconds and nanoseconds.
const (
	t10ms = int64(1795514400000)
	t10ns = t10ms * 1e6
)

func parse(t *testing.T, line string) (twicetype.Event, error) {
	t.Helper()
	var p jsonl.Parser
	ev := twicetype.Event{Source: "src.jsonl", Line: 7}
	err := p.Parse([]byte(line), &ev)
	return ev, err
}

func mustParse(t *testing.T, line string) twicetype.Event {
	t.Helper()
	ev, err := parse(t, line)
	if err != nil {
		t.Fatalf("Parse(%s): %v", line, err)
	}
	return ev
}

func TestParseValidKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want twicetype.Event
	}{
		{
			name: "job.enqueued with everything",
			line: `{"id":"e-1","ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","queue":"emails","job_type":"SendReceipt","job_id":"j-1","key":"payment:123","entity":"order:42","seq":-3,"attrs":{"payment_id": "p-9", "n": [1, 2.50]},"extra":[null]}`,
			want: twicetype.Event{ID: "e-1", Time: t10ns, Kind: twicetype.JobEnqueued, Queue: "emails", JobType: "SendReceipt", JobID: "j-1", Key: "payment:123", Entity: "order:42", Seq: -3, HasSeq: true, Attrs: []byte(`{"payment_id": "p-9", "n": [1, 2.50]}`)},
		},
		{
			name: "job.started",
			line: `{"ts":1795514400000,"kind":"job.started","job_id":"j-1","attempt":1}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobStarted, JobID: "j-1", Attempt: 1, HasAttempt: true},
		},
		{
			name: "job.succeeded",
			line: `{"ts":1795514400000,"kind":"job.succeeded","job_id":"j-1","attempt":9223372036854775807}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobSucceeded, JobID: "j-1", Attempt: 9223372036854775807, HasAttempt: true},
		},
		{
			name: "job.failed",
			line: `{"ts":1795514400000,"kind":"job.failed","job_id":"j-1","attempt":2,"retry":true,"error":"timeout: \"smtp\"\n"}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobFailed, JobID: "j-1", Attempt: 2, HasAttempt: true, Retry: true, HasRetry: true, Error: "timeout: \"smtp\"\n"},
		},
		{
			name: "job.dead",
			line: `{"ts":1795514400000,"kind":"job.dead","job_id":"j-1","retry":false}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobDead, JobID: "j-1", HasRetry: true},
		},
		{
			name: "job.discarded",
			line: `{"ts":1795514400000,"kind":"job.discarded","job_id":"j-1"}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobDiscarded, JobID: "j-1"},
		},
		{
			name: "effect",
			line: `{"ts":1795514400000,"kind":"effect","effect":"email.sent","effect_key":"receipt/payment:123","job_id":"j-1","attempt":1,"entity":"order:42","seq":5}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.Effect, Effect: "email.sent", EffectKey: "receipt/payment:123", JobID: "j-1", Attempt: 1, HasAttempt: true, Entity: "order:42", Seq: 5, HasSeq: true},
		},
		{
			name: "state",
			line: `{"ts":1795514400000,"kind":"state","entity":"order:42","seq":0,"terminal":true}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "order:42", HasSeq: true, Terminal: true, HasTerminal: true},
		},
		{
			name: "state not terminal",
			line: `{"ts":1795514400000,"kind":"state","entity":"order:42","terminal":false}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "order:42", HasTerminal: true},
		},
		{
			name: "escapes decoded, whitespace and unknown fields ignored",
			line: " \t{ \"ts\" : 1795514400000 , \"kind\":\"job\\u002estarted\", \"job_id\":\"j\\u00e9\\/\\ud83d\\ude00\", \"queue\":\"\\u0065mails\", \"unknown\": {\"ts\": 1} } \r",
			want: twicetype.Event{Time: t10ns, Kind: twicetype.JobStarted, JobID: "jé/😀", Queue: "emails"},
		},
		{
			name: "escaped key names a field",
			line: `{"\u0074s":1795514400000,"kind":"state","entit\u0079":"order:42"}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "order:42"},
		},
		{
			name: "lone surrogate in a field becomes U+FFFD",
			line: `{"ts":1795514400000,"kind":"state","entity":"a\ud800b"}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "a\uFFFDb"},
		},
		{
			name: "duplicate keys: the first wins",
			line: `{"ts":1795514400000,"kind":"state","entity":"first","entity":"second","kind":"effect","attempt":1,"attempt":null}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "first", Attempt: 1, HasAttempt: true},
		},
		{
			name: "empty optional strings",
			line: `{"id":"","ts":1795514400000,"kind":"state","entity":"e","queue":"","key":"","error":""}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "e"},
		},
		{
			name: "empty attrs object",
			line: `{"ts":1795514400000,"kind":"state","entity":"e","attrs":{}}`,
			want: twicetype.Event{Time: t10ns, Kind: twicetype.State, Entity: "e", Attrs: []byte(`{}`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mustParse(t, tt.line)
			if got.Identity == 0 {
				t.Errorf("Identity = 0")
			}
			want := tt.want
			want.Identity = got.Identity
			want.Source, want.Line = "src.jsonl", 7
			if !eventsEqual(got, want) {
				t.Errorf("Parse(%s)\n got %+v\nwant %+v", tt.line, got, want)
			}
		})
	}
}

func eventsEqual(a, b twicetype.Event) bool {
	return reflect.DeepEqual(a, b)
}

func TestParseTS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ts   string
		want int64
	}{
		{`"2026-11-24T10:00:00Z"`, t10ns},
		{`"2026-11-24T11:00:00+01:00"`, t10ns},
		{`"2026-11-24T05:30:00-04:30"`, t10ns},
		{`"2026-11-24T10:00:00-00:00"`, t10ns},
		{`"2026-11-24t10:00:00z"`, t10ns},
		{`"2026-11-24T10:00:00.5Z"`, t10ns + 500_000_000},
		{`"2026-11-24T10:00:00.123456789Z"`, t10ns + 123_456_789},
		{`"2026-11-24T10:00:00.1234567891234Z"`, t10ns + 123_456_789},
		{`"2026-11-24T11:00:00.000000001+01:00"`, t10ns + 1},
		{`"2026-11-25T00:30:00+14:30"`, t10ns},
		{`"1970-01-01T00:00:00Z"`, 0},
		{`"1969-12-31T23:59:59.999999999Z"`, -1},
		{`"2024-02-29T00:00:00Z"`, 1709164800 * 1e9},
		{`"2000-02-29T00:00:00Z"`, 951782400 * 1e9},
		{`"2262-04-11T23:47:16.854775807Z"`, 9223372036854775807},
		{`"1677-09-21T00:12:43.145224192Z"`, -9223372036854775808},
		{`"2026-11-24T10:00:00\u005a"`, t10ns},
		{`1795514400000`, t10ns},
		{`1795514400001`, t10ns + 1e6},
		{`0`, 0},
		{`-0`, 0},
		{`-1`, -1e6},
		{`9223372036854`, 9223372036854 * 1e6},
		{`-9223372036854`, -9223372036854 * 1e6},
	}
	for _, tt := range tests {
		ev, err := parse(t, `{"ts":`+tt.ts+`,"kind":"state","entity":"e"}`)
		if err != nil {
			t.Errorf("ts %s: %v", tt.ts, err)
			continue
		}
		if ev.Time != tt.want {
			t.Errorf("ts %s: Time = %d, want %d", tt.ts, ev.Time, tt.want)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	t.Parallel()
	const ok = `"ts":1795514400000,"kind":"state","entity":"e"`
	tests := []struct {
		line  string
		want  string
		field string
	}{
		{"", "not valid JSON: empty", ""},
		{"  \t", "not valid JSON: empty", ""},
		{"{\"ts\":\"\xff\"}", "not valid UTF-8", ""},
		{`{"ts":1`, "not valid JSON: unexpected end of line", ""},
		{`{"ts":1,}`, `not valid JSON: unexpected '}' where an object key should be at column 9`, ""},
		{`{"ts":1}x`, `not valid JSON: unexpected 'x' after the value at column 9`, ""},
		{`{"ts":01}`, `not valid JSON: unexpected '1' after an object member at column 8`, ""},
		{`{"ts":1.}`, `not valid JSON: unexpected '}' in a number at column 9`, ""},
		{`{"ts":NaN}`, `not valid JSON: unexpected 'N' where a value should be at column 7`, ""},
		{`{"ts":tru}`, `not valid JSON: unexpected 't' where a value should be at column 7`, ""},
		{`{"a":"\q"}`, `not valid JSON: invalid escape "\\q" at column 7`, ""},
		{`{"a":"\u12"}`, `not valid JSON: invalid \u escape at column 7`, ""},
		{"{\"a\":\"\t\"}", `not valid JSON: control character '\t' in a string at column 7`, ""},
		{`{"a":"x}`, `not valid JSON: unterminated string starting at column 6`, ""},
		{`{'a':1}`, `not valid JSON: unexpected '\'' where an object key should be at column 2`, ""},
		{strings.Repeat("[", 1001) + strings.Repeat("]", 1001), "nested deeper than 1000 levels", ""},
		{`[1]`, "not a JSON object (got an array)", ""},
		{`"x"`, "not a JSON object (got a string)", ""},
		{`null`, "not a JSON object (got null)", ""},
		{`{"kind":"state","entity":"e"}`, `missing field "ts"`, "ts"},
		{`{"ts":"","kind":"state","entity":"e"}`, `missing field "ts"`, "ts"},
		{`{"ts":null,"kind":"state","entity":"e"}`, `field "ts": want an RFC 3339 string or integer Unix milliseconds, got null`, "ts"},
		{`{"ts":1.5,"kind":"state","entity":"e"}`, `field "ts": want an RFC 3339 string or integer Unix milliseconds, got 1.5`, "ts"},
		{`{"ts":1e3,"kind":"state","entity":"e"}`, `field "ts": want an RFC 3339 string or integer Unix milliseconds, got 1e3`, "ts"},
		{`{"ts":true,"kind":"state","entity":"e"}`, `field "ts": want an RFC 3339 string or integer Unix milliseconds, got true`, "ts"},
		{`{"ts":9223372036855,"kind":"state","entity":"e"}`, `field "ts": 9223372036855 Unix milliseconds is out of range (1677-09-21 to 2262-04-11)`, "ts"},
		{`{"ts":-9223372036855,"kind":"state","entity":"e"}`, `field "ts": -9223372036855 Unix milliseconds is out of range (1677-09-21 to 2262-04-11)`, "ts"},
		{`{"ts":"yesterday","kind":"state","entity":"e"}`, `field "ts": "yesterday" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24 10:00:00Z","kind":"state","entity":"e"}`, `field "ts": "2026-11-24 10:00:00Z" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24T10:00:00","kind":"state","entity":"e"}`, `field "ts": "2026-11-24T10:00:00" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-02-29T10:00:00Z","kind":"state","entity":"e"}`, `field "ts": "2026-02-29T10:00:00Z" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24T24:00:00Z","kind":"state","entity":"e"}`, `field "ts": "2026-11-24T24:00:00Z" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24T10:00:60Z","kind":"state","entity":"e"}`, `field "ts": "2026-11-24T10:00:60Z" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24T10:00:00.Z","kind":"state","entity":"e"}`, `field "ts": "2026-11-24T10:00:00.Z" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2026-11-24T10:00:00+0100","kind":"state","entity":"e"}`, `field "ts": "2026-11-24T10:00:00+0100" is not an RFC 3339 time`, "ts"},
		{`{"ts":"2300-01-01T00:00:00Z","kind":"state","entity":"e"}`, `field "ts": "2300-01-01T00:00:00Z" is out of range (1677-09-21 to 2262-04-11)`, "ts"},
		{`{"ts":"1677-09-21T00:12:43.145224191Z","kind":"state","entity":"e"}`, `field "ts": "1677-09-21T00:12:43.145224191Z" is out of range (1677-09-21 to 2262-04-11)`, "ts"},
		{`{"ts":1}`, `missing field "kind"`, "kind"},
		{`{"ts":1,"kind":""}`, `missing field "kind"`, "kind"},
		{`{"ts":1,"kind":null}`, `field "kind": want a string, got null`, "kind"},
		{`{"ts":1,"kind":7}`, `field "kind": want a string, got 7`, "kind"},
		{`{"ts":1,"kind":"job.exploded"}`, `unknown kind "job.exploded"`, "kind"},
		{`{"ts":1,"kind":"Effect"}`, `unknown kind "Effect"`, "kind"},
		{`{"ts":1,"kind":"job.started"}`, `missing field "job_id" (needed by job.started)`, "job_id"},
		{`{"ts":1,"kind":"job.enqueued","job_id":""}`, `missing field "job_id" (needed by job.enqueued)`, "job_id"},
		{`{"ts":1,"kind":"job.dead","effect":"x"}`, `missing field "job_id" (needed by job.dead)`, "job_id"},
		{`{"ts":1,"kind":"effect","effect_key":"k"}`, `missing field "effect" (needed by effect)`, "effect"},
		{`{"ts":1,"kind":"effect","effect":"e"}`, `missing field "effect_key" (needed by effect)`, "effect_key"},
		{`{"ts":1,"kind":"effect","effect":"e","effect_key":""}`, `missing field "effect_key" (needed by effect)`, "effect_key"},
		{`{"ts":1,"kind":"state"}`, `missing field "entity" (needed by state)`, "entity"},
		{`{` + ok + `,"id":1}`, `field "id": want a string, got 1`, "id"},
		{`{` + ok + `,"queue":null}`, `field "queue": want a string, got null`, "queue"},
		{`{` + ok + `,"job_type":["a"]}`, `field "job_type": want a string, got an array`, "job_type"},
		{`{` + ok + `,"job_id":{}}`, `field "job_id": want a string, got an object`, "job_id"},
		{`{` + ok + `,"key":false}`, `field "key": want a string, got false`, "key"},
		{`{` + ok + `,"effect":12}`, `field "effect": want a string, got 12`, "effect"},
		{`{` + ok + `,"effect_key":null}`, `field "effect_key": want a string, got null`, "effect_key"},
		{`{"ts":1,"kind":"state","entity":null}`, `field "entity": want a string, got null`, "entity"},
		{`{` + ok + `,"error":{"msg":"x"}}`, `field "error": want a string, got an object`, "error"},
		{`{` + ok + `,"attempt":0}`, `field "attempt": want an integer ≥ 1, got 0`, "attempt"},
		{`{` + ok + `,"attempt":-1}`, `field "attempt": want an integer ≥ 1, got -1`, "attempt"},
		{`{` + ok + `,"attempt":1.0}`, `field "attempt": want an integer ≥ 1, got 1.0`, "attempt"},
		{`{` + ok + `,"attempt":"2"}`, `field "attempt": want an integer ≥ 1, got a string`, "attempt"},
		{`{` + ok + `,"attempt":null}`, `field "attempt": want an integer ≥ 1, got null`, "attempt"},
		{`{` + ok + `,"attempt":9223372036854775808}`, `field "attempt": want an integer ≥ 1, got 9223372036854775808`, "attempt"},
		{`{` + ok + `,"seq":1e2}`, `field "seq": want an integer, got 1e2`, "seq"},
		{`{` + ok + `,"seq":-9223372036854775809}`, `field "seq": want an integer, got -9223372036854775809`, "seq"},
		{`{` + ok + `,"seq":123456789012345678901234567890123456789}`, `field "seq": want an integer, got 12345678901234567890123456789012…`, "seq"},
		{`{` + ok + `,"seq":null}`, `field "seq": want an integer, got null`, "seq"},
		{`{` + ok + `,"terminal":"true"}`, `field "terminal": want true or false, got a string`, "terminal"},
		{`{` + ok + `,"retry":1}`, `field "retry": want true or false, got 1`, "retry"},
		{`{` + ok + `,"attrs":null}`, `field "attrs": want an object, got null`, "attrs"},
		{`{` + ok + `,"attrs":[]}`, `field "attrs": want an object, got an array`, "attrs"},
		// Several faults: the order is fixed (ts, kind, types in the
		// spec's order, needed fields).
		{`{"kind":"nope","queue":null}`, `missing field "ts"`, "ts"},
		{`{"ts":1,"kind":"job.started","seq":null,"queue":null}`, `field "queue": want a string, got null`, "queue"},
	}
	for _, tt := range tests {
		_, err := parse(t, tt.line)
		if err == nil {
			t.Errorf("Parse(%s): no error, want %q", tt.line, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Parse(%s):\n got %q\nwant %q", tt.line, err.Error(), tt.want)
		}
		var pe *jsonl.ParseError
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%s): error is %T, want *jsonl.ParseError", tt.line, err)
		} else if pe.Field != tt.field {
			t.Errorf("Parse(%s): Field = %q, want %q", tt.line, pe.Field, tt.field)
		}
	}
}

func TestParseKeepsSourceAndLine(t *testing.T) {
	t.Parallel()
	var p jsonl.Parser
	ev := twicetype.Event{Source: "a.jsonl", Line: 42, ID: "stale", Seq: 9, HasSeq: true, Attrs: []byte("{}")}
	if err := p.Parse([]byte(`{"ts":1,"kind":"state","entity":"e"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Source != "a.jsonl" || ev.Line != 42 {
		t.Errorf("Source, Line = %q, %d; want a.jsonl, 42", ev.Source, ev.Line)
	}
	if ev.ID != "" || ev.HasSeq || ev.Attrs != nil {
		t.Errorf("stale fields kept: %+v", ev)
	}
}

func TestParseDoesNotAlias(t *testing.T) {
	t.Parallel()
	var p jsonl.Parser
	line := []byte(`{"id":"e-1","ts":1,"kind":"effect","queue":"q","job_type":"T","job_id":"j","key":"k","effect":"x","effect_key":"ek","entity":"en","error":"er","attrs":{"a":"b"}}`)
	var ev twicetype.Event
	if err := p.Parse(line, &ev); err != nil {
		t.Fatal(err)
	}
	want := ev
	want.Attrs = bytes.Clone(ev.Attrs)
	for i := range line {
		line[i] = 'Z'
	}
	if !eventsEqual(ev, want) {
		t.Errorf("event changed with its input buffer:\n got %+v\nwant %+v", ev, want)
	}
	if got := string(ev.Attrs); got != `{"a":"b"}` {
		t.Errorf("Attrs = %s", got)
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	identity := func(line string) uint64 {
		t.Helper()
		return mustParse(t, line).Identity
	}
	// Same id: the same observation, whatever the content.
	a := identity(`{"id":"e-1","ts":1,"kind":"state","entity":"a"}`)
	if b := identity(`{"id":"e-1","ts":2,"kind":"effect","effect":"x","effect_key":"y"}`); a != b {
		t.Errorf("same id, different identity")
	}
	if b := identity(`{"id":"e-\u0031","ts":1,"kind":"state","entity":"a"}`); a != b {
		t.Errorf("escaped id, different identity")
	}
	if b := identity(`{"id":"e-2","ts":1,"kind":"state","entity":"a"}`); a == b {
		t.Errorf("different ids, same identity")
	}
	// An id never equals a content hash of the same bytes.
	if b := identity(`{"ts":1,"kind":"state","entity":"a"}`); a == b {
		t.Errorf("id and content, same identity")
	}

	base := `{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0}`
	h := identity(base)
	same := []string{
		`{"kind":"state","attrs":{"a":"s","b":[1,{"x":1,"y":2}]},"extra":1.0,"entity":"order:42","ts":1}`,
		" { \"ts\" : 1 ,\t\"kind\":\"state\", \"entity\":\"order:42\",\r\n\"attrs\":{ \"b\" : [ 1 , { \"y\":2,\"x\":1 } ] , \"a\" : \"s\" },\"extra\":1.0 } ",
		`{"ts":1,"kind":"\u0073tate","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"\u0061":"\u0073"},"extra":1.0}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0,"ts":2}`, // duplicate: first wins
	}
	for _, s := range same {
		if got := identity(s); got != h {
			t.Errorf("identity(%s) != identity(%s)", s, base)
		}
	}
	different := []string{
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.00}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1e0}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[{"y":2,"x":1},1],"a":"s"},"extra":1.0}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"S"},"extra":1.0}`,
		`{"ts":1,"kind":"state","entity":"order:43","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0,"more":null}`,
		`{"ts":1,"kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0,"id":""}`,
		`{"ts":"1970-01-01T00:00:00.001Z","kind":"state","entity":"order:42","attrs":{"b":[1,{"y":2,"x":1}],"a":"s"},"extra":1.0}`,
	}
	for _, s := range different {
		if got := identity(s); got == h {
			t.Errorf("identity(%s) == identity(%s)", s, base)
		}
	}
}

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{` {"b" : 1 , "a" : [ true , false , null ] } `, `{"a":[true,false,null],"b":1}`},
		{`{"b":{"d":1,"c":2},"a":{}}`, `{"a":{},"b":{"c":2,"d":1}}`},
		{`{"a":1,"a":2,"b":3,"a":4}`, `{"a":1,"b":3}`},
		{`{"ab":1,"a":2,"":3,"b":4}`, `{"":3,"a":2,"ab":1,"b":4}`},
		{`{"aaaaaaaab":1,"aaaaaaaa":2,"aaaaaaaaa":3}`, `{"aaaaaaaa":2,"aaaaaaaaa":3,"aaaaaaaab":1}`},
		{`[1.0,-0,1E+2,0.5e-3]`, `[1.0,-0,1E+2,0.5e-3]`},
		{`"\u0061\/\"\\\b\f\n\r\t\u0001\u001F\u007f\u00e9\uD83D\uDE00"`, "\"a/\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7fé😀\""},
		{`"\u0008\u000a\u0022\u005c"`, `"\b\n\"\\"`},
		{`"\ud800x\uDC00\uD800\ud800\udc00\uDBFF\uDFFF\ufffd"`, "\"\\ud800x\\udc00\\ud800\U00010000\U0010FFFF\uFFFD\""},
		{`{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
		{`{"b":1,"\u0062":2}`, `{"b":1}`},
		{"\"\u2028 é\"", "\"\u2028 é\""},
	}
	for _, tt := range tests {
		got, err := jsonl.Canonicalize([]byte(tt.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tt.in, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("Canonicalize(%s)\n got %s\nwant %s", tt.in, got, tt.want)
		}
		again, err := jsonl.Canonicalize(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Errorf("Canonicalize not idempotent on %s: %s, %v", got, again, err)
		}
	}
	for _, bad := range []string{`{"a":}`, "\"\xff\"", ``, `1 2`} {
		if got, err := jsonl.Canonicalize([]byte(bad)); err == nil {
			t.Errorf("Canonicalize(%q) = %s, want an error", bad, got)
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	ns, err := jsonl.ParseTime("2026-11-24T11:00:00+01:00")
	if err != nil || ns != t10ns {
		t.Errorf("ParseTime = %d, %v; want %d", ns, err, t10ns)
	}
	for _, bad := range []string{"", "2026-11-24", "2026-11-24T10:00:00+24:00", "2026-13-01T00:00:00Z", "0000-01-01T00:00:00Z", "２026-11-24T10:00:00Z"} {
		if ns, err := jsonl.ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) = %d, want an error", bad, ns)
		}
	}
}

func TestParseAllocations(t *testing.T) {
	var p jsonl.Parser
	var ev twicetype.Event
	line := []byte(`{"id":"e-1","ts":"2026-11-24T10:00:00.123Z","kind":"job.started","queue":"emails","job_type":"SendReceipt","job_id":"j-1","attempt":1}`)
	noID := []byte(`{"ts":1795514400000,"kind":"effect","queue":"emails","effect":"email.sent","effect_key":"receipt/1","job_id":"j-1"}`)
	for _, l := range [][]byte{line, noID} {
		if err := p.Parse(l, &ev); err != nil {
			t.Fatal(err)
		}
		// One allocation holds every string that is not interned.
		if n := testing.AllocsPerRun(100, func() { _ = p.Parse(l, &ev) }); n > 1 {
			t.Errorf("Parse(%s): %v allocations, want at most 1", l, n)
		}
	}
}

// TestParseMarksSecondsLikeTS: an integer ts that, read as milliseconds,
// falls before 2001 was most likely written in seconds; the event is
// marked so the audit can warn. Strings and real milliseconds are not.
func TestParseMarksSecondsLikeTS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ts   string
		want bool
	}{
		{"1795514400", true},              // 2026-11-24 in seconds
		{"0", true},                       // the epoch itself
		{"-5", true},                      // before it
		{"978307199999", true},            // the last millisecond of 2000
		{"978307200000", false},           // 2001-01-01T00:00:00Z
		{"1795514400000", false},          // 2026-11-24 in milliseconds
		{`"1970-01-21T18:45:14Z"`, false}, // written as a time: meant
	} {
		ev := mustParse(t, `{"ts":`+tc.ts+`,"kind":"state","entity":"e"}`)
		if ev.SecondsLikeTS != tc.want {
			t.Errorf("ts %s: SecondsLikeTS = %v, want %v", tc.ts, ev.SecondsLikeTS, tc.want)
		}
	}
	// A Parser reused for a later event clears the mark.
	var p jsonl.Parser
	var ev twicetype.Event
	for _, line := range []string{`{"ts":1,"kind":"state","entity":"e"}`, `{"ts":1795514400000,"kind":"state","entity":"e"}`} {
		if err := p.Parse([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
	}
	if ev.SecondsLikeTS {
		t.Error("SecondsLikeTS kept from the previous event")
	}
}
