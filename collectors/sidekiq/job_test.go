package sidekiq

import (
	"errors"
	"strings"
	"testing"

	"github.com/twicehq/twice/collectors/jobpath"
)

func TestParseJobFields(t *testing.T) {
	m, err := newMapping(Config{Key: "args.0.payment", Entity: "args.1", Attrs: map[string]string{
		"customer": "args.0.customer", "tags": "tags", "missing": "args.5", "n": "args.0.amount",
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw := `{"jid":"j1","class":"ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper","wrapped":"SendReceiptJob",
		"queue":"mailers","args":[{"payment":"p-1","customer":{"id":7},"amount":12.50},42],"tags":["a"],
		"enqueued_at":1796304318.5321271,"retry_count":2,"failed_at":1796304310.5,"retried_at":1796304315.25,
		"error_class":"Net::ReadTimeout","error_message":"timed out"}`
	j, err := parseJob([]byte(raw), m)
	if err != nil {
		t.Fatal(err)
	}
	if j.JID != "j1" || j.jobType() != "SendReceiptJob" || j.Queue != "mailers" {
		t.Errorf("job %+v: want jid j1, job type the wrapped class, queue mailers", j)
	}
	if j.Fields.Key != "p-1" || j.Fields.Entity != "42" {
		t.Errorf("key %q entity %q, want p-1 and 42 (a number as written)", j.Fields.Key, j.Fields.Entity)
	}
	if got := string(j.Fields.Attrs); got != `{"customer":{"id":7},"n":12.50,"tags":["a"]}` {
		t.Errorf("attrs %s", got)
	}
	if j.EnqueuedAt != "1796304318.5321271" || j.FailedAt != "1796304315.25" || j.attemptOfRun() != 4 || j.attemptFailed() != 3 {
		t.Errorf("enqueued %s failed %s run %d failed %d", j.EnqueuedAt, j.FailedAt, j.attemptOfRun(), j.attemptFailed())
	}
	if j.Error != "Net::ReadTimeout: timed out" {
		t.Errorf("error %q", j.Error)
	}
	if j.enqueued != 1796304318532127100 {
		t.Errorf("enqueued ns %d", j.enqueued)
	}
}

func TestParseJobTimesInMilliseconds(t *testing.T) {
	// Sidekiq 8 writes integer milliseconds.
	j, err := parseJob([]byte(`{"jid":"j","class":"C","enqueued_at":1796304318532}`), &jobpath.Mapping{})
	if err != nil || j.enqueued != 1796304318532000000 {
		t.Errorf("job %+v, %v", j, err)
	}
}

func TestParseJobRejects(t *testing.T) {
	for raw, want := range map[string]string{
		`not json`:              "invalid JSON",
		`[1]`:                   "a JSON array, not an object",
		`{"class":"C"}`:         `no "jid"`,
		`{"jid":7,"class":"C"}`: `"jid" is 7`,
		`{"jid":"j"}`:           `no "class"`,
		`{"jid":"j","class":"C","retry_count":"x"}`:   "retry_count",
		`{"jid":"j","class":"C","enqueued_at":"now"}`: `"enqueued_at" is "now"`,
		`{"jid":"j","class":"C","enqueued_at":-1}`:    "not a Unix time",
		`{"jid":"j","class":"C"} {}`:                  "data after",
	} {
		_, err := parseJob([]byte(raw), &jobpath.Mapping{})
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, errPayload) {
			t.Errorf("%s: error %v, want one containing %q", raw, err, want)
		}
	}
}
