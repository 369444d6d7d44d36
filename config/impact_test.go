package config

import (
	"strings"
	"testing"
)

func TestParseImpactAndRedactEmails(t *testing.T) {
	c, err := Parse("twice.yaml", []byte("impact: {amount: attrs.amount, currency: attrs.money.currency, customer: key}\nredact_emails: false\nredact: [attrs.customer_email]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if im := c.Impact; im == nil || im.Amount != "attrs.amount" || im.Currency != "attrs.money.currency" || im.Customer != "key" || im.Line != 1 {
		t.Errorf("Impact = %+v", c.Impact)
	}
	if !c.KeepEmails {
		t.Error("redact_emails: false did not set KeepEmails")
	}
	if d := Default(); d.KeepEmails || d.Impact != nil {
		t.Errorf("Default redacts emails and has no impact: KeepEmails %v, Impact %+v", d.KeepEmails, d.Impact)
	}
	for _, tc := range []struct{ in, want string }{
		{"impact: {amount: attrs.amount, amout: attrs.x}\n", `twice.yaml:1:32: impact: unknown key "amout" (known: amount, currency, customer)`},
		{"impact:\n  customer: attrs.\n", "twice.yaml:2:13: impact.customer:"},
		{"impact:\n  amount: '{{attrs.a}}'\n", "twice.yaml:2:11: impact.amount: want a path such as attrs.amount"},
		{"impact: {amount: 5}\n", "twice.yaml:1:18: impact.amount: want a string"},
		{"redact_emails: no-thanks\n", "twice.yaml:1:16: redact_emails: want"},
		{"redact: [attrs.]\n", `twice.yaml:1:10: redact[0]: want attrs.NAME, got "attrs."`},
	} {
		_, err := Parse("twice.yaml", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
	c = Default()
	c.Impact = &Impact{Amount: "attrs..x"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "impact.amount") {
		t.Errorf("Validate = %v, want an error naming impact.amount", err)
	}
}
