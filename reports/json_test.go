package reports

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// decodeJSON decodes a JSON report generically, as a script would.
func decodeJSON(tb testing.TB, out string) map[string]any {
	tb.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		tb.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	return doc
}

// objectKeys returns the keys of the JSON object raw in the order written,
// with each value.
func objectKeys(tb testing.TB, raw []byte) ([]string, map[string]json.RawMessage) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		tb.Fatalf("not an object: %v %v: %s", tok, err, raw)
	}
	var keys []string
	values := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			tb.Fatal(err)
		}
		key := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, key)
		values[key] = v
	}
	return keys, values
}

var (
	topKeys     = []string{"version", "summary", "scorecard", "impact", "findings"}
	summaryKeys = []string{
		"events", "repeated_ids", "malformed", "jobs", "effects", "pending", "from", "to", "findings",
		"late", "evicted", "malformed_lines",
	}
	findingKeys = []string{
		"detector", "severity", "subject", "fingerprint", "count", "first_ts", "last_ts",
		"jobs", "events", "job_type", "queue", "cause", "message", "details",
	}
)

func without(keys []string, drop string) []string {
	var out []string
	for _, k := range keys {
		if k != drop {
			out = append(out, k)
		}
	}
	return out
}

func TestJSONEmpty(t *testing.T) {
	t.Parallel()
	for name, r := range map[string]*twicetype.Report{
		"empty":        emptyReport(),
		"zero summary": {},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := render(t, "json", Options{}, r)
			wantFindings := map[string]any{}
			for id, n := range r.Summary.Findings {
				wantFindings[id] = float64(n)
			}
			want := map[string]any{
				"version": 1.0,
				"summary": map[string]any{
					"events": 0.0, "repeated_ids": 0.0, "malformed": 0.0, "jobs": 0.0,
					"effects": 0.0, "pending": 0.0, "from": nil, "to": nil,
					"findings": wantFindings,
					"late":     0.0, "evicted": 0.0, "malformed_lines": []any{},
				},
				"scorecard": []any{},
				"findings":  []any{},
			}
			if got := decodeJSON(t, out); !reflect.DeepEqual(got, want) {
				t.Errorf("got  %#v\nwant %#v", got, want)
			}
			for _, literal := range []string{`"from": null`, `"to": null`, `"findings": []`, `"malformed_lines": []`} {
				if !strings.Contains(out, literal) {
					t.Errorf("output lacks %s:\n%s", literal, out)
				}
			}
		})
	}
}

