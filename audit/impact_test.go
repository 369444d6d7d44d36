package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/internal/eventstest"
	"github.com/twicehq/twice/redact"
	"github.com/twicehq/twice/twicetype"
)

// impactEvents: a charge redelivered (amounts on the job), a refund
// effect three times (the amount on the first only), a receipt twice with no
// amount, and two entities updated out of order, one left stale.
const impactEvents = `{"ts":"2026-01-01T00:00:00Z","kind":"job.enqueued","job_id":"j1","job_type":"Charge","key":"pay:1","attrs":{"amount":12.5,"currency":"USD","customer":"ann@example.com"}}
{"ts":"2026-01-01T00:00:01Z","kind":"job.started","job_id":"j1","attempt":1}
{"ts":"2026-01-01T00:00:02Z","kind":"effect","effect":"charge","effect_key":"charge/pay:1","job_id":"j1","attempt":1}
{"ts":"2026-01-01T00:00:03Z","kind":"job.failed","job_id":"j1","attempt":1,"retry":true}
{"ts":"2026-01-01T00:00:04Z","kind":"job.started","job_id":"j1","attempt":2}
{"ts":"2026-01-01T00:00:05Z","kind":"effect","effect":"charge","effect_key":"charge/pay:1","job_id":"j1","attempt":2}
{"ts":"2026-01-01T00:00:06Z","kind":"job.succeeded","job_id":"j1","attempt":2}
{"ts":"2026-01-01T00:00:07Z","kind":"effect","effect":"refund","effect_key":"refund/r1","attrs":{"amount":"5","currency":"EUR","customer":"bob"}}
{"ts":"2026-01-01T00:00:08Z","kind":"effect","effect":"refund","effect_key":"refund/r1"}
{"ts":"2026-01-01T00:00:09Z","kind":"effect","effect":"refund","effect_key":"refund/r1"}
{"ts":"2026-01-01T00:00:10Z","kind":"effect","effect":"email.sent","effect_key":"receipt/x","attrs":{"customer":"carl"}}
{"ts":"2026-01-01T00:00:11Z","kind":"effect","effect":"email.sent","effect_key":"receipt/x","attrs":{"customer":"carl"}}
{"ts":"2026-01-01T00:00:12Z","kind":"state","entity":"order:1","seq":2}
{"ts":"2026-01-01T00:00:13Z","kind":"state","entity":"order:1","seq":1}
{"ts":"2026-01-01T00:00:14Z","kind":"state","entity":"order:2","seq":2}
{"ts":"2026-01-01T00:00:15Z","kind":"state","entity":"order:2","seq":1}
{"ts":"2026-01-01T00:00:16Z","kind":"state","entity":"order:2","seq":3}
`

func impactAudit(t *testing.T, yaml string, snapshotAt int) *twicetype.Report {
	t.Helper()
	cfg, err := config.Parse("twice.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(impactEvents), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, mal := eventstest.File(t, path)
	if len(mal) > 0 {
		t.Fatalf("malformed: %v", mal)
	}
	opts := EngineOptions(cfg)
	eng := engine.New(opts)
	for i := range evs {
		if i == snapshotAt {
			// The effect keys' impact values survive a snapshot.
			var b bytes.Buffer
			if err := eng.Snapshot(&b); err != nil {
				t.Fatal(err)
			}
			if eng, err = engine.Restore(opts, &b); err != nil {
				t.Fatal(err)
			}
		}
		eng.Add(&evs[i])
	}
	return eng.Finish()
}

func findingOf(t *testing.T, rep *twicetype.Report, detector, subject string) *twicetype.Finding {
	t.Helper()
	for i := range rep.Findings {
		if f := &rep.Findings[i]; f.Detector == detector && f.Subject == subject {
			return f
		}
	}
	t.Fatalf("no %s finding about %s in %+v", detector, subject, rep.Findings)
	return nil
}

func TestImpact(t *testing.T) {
	// lateness 0: events are audited as they come, so the snapshot holds
	// effect keys, not buffered events.
	const yaml = "impact: {amount: attrs.amount, currency: attrs.currency, customer: attrs.customer}\nengine: {lateness: 0s}\n"
	for _, snap := range []int{-1, 9} {
		rep := impactAudit(t, yaml, snap)
		want := &twicetype.Impact{DuplicatedAmount: map[string]float64{"USD": 12.5, "EUR": 10}, Customers: 3, StaleEntities: 1}
		if !reflect.DeepEqual(rep.Impact, want) {
			t.Errorf("snapshot at %d: Impact = %+v, want %+v", snap, rep.Impact, want)
		}
		charge := findingOf(t, rep, twicetype.DuplicateEffect, "charge/pay:1")
		if charge.Details["amount"] != 12.5 || charge.Details["currency"] != "USD" ||
			!slices.Equal(charge.Details["customers"].([]any), []any{redact.Address("ann@example.com")}) {
			t.Errorf("charge details = %v", charge.Details)
		}
		refund := findingOf(t, rep, twicetype.DuplicateEffect, "refund/r1")
		if refund.Details["amount"] != 10.0 || refund.Details["currency"] != "EUR" {
			t.Errorf("refund details = %v", refund.Details)
		}
		receipt := findingOf(t, rep, twicetype.DuplicateEffect, "receipt/x")
		if _, ok := receipt.Details["amount"]; ok || !slices.Equal(receipt.Details["customers"].([]any), []any{"carl"}) {
			t.Errorf("receipt details = %v, want no amount and customer carl", receipt.Details)
		}
	}
}

func TestImpactRedactedCustomers(t *testing.T) {
	rep := impactAudit(t, "impact: {amount: attrs.amount, customer: attrs.customer}\nredact: [attrs.customer]\n", -1)
	receipt := findingOf(t, rep, twicetype.DuplicateEffect, "receipt/x")
	if got := receipt.Details["customers"]; !slices.Equal(got.([]any), []any{Redact("carl")}) {
		t.Errorf("customers = %v, want carl hashed", got)
	}
	// Without a currency path, every amount adds up under "".
	if got := rep.Impact.DuplicatedAmount; !reflect.DeepEqual(got, map[string]float64{"": 22.5}) {
		t.Errorf("DuplicatedAmount = %v", got)
	}
}

func TestNoImpactWithoutConfig(t *testing.T) {
	rep := impactAudit(t, "", -1)
	if rep.Impact != nil {
		t.Errorf("Impact = %+v without impact paths, want nil", rep.Impact)
	}
	f := findingOf(t, rep, twicetype.DuplicateEffect, "charge/pay:1")
	for _, k := range []string{"amount", "currency", "customers"} {
		if _, ok := f.Details[k]; ok {
			t.Errorf("details.%s set without impact paths", k)
		}
	}
}
