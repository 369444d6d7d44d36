package celery

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// recorded reads a testdata file of recorded messages: one JSON object a
// line, with the message body under "body" (RabbitMQ) or the pub/sub
// payload under "payload" (Redis).
func recorded(t *testing.T, name string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func testMapper(t *testing.T, c Config) *mapper {
	t.Helper()
	m, err := newMapping(&c)
	if err != nil {
		t.Fatal(err)
	}
	return newMapper("tasks", m)
}

// describe is an event in one line: kind job_type job_id attempt key
// retry error (first line).
func describe(e *twicetype.Event) string {
	s := fmt.Sprintf("%s %s %.8s", e.Kind, e.JobType, e.JobID)
	if e.HasAttempt {
		s += fmt.Sprintf(" a%d", e.Attempt)
	}
	if e.Key != "" {
		s += " key=" + e.Key
	}
	if e.Queue != "" {
		s += " q=" + e.Queue
	}
	if e.HasRetry {
		s += fmt.Sprintf(" retry=%v", e.Retry)
	}
	if e.Error != "" {
		s += " err=" + strings.SplitN(e.Error, "\n", 2)[0]
	}
	if len(e.Attrs) > 0 {
		s += " attrs=" + string(e.Attrs)
	}
	return s
}

// TestMapRecordedAMQP maps the task events of a real Celery 5.2.6 worker
// read from RabbitMQ: app.charge fails once (autoretry) then succeeds,
// app.always_fails exhausts max_retries=1, app.ok runs behind a countdown.
func TestMapRecordedAMQP(t *testing.T) {
	mp := testMapper(t, Config{Key: "args.0", Entity: "kwargs.payment", Attrs: map[string]string{"amount": "kwargs.amount"}})
	var got []string
	ids := map[string]bool{}
	for i, m := range recorded(t, "amqp-celery-5.2.6.jsonl") {
		out := mp.mapMessage([]byte(m["body"]), int64(i+1))
		if len(out.malformed) > 0 {
			t.Errorf("message %d: malformed %v", i+1, out.malformed[0])
		}
		for _, e := range out.events {
			got = append(got, describe(e))
			if ids[e.ID] {
				t.Errorf("id %s twice", e.ID)
			}
			ids[e.ID] = true
		}
	}
	want := []string{
		`job.enqueued app.charge cdf9ed8b key=payment:1 q=celery attrs={"amount":5}`,
		`job.enqueued app.always_fails 8ba82a0d key=x q=celery`,
		`job.enqueued app.ok d5e1281e q=celery`,
		`job.started app.charge cdf9ed8b a1 key=payment:1 q=celery attrs={"amount":5}`,
		`job.failed app.charge cdf9ed8b a1 key=payment:1 q=celery retry=true err=ValueError('boom') attrs={"amount":5}`,
		`job.started app.always_fails 8ba82a0d a1 key=x q=celery`,
		`job.failed app.always_fails 8ba82a0d a1 key=x q=celery retry=true err=KeyError('x')`,
		`job.started app.charge cdf9ed8b a2 key=payment:1 q=celery attrs={"amount":5}`,
		`job.succeeded app.charge cdf9ed8b a2 key=payment:1 q=celery attrs={"amount":5}`,
		`job.started app.always_fails 8ba82a0d a2 key=x q=celery`,
		`job.dead app.always_fails 8ba82a0d a2 key=x q=celery err=KeyError('x')`,
		`job.started app.ok d5e1281e a1 q=celery`,
		`job.succeeded app.ok d5e1281e a1 q=celery`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	st := mp.Snapshot()
	if st.Messages != 28 || st.Mapped != int64(len(want)) || st.Ignored["task-received"] != 5 || st.Ignored["task-sent"] != 2 || st.Ignored["worker-heartbeat"] == 0 {
		t.Errorf("stats %+v", st)
	}
	// Read again (RabbitMQ redelivers what was not acknowledged): the same
	// ids, so the engine counts each once.
	mp2 := testMapper(t, Config{})
	for i, m := range recorded(t, "amqp-celery-5.2.6.jsonl") {
		for _, e := range mp2.mapMessage([]byte(m["body"]), int64(i+1)).events {
			if !ids[e.ID] {
				t.Errorf("id %s not seen the first time", e.ID)
			}
		}
	}
	// The event time is Celery's timestamp, in milliseconds.
	first := mp2.tasks["cdf9ed8b-a7b3-4ac8-b6b8-c9cf94b4bc6a"]
	if first == nil || first.name != "app.charge" {
		t.Errorf("task state %+v", first)
	}
}

// TestMapRecordedRedis maps the pub/sub messages of a real Celery 5.2.6
// worker on Redis database 3: kombu's envelope, base64 body.
func TestMapRecordedRedis(t *testing.T) {
	mp := testMapper(t, Config{Key: "args.0"})
	var got []string
	pattern, _ := redisPattern("redis://h:1/3")
	prefix := strings.TrimSuffix(pattern, "*")
	for i, m := range recorded(t, "redis-celery-5.2.6.jsonl") {
		if !strings.HasPrefix(m["channel"], prefix) {
			continue // pidbox, worker events: not subscribed to
		}
		body, err := decodeEnvelope(m["payload"])
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		for _, e := range mp.mapMessage(body, int64(i+1)).events {
			got = append(got, describe(e)+" "+e.ID[:7])
			if e.Time != 1796307050609736000 && e.Kind == twicetype.JobEnqueued {
				t.Errorf("enqueued at %d, want Celery's timestamp 1796307050.609736", e.Time)
			}
		}
	}
	want := []string{
		"job.enqueued app.charge c6cb6b2b key=payment:1 q=celery celery:",
		"job.started app.charge c6cb6b2b a1 key=payment:1 q=celery celery:",
		"job.failed app.charge c6cb6b2b a1 key=payment:1 q=celery retry=true err=ValueError('boom') celery:",
		"job.started app.charge c6cb6b2b a2 key=payment:1 q=celery celery:",
		"job.succeeded app.charge c6cb6b2b a2 key=payment:1 q=celery celery:",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ev writes one Celery event body.
func ev(fields string) []byte { return []byte("{" + fields + "}") }

func TestMapCases(t *testing.T) {
	mp := testMapper(t, Config{Key: "kwargs.payment", Entity: "args.1"})
	run := func(bodies ...[]byte) []string {
		var out []string
		for i, b := range bodies {
			o := mp.mapMessage(b, int64(i+1))
			for _, m := range o.malformed {
				out = append(out, "malformed: "+m.Reason)
			}
			for _, e := range o.events {
				s := describe(e)
				if e.Entity != "" {
					s += " entity=" + e.Entity
				}
				out = append(out, s)
			}
		}
		return out
	}
	check := func(name string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	// A redelivery after a killed acks_late worker: a second task-received
	// with the same retries, and the start that follows is attempt 2.
	check("redelivery", run(
		ev(`"type":"task-sent","uuid":"r","name":"app.send","args":"(1, 'order:9')","kwargs":"{'payment': 'payment:7'}","retries":0,"queue":"mail","hostname":"h","clock":1,"timestamp":1.5e9`),
		[]byte(`[{"type":"task-received","uuid":"r","name":"app.send","args":"(1, 'order:9')","kwargs":"{'payment': 'payment:7'}","retries":0,"hostname":"w1","clock":2,"timestamp":1500000001.0},
		  {"type":"task-started","uuid":"r","hostname":"w1","clock":3,"timestamp":1500000001.5}]`),
		[]byte(`[{"type":"task-received","uuid":"r","name":"app.send","args":"(1, 'order:9')","kwargs":"{'payment': 'payment:7'}","retries":0,"hostname":"w2","clock":9,"timestamp":1500000031.0},
		  {"type":"task-started","uuid":"r","hostname":"w2","clock":10,"timestamp":1500000031.5},
		  {"type":"task-succeeded","uuid":"r","result":"None","hostname":"w2","clock":11,"timestamp":1500000032.0}]`),
	),
		"job.enqueued app.send r key=payment:7 q=mail entity=order:9",
		"job.started app.send r a1 key=payment:7 q=mail entity=order:9",
		"job.started app.send r a2 key=payment:7 q=mail entity=order:9",
		"job.succeeded app.send r a2 key=payment:7 q=mail entity=order:9",
	)
	// As seen on Redis with a prefork pool: the task-retried of attempt 1
	// arrives after attempt 2 started and succeeded.
	check("retried late", run(
		ev(`"type":"task-received","uuid":"o","name":"app.o","args":"()","kwargs":"{}","retries":0,"hostname":"w","clock":1,"timestamp":1500000000`),
		ev(`"type":"task-started","uuid":"o","hostname":"w","clock":2,"timestamp":1500000001`),
		ev(`"type":"task-received","uuid":"o","name":"app.o","args":"()","kwargs":"{}","retries":1,"hostname":"w","clock":3,"timestamp":1500000002`),
		ev(`"type":"task-started","uuid":"o","hostname":"w","clock":4,"timestamp":1500000003`),
		ev(`"type":"task-succeeded","uuid":"o","hostname":"w","clock":5,"timestamp":1500000004`),
		ev(`"type":"task-retried","uuid":"o","exception":"RuntimeError('x')","hostname":"w","clock":6,"timestamp":1500000005`),
	),
		"job.started app.o o a1",
		"job.started app.o o a2",
		"job.succeeded app.o o a2",
		"job.failed app.o o a1 retry=true err=RuntimeError('x')",
	)
	// Reading began in the middle: a task-received with retries 2 says the
	// next start is attempt 3; events of a task never received carry no
	// attempt nor fields.
	check("late reader", run(
		ev(`"type":"task-received","uuid":"l","name":"app.x","args":"()","kwargs":"{}","retries":2,"hostname":"w","clock":1,"timestamp":1500000000`),
		ev(`"type":"task-started","uuid":"l","hostname":"w","clock":2,"timestamp":1500000001`),
		ev(`"type":"task-succeeded","uuid":"u","hostname":"w","clock":3,"timestamp":1500000002`),
	),
		"job.started app.x l a3",
		"job.succeeded  u",
	)
	check("rejected and revoked", run(
		ev(`"type":"task-sent","uuid":"j","name":"app.j","args":"()","kwargs":"{}","retries":0,"queue":"q","hostname":"h","clock":1,"timestamp":1500000000`),
		ev(`"type":"task-rejected","uuid":"j","requeue":true,"hostname":"w","clock":2,"timestamp":1500000001`),
		ev(`"type":"task-rejected","uuid":"j","requeue":false,"hostname":"w","clock":3,"timestamp":1500000002`),
		ev(`"type":"task-revoked","uuid":"j","terminated":true,"signum":15,"expired":false,"hostname":"w","clock":4,"timestamp":1500000003`),
		ev(`"type":"task-revoked","uuid":"j","terminated":false,"signum":null,"expired":true,"hostname":"w","clock":5,"timestamp":1500000004`),
	),
		"job.enqueued app.j j q=q",
		"job.failed app.j j q=q retry=true err=rejected, requeued",
		"job.dead app.j j q=q err=rejected",
		"job.discarded app.j j q=q err=revoked: terminated by signal 15",
		"job.discarded app.j j q=q err=revoked: expired",
	)
	// args Celery truncated (argsrepr) are no literal: the task keeps no
	// fields, and ArgsErrors counts it.
	before := mp.Snapshot().ArgsErrors
	check("truncated args", run(
		ev(`"type":"task-sent","uuid":"t","name":"app.t","args":"('aaaa', ...","kwargs":"{'payment': Decimal('1')}","retries":0,"queue":"q","hostname":"h","clock":1,"timestamp":1500000000`),
	), "job.enqueued app.t t q=q")
	if mp.Snapshot().ArgsErrors != before+1 {
		t.Error("ArgsErrors not counted")
	}
	check("malformed", run(
		[]byte(`not json`),
		[]byte(`[1, 2]`),
		ev(`"type":"task-started","hostname":"w","clock":1,"timestamp":1500000000`),
		ev(`"type":"task-started","uuid":"x","hostname":"w","clock":1,"timestamp":"soon"`),
		ev(`"type":"task-started","uuid":"x","hostname":"w","clock":1,"timestamp":-1`),
		ev(`"uuid":"x","timestamp":1500000000`),
		ev(`"type":"worker-heartbeat","hostname":"w","clock":1,"timestamp":1500000000`),
	),
		"malformed: celery event message is not JSON (event_serializer must be json)",
		"malformed: event 1 of the message: json: cannot unmarshal number into Go value of type celery.wireEvent",
		"malformed: event 2 of the message: json: cannot unmarshal number into Go value of type celery.wireEvent",
		"malformed: event 1 of the message (task-started): no uuid",
		`malformed: event 1 of the message: json: invalid number literal, trying to unmarshal "\"soon\"" into Number`,
		`malformed: event 1 of the message (task-started): timestamp "-1" is not Unix seconds`,
		"malformed: event 1 of the message (): no type",
	)
}

func TestDecodeEnvelope(t *testing.T) {
	for payload, want := range map[string]string{
		`{"body": "e30=", "content-type": "application/json", "properties": {"body_encoding": "base64"}}`: "",
		`{"body": "{}", "content-type": "application/json", "properties": {}}`:                            "",
		`{"body": "e30=", "content-type": "application/x-python-serialize", "properties": {}}`:            "event_serializer must be json",
		`{"body": "!!", "properties": {"body_encoding": "base64"}}`:                                       "not base64",
		`{"body": "x", "properties": {"body_encoding": "gzip"}}`:                                          `body_encoding "gzip"`,
		`nope`: "not a kombu message",
	} {
		b, err := decodeEnvelope(payload)
		switch {
		case want == "" && (err != nil || string(b) != "{}"):
			t.Errorf("%s: %q, %v", payload, b, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want %q", payload, err, want)
		}
	}
}