func TestJSONFull(t *testing.T) {
	t.Parallel()
	r := fullReport()
	out := render(t, "json", Options{}, r)

	if !strings.HasPrefix(out, "{\n  \"version\": 1,\n  \"summary\": {\n    \"events\": 1200,") {
		t.Errorf("not indented with two spaces:\n%s", out[:min(len(out), 80)])
	}
	if !strings.HasSuffix(out, "}\n") || strings.HasSuffix(out, "\n\n") {
		t.Errorf("want exactly one trailing newline")
	}

	malformed := make([]any, 25)
	for i := range malformed {
		malformed[i] = map[string]any{"source": "events.jsonl", "line": float64(10 + i), "reason": "not valid JSON"}
	}
	malformed[1].(map[string]any)["reason"] = "missing job_id on job.started"
	events13 := make([]any, 13)
	for i, e := range names("e-", 13) {
		events13[i] = e
	}
	jobs12 := make([]any, 12)
	for i, j := range names("j-", 12) {
		jobs12[i] = j
	}
	want := map[string]any{
		"version": 1.0,
		"summary": map[string]any{
			"events": 1200.0, "repeated_ids": 3.0, "malformed": 30.0, "jobs": 400.0,
			"effects": 380.0, "pending": 5.0,
			"from": "2026-11-24T10:00:00.000Z", "to": "2026-11-24T11:00:01.500Z",
			"findings": map[string]any{
				"duplicate-effect": 1.0, "missing-effect": 0.0, "duplicate-execution": 1.0,
				"out-of-order": 1.0, "lost-job": 1.0, "retry-storm": 1.0, "dead-letter": 1.0,
			},
			"late": 4.0, "evicted": 2.0, "malformed_lines": malformed,
		},
		"findings": []any{
			map[string]any{
				"detector": "duplicate-effect", "severity": "critical", "subject": "receipt/payment:123",
				"fingerprint": twicetype.Fingerprint("duplicate-effect", "receipt/payment:123"),
				"count":       2.0, "first_ts": "2026-11-24T10:01:00.000Z", "last_ts": "2026-11-24T10:03:00.000Z",
				"jobs": []any{"j-1"}, "events": []any{"e-3", "e-9"}, "cause": "redelivery",
				"job_type": "SendReceipt", "queue": "emails",
				"message": "email.sent receipt/payment:123 happened 2 times",
				"details": map[string]any{"effect": "email.sent", "max_per_key": 1.0},
			},
			map[string]any{
				"detector": "lost-job", "severity": "high", "subject": "j-7",
				"fingerprint": twicetype.Fingerprint("lost-job", "j-7"),
				"count":       1.0, "first_ts": "2026-11-24T10:02:00.000Z", "last_ts": "2026-11-24T10:02:00.000Z",
				"jobs": []any{"j-7"}, "events": events13, "cause": "stuck",
				"message": "job j-7 started and never finished within 1h",
				"details": map[string]any{"lost_after": "1h", "last_kind": "job.started"},
			},
			map[string]any{
				"detector": "out-of-order", "severity": "high", "subject": "order:42",
				"fingerprint": twicetype.Fingerprint("out-of-order", "order:42"),
				"count":       1.0, "first_ts": "2026-11-24T10:10:00.000Z", "last_ts": "2026-11-24T10:11:00.000Z",
				"jobs": []any{}, "events": []any{"e-20", "e-21"},
				"message": "order:42 went from seq 7 back to seq 5",
				"details": map[string]any{"final_stale": true, "max_seq": 7.0, "seq": 5.0},
			},
			map[string]any{
				"detector": "dead-letter", "severity": "medium", "subject": "webhooks",
				"fingerprint": twicetype.Fingerprint("dead-letter", "webhooks"),
				"count":       12.0, "first_ts": "2026-11-24T10:05:00.000Z", "last_ts": "2026-11-24T11:10:00.000Z",
				"jobs": jobs12, "events": []any{}, "queue": "webhooks",
				"message": "12 jobs of webhooks are dead",
				"details": map[string]any{
					"count": 12.0, "oldest": "2026-11-24T10:05:00.000Z",
					"per_hour": map[string]any{"2026-11-24T10:00:00Z": 5.0, "2026-11-24T11:00:00Z": 7.0},
				},
			},
			map[string]any{
				"detector": "retry-storm", "severity": "medium", "subject": "webhooks@2026-11-24T10:05:00Z",
				"fingerprint": twicetype.Fingerprint("retry-storm", "webhooks@2026-11-24T10:05:00Z"),
				"count":       25.0, "first_ts": "2026-11-24T10:05:00.000Z", "last_ts": "2026-11-24T10:05:59.000Z",
				"jobs": []any{"j-30", "j-31"}, "events": []any{"e-40"},
				"message": "25 attempts of 10 jobs in 1m",
				"details": map[string]any{"amplification": 2.5, "attempts": 25.0, "jobs": 10.0},
			},
			map[string]any{
				"detector": "duplicate-execution", "severity": "low", "subject": "a|b`c",
				"fingerprint": twicetype.Fingerprint("duplicate-execution", "a|b`c"),
				"count":       1.0, "first_ts": "2026-11-24T10:20:00.000Z", "last_ts": "2026-11-24T10:20:00.000Z",
				"jobs": []any{"a|b`c"}, "events": []any{"e-50", "e-51"},
				"message": "job a|b`c started again after *succeeded*",
				"details": map[string]any{},
			},
		},
	}
	want["scorecard"] = scorecardJSON(r.Scorecard)
	want["impact"] = map[string]any{"duplicated_amount": map[string]any{"USD": 12.5}, "customers": 1.0, "stale_entities": 1.0}
	got := decodeJSON(t, out)
	if !reflect.DeepEqual(got["summary"], want["summary"]) {
		t.Errorf("summary:\n got %#v\nwant %#v", got["summary"], want["summary"])
	}
	gotF, wantF := got["findings"].([]any), want["findings"].([]any)
	if len(gotF) != len(wantF) {
		t.Fatalf("got %d findings, want %d", len(gotF), len(wantF))
	}
	for i := range wantF {
		if !reflect.DeepEqual(gotF[i], wantF[i]) {
			t.Errorf("finding %d:\n got %#v\nwant %#v", i, gotF[i], wantF[i])
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report differs")
	}

	// Key order, as written.
	keys, top := objectKeys(t, []byte(out))
	if !reflect.DeepEqual(keys, topKeys) {
		t.Errorf("top-level keys %v, want %v", keys, topKeys)
	}
	keys, summary := objectKeys(t, top["summary"])
	if !reflect.DeepEqual(keys, summaryKeys) {
		t.Errorf("summary keys %v, want %v", keys, summaryKeys)
	}
	keys, _ = objectKeys(t, summary["findings"])
	if want := []string{
		"dead-letter", "duplicate-effect", "duplicate-execution", "lost-job", "missing-effect",
		"out-of-order", "retry-storm",
	}; !reflect.DeepEqual(keys, want) {
		t.Errorf("summary.findings keys %v, want sorted %v", keys, want)
	}
	var findings []json.RawMessage
	if err := json.Unmarshal(top["findings"], &findings); err != nil {
		t.Fatal(err)
	}
	for i, f := range findings {
		want := findingKeys
		if r.Findings[i].Cause == "" {
			want = without(want, "cause")
		}
		if r.Findings[i].JobType == "" {
			want = without(want, "job_type")
		}
		if r.Findings[i].Queue == "" {
			want = without(want, "queue")
		}
		if keys, _ := objectKeys(t, f); !reflect.DeepEqual(keys, want) {
			t.Errorf("finding %d keys %v, want %v", i, keys, want)
		}
	}
	keys, _ = objectKeys(t, mustField(t, findings[3], "details"))
	if want := []string{"count", "oldest", "per_hour"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("details keys %v, want sorted %v", keys, want)
	}
}

func mustField(tb testing.TB, obj json.RawMessage, key string) json.RawMessage {
	tb.Helper()
	_, values := objectKeys(tb, obj)
	v, ok := values[key]
	if !ok {
		tb.Fatalf("no %q in %s", key, obj)
	}
	return v
}

func TestJSONDeterministic(t *testing.T) {
	t.Parallel()
	first := render(t, "json", Options{}, fullReport())
	for range 20 {
		if out := render(t, "json", Options{}, fullReport()); out != first {
			t.Fatalf("output changed between runs")
		}
	}
}

func TestJSONNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings[0].Subject = "a<b>&c"
	r.Findings[0].Details["html"] = "<x&y>"
	out := render(t, "json", Options{}, r)
	for _, want := range []string{`"subject": "a<b>&c"`, `"html": "<x&y>"`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
}

func TestJSONUnencodableDetails(t *testing.T) {
	t.Parallel()
	r := fullReport()
	r.Findings[2].Details["ratio"] = math.NaN()
	rep, _ := New("json", Options{})
	var buf bytes.Buffer
	err := rep.Write(&buf, r)
	if err == nil {
		t.Fatal("NaN in details encoded without error")
	}
	if !strings.Contains(err.Error(), "out-of-order") || !strings.Contains(err.Error(), "order:42") {
		t.Errorf("error %q does not name the finding", err)
	}
	if buf.Len() != 0 {
		t.Errorf("wrote %d bytes on error", buf.Len())
	}
}

// TestJSONWarnings: summary.warnings is a list of sentences (spec §5),
// after the other summary keys, and absent when there is nothing to say.
func TestJSONWarnings(t *testing.T) {
	t.Parallel()
	out := render(t, "json", Options{}, warnedReport())
	s := decodeJSON(t, out)["summary"].(map[string]any)
	want := []any{
		"The input held no events: nothing was checked.",
		"expect rule SendReceipt → email.sent: no job of type SendReceipt | *was* seen.",
	}
	if !reflect.DeepEqual(s["warnings"], want) {
		t.Errorf("warnings = %#v, want %#v", s["warnings"], want)
	}
	_, top := objectKeys(t, []byte(out))
	if keys, _ := objectKeys(t, top["summary"]); !reflect.DeepEqual(keys, append(slices.Clone(summaryKeys), "warnings")) {
		t.Errorf("summary keys %v", keys)
	}
	if strings.Contains(render(t, "json", Options{}, emptyReport()), "warnings") {
		t.Error("warnings written though there are none")
	}
}
