package jsonl_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twicehq/twice/collectors/jsonl"
	"github.com/twicehq/twice/twicetype"
)

// FuzzParse checks that Parse never panics, agrees with encoding/json on
// what is JSON, and that a parsed event keeps its invariants: needed
// fields present, Identity != 0, and the event parsed from its canonical
// form is the same observation with the same fields.
func FuzzParse(f *testing.F) {
	for _, l := range benchLines {
		f.Add(l)
	}
	f.Add([]byte(`{"ts":"2026-11-24T11:00:00.5+01:00","kind":"state","entity":"e","seq":1,"terminal":true,"attrs":{"b":[1,{"y":2,"x":1}],"a":"\u0061"}}`))
	f.Add([]byte(`{"ts":1,"kind":"job.failed","job_id":"j","attempt":2,"retry":true,"error":"x\ud800","ts":2}`))
	f.Add([]byte(`{"ts":1,"kind":"effect","effect":"e","effect_key":"k","x":[1.0,-0,1e5,true,false,null,"\t"]}`))
	f.Add([]byte(`{"ts":1,"kind":"effect","effect":"","effect_key":"k"}`))
	f.Add([]byte(`[{"a":1}]`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var p jsonl.Parser
		var ev twicetype.Event
		err := p.Parse(line, &ev)

		if utf8.Valid(line) {
			notJSON := err != nil && strings.HasPrefix(err.Error(), "not valid JSON")
			tooDeep := err != nil && strings.HasPrefix(err.Error(), "nested deeper")
			if !tooDeep && notJSON == json.Valid(line) {
				t.Fatalf("Parse says %v, json.Valid says %v", err, json.Valid(line))
			}
		} else if err == nil || err.Error() != "not valid UTF-8" {
			t.Fatalf("invalid UTF-8: err = %v", err)
		}
		if err != nil {
			return
		}

		if ev.Identity == 0 {
			t.Fatal("Identity = 0")
		}
		if ev.Kind == twicetype.KindUnknown {
			t.Fatal("Kind unknown")
		}
		switch {
		case ev.Kind.IsJob() && ev.JobID == "",
			ev.Kind == twicetype.Effect && (ev.Effect == "" || ev.EffectKey == ""),
			ev.Kind == twicetype.State && ev.Entity == "":
			t.Fatalf("a needed field is empty: %+v", ev)
		}
		if ev.HasAttempt && ev.Attempt < 1 {
			t.Fatalf("Attempt = %d", ev.Attempt)
		}
		if ev.Attrs != nil && !json.Valid(ev.Attrs) {
			t.Fatalf("Attrs not JSON: %s", ev.Attrs)
		}

		canon, err := jsonl.Canonicalize(line)
		if err != nil {
			t.Fatalf("Canonicalize: %v", err)
		}
		if !json.Valid(canon) {
			t.Fatalf("canonical form is not JSON: %s", canon)
		}
		if again, err := jsonl.Canonicalize(canon); err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("Canonicalize not idempotent: %s -> %s (%v)", canon, again, err)
		}
		if a, b := firstWins(t, line), firstWins(t, canon); !reflect.DeepEqual(a, b) {
			t.Fatalf("canonical form changed the value:\n%#v\n%#v", a, b)
		}

		var ev2 twicetype.Event
		if err := p.Parse(canon, &ev2); err != nil {
			t.Fatalf("canonical form %s does not parse: %v", canon, err)
		}
		if ev2.Identity != ev.Identity {
			t.Fatalf("identity of the canonical form differs: %s", canon)
		}
		a1, err1 := jsonl.Canonicalize(ev.Attrs)
		a2, err2 := jsonl.Canonicalize(ev2.Attrs)
		if (ev.Attrs == nil) != (ev2.Attrs == nil) || !bytes.Equal(a1, a2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("attrs differ: %s vs %s", ev.Attrs, ev2.Attrs)
		}
		ev.Attrs, ev2.Attrs = nil, nil
		if !reflect.DeepEqual(ev, ev2) {
			t.Fatalf("the canonical form parses differently:\n%+v\n%+v", ev, ev2)
		}
	})
}

// firstWins decodes JSON with encoding/json's tokenizer, keeping the first
// of duplicate keys and numbers as written.
func firstWins(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := decodeValue(d)
	if err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func decodeValue(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		m := map[string]any{}
		for d.More() {
			k, err := d.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.(string)]; !dup {
				m[k.(string)] = v
			}
		}
		_, err := d.Token()
		return m, err
	case json.Delim('['):
		a := []any{}
		for d.More() {
			v, err := decodeValue(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := d.Token()
		return a, err
	}
	return tok, nil
}

// FuzzParseTime checks ParseTime against time.Parse on the inputs both
// should accept.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-11-24T10:00:00Z", "2026-11-24t11:00:00.5+01:00", "1677-09-21T00:12:43.145224192Z",
		"2262-04-11T23:47:16.854775807Z", "2024-02-29T23:59:59.999999999999-23:59", "2026-11-24T10:00:00+24:00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := jsonl.ParseTime(s)
		// time.Parse wants an uppercase T and Z.
		u := []byte(s)
		if len(u) > 10 && u[10] == 't' {
			u[10] = 'T'
		}
		if len(u) > 0 && u[len(u)-1] == 'z' {
			u[len(u)-1] = 'Z'
		}
		tm, terr := time.Parse(time.RFC3339Nano, string(u))
		if err == nil {
			if terr != nil {
				t.Fatalf("ParseTime(%q) = %d, time.Parse: %v", s, ns, terr)
			}
			if got := tm.UnixNano(); got != ns {
				t.Fatalf("ParseTime(%q) = %d, time.Parse = %d", s, ns, got)
			}
			return
		}
		if terr != nil {
			return
		}
		// time.Parse accepts some inputs that are not RFC 3339.
		if !rfc3339Shape(string(u)) {
			return
		}
		sec := tm.Unix()
		inRange := sec > -9223372036 && sec < 9223372036
		if inRange {
			t.Fatalf("ParseTime(%q): %v, but time.Parse = %v", s, err, tm)
		}
	})
}

// rfc3339Shape reports whether s has the RFC 3339 layout (digits where
// digits go, '.' before a fraction, an offset below 24:00).
func rfc3339Shape(s string) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(layout)+1 {
		return false
	}
	for i := range len(layout) {
		if layout[i] == 'd' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		} else if s[i] != layout[i] {
			return false
		}
	}
	rest := s[len(layout):]
	if rest[0] == '.' {
		i := 1
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 1 {
			return false
		}
		rest = rest[i:]
	}
	if rest == "Z" {
		return true
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
		isDigits(rest[1:3]) && isDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59"
}

func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
