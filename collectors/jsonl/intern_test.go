package jsonl

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/twicehq/twice/twicetype"
)

func TestInternIsBounded(t *testing.T) {
	var p Parser
	var ev twicetype.Event
	for i := range maxInterned + 100 {
		line := fmt.Sprintf(`{"ts":1,"kind":"state","entity":"e","queue":"q-%d"}`, i)
		if err := p.Parse([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("q-%d", i); ev.Queue != want {
			t.Fatalf("Queue = %q, want %q", ev.Queue, want)
		}
	}
	if n := len(p.interned); n != maxInterned {
		t.Errorf("%d interned strings, want %d", n, maxInterned)
	}
	long := strings.Repeat("x", maxInternLen+1)
	if err := p.Parse([]byte(`{"ts":1,"kind":"effect","effect":"`+long+`","effect_key":"k"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Effect != long {
		t.Errorf("Effect = %q", ev.Effect)
	}
	if _, ok := p.interned[long]; ok {
		t.Error("a string longer than maxInternLen was interned")
	}
}

func TestInternReturnsSameString(t *testing.T) {
	var p Parser
	var a, b twicetype.Event
	for _, ev := range []*twicetype.Event{&a, &b} {
		if err := p.Parse([]byte(`{"ts":1,"kind":"job.started","job_id":"j","queue":"emails","job_type":"Send"}`), ev); err != nil {
			t.Fatal(err)
		}
		// Another value in between, so the table is used, not the last value.
		if err := p.Parse([]byte(`{"ts":1,"kind":"job.started","job_id":"j","queue":"other","job_type":"Other"}`), &twicetype.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	if a.Queue != "emails" || b.Queue != "emails" || a.JobType != "Send" {
		t.Fatalf("a = %+v, b = %+v", a, b)
	}
	if unsafe.StringData(a.Queue) != unsafe.StringData(b.Queue) {
		t.Error("the same queue name was allocated twice")
	}
}
