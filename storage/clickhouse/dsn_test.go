package clickhouse

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		in       string
		protocol Protocol
		addrs    string
		db, user string
	}{
		{"clickhouse://127.0.0.1:9000/default", Native, "127.0.0.1:9000", "default", ""},
		{"clickhouse://u:secret@h1:9000,h2:9000/twice?dial_timeout=2s", Native, "h1:9000,h2:9000", "twice", "u"},
		{"tcp://127.0.0.1:9000", Native, "127.0.0.1:9000", "default", ""},
		{"http://127.0.0.1:8123/twice", HTTP, "127.0.0.1:8123", "twice", ""},
		{"https://ch.example:8443/twice", HTTP, "ch.example:8443", "twice", ""},
	} {
		d, err := ParseDSN(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if d.Protocol != tc.protocol || strings.Join(d.Addrs, ",") != tc.addrs || d.Database != tc.db || d.User != tc.user {
			t.Errorf("%s: got %s %v %s %s", tc.in, d.Protocol, d.Addrs, d.Database, d.User)
		}
		if strings.Contains(d.String(), "secret") {
			t.Errorf("%s: String() shows the password: %s", tc.in, d)
		}
	}
	for _, bad := range []string{"postgres://h/db", "clickhouse:///db", "clickhouse://h:9000/a/b", "events.jsonl"} {
		if _, err := ParseDSN(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if !IsDSN("clickhouse://h/db") || !IsDSN("http://h:8123/db") || IsDSN("events.jsonl") {
		t.Error("IsDSN")
	}
}

func TestSplitStatements(t *testing.T) {
	got := SplitStatements("-- a; comment\nCREATE TABLE a (s String DEFAULT 'x;y');\n/* ; */ SELECT 1;;\n")
	if len(got) != 2 || !strings.Contains(got[0], "'x;y'") || got[1] != "SELECT 1" {
		t.Fatalf("%q", got)
	}
}

func TestFlattenAttrs(t *testing.T) {
	m := flattenAttrs(nil, []byte(`{"a":{"b":1.50,"c":"x","n":null,"e":""},"t":true,"a.b":2,"arr":[1],"a":{"b":3}}`))
	want := map[string]string{"a.b": "1.50", "a.c": "x", "t": "true"}
	if len(m) != len(want) {
		t.Fatalf("%v", m)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
}
