package celery

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"

	"github.com/twicehq/twice/internal/servicetest"
)

// readOneEvent polls s until it yields an event, sending one with send
// before each poll (a Redis subscription takes only what is published
// while it listens), and fails t after a minute.
func readOneEvent(ctx context.Context, t *testing.T, s *Stream, send func()) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		send()
		recs, err := s.Poll(ctx, 200*time.Millisecond)
		if err != nil {
			t.Logf("poll: %v", err)
			continue
		}
		for _, r := range recs {
			if r.Event != nil {
				return
			}
		}
	}
	t.Fatal("the tap read no event within a minute")
}

const appTask = `{"task":"tasks.send_receipt","id":"app-task-1","args":["payment:1"]}`

// TestTapLeavesAppTasksOnRabbitMQ: with a task waiting in the app's queue
// and no worker, the tap reads events and acks them, and the task is still
// there, unconsumed, with no consumer on its queue.
func TestTapLeavesAppTasksOnRabbitMQ(t *testing.T) {
	space := servicetest.RabbitMQ(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := amqp.Dial(space.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// The queue and message as Celery's default routing makes them.
	if _, err := ch.QueueDeclare("celery", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx, "", "celery", false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(appTask)}); err != nil {
		t.Fatal(err)
	}

	s, err := NewStream("tasks", Config{Broker: space.URL}, StreamOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	clock := 0
	readOneEvent(ctx, t, s, func() {
		clock++
		body := `[{"type":"task-started","uuid":"app-task-1","hostname":"w","clock":` + itoa(clock) + `,"timestamp":1800000000}]`
		if err := ch.PublishWithContext(ctx, EventExchange, "task.multi", false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	})
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclarePassive("celery", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 1 || q.Consumers != 0 {
		t.Errorf("the app's queue after the tap ran: %d messages, %d consumers; want the 1 task and no consumer", q.Messages, q.Consumers)
	}
	msg, ok, err := ch.Get("celery", true)
	if err != nil || !ok || string(msg.Body) != appTask || msg.Redelivered {
		t.Errorf("the app's task: ok=%v redelivered=%v body=%q err=%v", ok, msg.Redelivered, msg.Body, err)
	}
}

// TestTapLeavesAppTasksOnRedis: the same on Redis, where a kombu-style
// consumer would move the task to kombu's unacked structures (and give it
// back later: a redelivery the tap itself caused).
func TestTapLeavesAppTasksOnRedis(t *testing.T) {
	url := servicetest.RedisDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.LPush(ctx, "celery", appTask).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := NewStream("tasks", Config{Broker: url}, StreamOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	channel := "/" + itoa(opt.DB) + ".celeryev/task.multi"
	clock := 0
	readOneEvent(ctx, t, s, func() {
		clock++
		publishOn(t, rc, channel, `[{"type":"task-started","uuid":"app-task-1","hostname":"w","clock":`+itoa(clock)+`,"timestamp":1800000000}]`)
	})
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	tasks, err := rc.LRange(ctx, "celery", 0, -1).Result()
	if err != nil || len(tasks) != 1 || tasks[0] != appTask {
		t.Errorf("the app's queue after the tap ran: %q (err %v), want the 1 task", tasks, err)
	}
	if n, err := rc.Exists(ctx, "unacked", "unacked_index", "unacked_mutex").Result(); err != nil || n != 0 {
		t.Errorf("kombu's unacked structures exist (%d, err %v): the tap took a task", n, err)
	}
}
