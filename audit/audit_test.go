package audit

import (
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/twicetype"
)

func TestEngineOptionsCarriesConfig(t *testing.T) {
	cfg, err := config.Parse("twice.yaml", []byte(`
expect:
  - job_type: SendReceipt
    effect: email.sent
    effect_key: "receipt/{{key}}/{{attrs.n}}"
    within: 2m
    count: 2
detectors:
  lost-job: {lost_after: 10m, severity: critical}
  dead-letter: {enabled: false}
redact: [job_id]
engine: {lateness: 5s, reorder_buffer: 10, horizon: 2h}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := EngineOptions(cfg)
	if opts.Lateness != 5*time.Second || opts.ReorderBuffer != 10 || opts.Detectors.Horizon != 2*time.Hour {
		t.Fatalf("engine options = %+v", opts)
	}
	rules := opts.Detectors.Rules
	if len(rules) != 1 || rules[0].Within != 2*time.Minute || rules[0].Count != 2 || rules[0].Effect != "email.sent" {
		t.Fatalf("rules = %+v", rules)
	}
	key, ok := rules[0].Render(&detectors.Job{ID: "j-1", Key: "payment:1", Attrs: []byte(`{"n":7}`)})
	if !ok || key != "receipt/payment:1/7" {
		t.Fatalf("render = %q, %v", key, ok)
	}
	if _, ok := rules[0].Render(&detectors.Job{ID: "j-2"}); ok {
		t.Fatal("a job without key rendered")
	}
	lost := opts.Detectors.Detectors[twicetype.LostJob]
	if lost.LostAfter != 10*time.Minute || lost.Severity != twicetype.Critical || !lost.Enabled {
		t.Fatalf("lost-job settings = %+v", lost)
	}
	if opts.Detectors.Detectors[twicetype.DeadLetter].Enabled {
		t.Fatal("dead-letter still enabled")
	}
	red := opts.Detectors.Redact
	if got := red("job_id", "j-1"); got != Redact("j-1") || !strings.HasPrefix(got, "redacted:") || len(got) != len("redacted:")+16 {
		t.Fatalf("redacted job_id = %q", got)
	}
	if got := red("key", "payment:1"); got != "payment:1" {
		t.Fatalf("key was redacted though not listed: %q", got)
	}
}

func TestRedactorIsNilWithoutFields(t *testing.T) {
	if Redactor(nil) != nil {
		t.Fatal("Redactor(nil) should be nil so findings skip hashing")
	}
}
