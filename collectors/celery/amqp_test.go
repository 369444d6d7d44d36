package celery

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sources"
)

// TestAMQPRedeliveryAndAck reads events from twice's own queue on a real
// RabbitMQ: what was read and not committed comes again with the same ids
// after the connection is closed under the stream (it reconnects by
// itself); what was committed does not come again after a restart.
func TestAMQPRedeliveryAndAck(t *testing.T) {
	space := servicetest.RabbitMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := NewStream("tasks", Config{Broker: space.URL}, StreamOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	// send publishes on a connection of its own (closing every connection
	// of the vhost closes the test's too).
	send := func(rk, body string) {
		t.Helper()
		conn, err := amqp.Dial(space.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.PublishWithContext(ctx, EventExchange, rk, false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	// A worker's heartbeat is not bound (task.# only); a task event is.
	send("worker.heartbeat", `{"type":"worker-heartbeat","hostname":"w","clock":1,"timestamp":1800000000}`)
	send("task.multi", `[{"type":"task-started","uuid":"a","hostname":"w","clock":2,"timestamp":1800000001}]`)
	read := func(st *Stream, what string) []sources.Record {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			recs, err := st.Poll(ctx, 200*time.Millisecond)
			if err != nil {
				t.Logf("poll: %v", err)
				continue
			}
			if len(recs) > 0 {
				return recs
			}
		}
		t.Fatalf("nothing read: %s", what)
		return nil
	}
	first := read(s, "the first event")
	if len(first) != 1 || first[0].Event == nil || first[0].Event.JobID != "a" {
		t.Fatalf("records %+v", first)
	}
	// The connection closed under the stream: the event, never committed,
	// comes again with the same id.
	ctl := os.Getenv(servicetest.EnvRabbitMQCtl)
	if out, err := exec.Command(ctl, "-q", "close_all_connections", "-p", space.VHost, "test").CombinedOutput(); err != nil {
		t.Fatalf("close connections: %v\n%s", err, out)
	}
	again := read(s, "the event again after the connection was closed")
	if again[0].Event == nil || again[0].Event.ID != first[0].Event.ID {
		t.Fatalf("after the reconnect %+v, want %s again", again, first[0].Event.ID)
	}
	// Committed, then the stream restarts: nothing comes again.
	if err := s.Commit(ctx, map[string]sources.Position{Lane: again[len(again)-1].Position}); err != nil {
		t.Fatal(err)
	}
	// Committing a position of an older connection does nothing.
	if err := s.Commit(ctx, map[string]sources.Position{Lane: first[0].Position}); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	s2, _ := NewStream("tasks", Config{Broker: space.URL}, StreamOptions{Logf: t.Logf})
	if err := s2.Start(ctx, map[string]sources.Position{Lane: again[0].Position}); err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(context.Background())
	send("task.multi", `[{"type":"task-succeeded","uuid":"a","hostname":"w","clock":3,"timestamp":1800000002}]`)
	next := read(s2, "the event after the restart")
	if len(next) != 1 || next[0].Event == nil || next[0].Event.Kind.String() != "job.succeeded" {
		t.Errorf("after the restart %+v, want only the new event", next)
	}
	if st := s2.Stats(); st.Messages != 1 {
		t.Errorf("stats after the restart %+v", st)
	}
}
