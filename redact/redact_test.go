package redact_test

import (
	"strings"
	"testing"

	"github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/twicetype"
)

func TestEmail(t *testing.T) {
	ann := redact.Address("ann@example.com")
	if !strings.HasPrefix(ann, "<email:") || len(ann) != len("<email:12345678>") {
		t.Fatalf("Address = %q, want <email:8 hex digits>", ann)
	}
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"receipt/payment:123", "receipt/payment:123"},
		{"ann@example.com", ann},
		{"ANN@Example.COM", ann},
		{"receipt/ann@example.com/1", "receipt/" + ann + "/1"},
		{"to ann@example.com, ann+x@mail.example.co.uk", "to " + ann + ", " + redact.Address("ann+x@mail.example.co.uk")},
		// Not addresses: no dot in the domain, a numeric top level, a bare @.
		{"user@localhost", "user@localhost"},
		{"queue@2026-11-24T10:05:00Z", "queue@2026-11-24T10:05:00Z"},
		{"a @ b", "a @ b"},
	} {
		if got := redact.Email(c.in); got != c.want {
			t.Errorf("Email(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if redact.Email(ann) != ann {
		t.Errorf("Email is not idempotent on %q", ann)
	}
}

func TestFindingAndReport(t *testing.T) {
	const addr = "bob@shop.example.org"
	fp := twicetype.Fingerprint(twicetype.DuplicateEffect, "receipt/"+addr)
	rep := &twicetype.Report{
		Summary: twicetype.Summary{
			MalformedLines: []twicetype.Malformed{{Source: "in.jsonl", Line: 3, Reason: "bad " + addr}},
			Warnings:       []twicetype.Warning{{Code: "x", Subject: addr, Message: "about " + addr}},
		},
		Findings: []twicetype.Finding{
			{Detector: twicetype.DuplicateEffect, Severity: twicetype.High, Subject: "receipt/A"},
			{
				Detector: twicetype.DuplicateEffect, Severity: twicetype.High, Subject: "receipt/" + addr, Fingerprint: fp,
				Jobs: []string{"job-" + addr}, Events: []string{addr}, Message: "email.sent receipt/" + addr + " happened 2 times",
				JobType: addr, Queue: addr, Cause: "redelivery",
				Details: map[string]any{
					"effect":    "email.sent",
					"customers": []any{addr, "c-2"},
					"nested":    map[string]any{addr: []string{addr}},
				},
			},
		},
		Scorecard: []twicetype.HandlerScore{{JobType: addr, Queue: "mail"}},
	}
	redact.Report(rep)
	var b strings.Builder
	for _, f := range rep.Findings {
		b.WriteString(f.Subject + f.Message + f.JobType + f.Queue + strings.Join(f.Jobs, "") + strings.Join(f.Events, ""))
		for k, v := range f.Details {
			b.WriteString(k)
			switch v := v.(type) {
			case []any:
				for _, x := range v {
					b.WriteString(x.(string))
				}
			case map[string]any:
				for k2, v2 := range v {
					b.WriteString(k2 + strings.Join(v2.([]string), ""))
				}
			}
		}
	}
	b.WriteString(rep.Summary.MalformedLines[0].Reason + rep.Summary.Warnings[0].Subject + rep.Summary.Warnings[0].Message + rep.Scorecard[0].JobType)
	if strings.Contains(b.String(), "@") {
		t.Errorf("an address is left after Report: %s", b.String())
	}
	// Sorted again by the subjects shown: "receipt/<email:…>" sorts before "receipt/A", "receipt/bob@…" after it.
	f := rep.Findings[0]
	if want := "receipt/" + redact.Address(addr); f.Subject != want {
		t.Fatalf("first finding subject = %q, want %q", f.Subject, want)
	}
	if f.Fingerprint != fp {
		t.Errorf("fingerprint changed: %q, want %q (of the raw subject)", f.Fingerprint, fp)
	}
	if got := f.Details["customers"].([]any)[1]; got != "c-2" {
		t.Errorf("customers[1] = %v, want c-2 untouched", got)
	}
}
