package celery

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/sources"
)

func load(t *testing.T, yaml string) (*config.Config, error) {
	t.Helper()
	return config.ParseWith("twice.yaml", []byte(yaml), config.Options{Sources: sources.NewRegistry(Factory{})})
}

func TestConfigTestdata(t *testing.T) {
	c, err := config.LoadWith(filepath.Join("testdata", "config.yaml"), config.Options{Sources: sources.NewRegistry(Factory{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Sources) != 2 {
		t.Fatalf("%d sources, want 2", len(c.Sources))
	}
	got := *c.Sources[0].Settings.(*Config)
	want := Config{
		Broker: "amqp://twice:secret@rabbitmq.internal:5672/app", Queue: "twice.celeryev.tasks", Prefetch: 5000,
		Key: "kwargs.payment", Entity: "args.0", Attrs: map[string]string{"amount": "kwargs.amount", "task": "name"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nwant %+v", got, want)
	}
	if got.transport() != transportAMQP {
		t.Errorf("transport of %s: %v", got.Broker, got.transport())
	}
	minimal := c.Sources[1].Settings.(*Config)
	if minimal.transport() != transportRedis || minimal.Queue != "" || minimal.Prefetch != 0 {
		t.Errorf("minimal %+v", minimal)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no broker", "sources: [{name: s, type: celery}]", "twice.yaml:1:11: sources[0]: missing broker"},
		{"bad scheme", "sources: [{name: s, type: celery, broker: 'http://x:1'}]", "sources[0].broker: want amqp://host:port/vhost or redis://host:port/db"},
		{"password hidden", "sources: [{name: s, type: celery, broker: 'http://u:hunter2@x:1'}]", "u:xxxxx@x:1"},
		{"no host", "sources: [{name: s, type: celery, broker: 'amqp:///x'}]", "names no host"},
		{"redis db", "sources: [{name: s, type: celery, broker: 'redis://x:1/abc'}]", "sources[0].broker: \"redis://x:1/abc\": the path of a redis URL is a database number"},
		{"unknown key", "sources: [{name: s, type: celery, broker: 'redis://x:1', queues: [a]}]", `unknown key "queues"`},
		{"prefetch zero", "sources: [{name: s, type: celery, broker: 'amqp://x:1', prefetch: 0}]", "sources[0].prefetch: must be at least 1, got 0"},
		{"prefetch big", "sources: [{name: s, type: celery, broker: 'amqp://x:1', prefetch: 70000}]", "sources[0].prefetch: must be between 1 and 65535, got 70000"},
		{"amq queue", "sources: [{name: s, type: celery, broker: 'amqp://x:1', queue: amq.x}]", "sources[0].queue: \"amq.x\": names starting with amq. are RabbitMQ's own"},
		{"key path", "sources: [{name: s, type: celery, broker: 'amqp://x:1', key: 'kwargs..p'}]", "sources[0].key: path \"kwargs..p\": segment 2 is empty"},
		{"key root", "sources: [{name: s, type: celery, broker: 'amqp://x:1', key: 'data.p'}]", "sources[0].key: path \"data.p\": starts with args, kwargs or name"},
		{"attr path", "sources: [{name: s, type: celery, broker: 'amqp://x:1', attrs: {a: 'x.'}}]", "sources[0].attrs"},
		{"key not a string", "sources: [{name: s, type: celery, broker: 'amqp://x:1', key: [a]}]", "sources[0].key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidateInCode(t *testing.T) {
	if err := (&Config{Broker: "redis://localhost:6379"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
	err := (&Config{Attrs: map[string]string{"a": ""}, Prefetch: -1}).Validate()
	for _, want := range []string{"broker: required", "attrs.a: empty path", "prefetch: must be between"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
	if _, err := NewStream("s", Config{Broker: "ftp://x"}, StreamOptions{}); err == nil {
		t.Error("NewStream of a bad config: no error")
	}
	for broker, redis := range map[string]bool{"amqp://g:g@h:5672/v": false, "pyamqp://h/": false, "redis://h:1/2": true, "rediss://h:1": true} {
		s, err := NewStream("s", Config{Broker: broker}, StreamOptions{})
		if err != nil || s.redis != redis || s.Replayable() || s.Lanes()[0] != Lane {
			t.Errorf("NewStream(%s): %+v, %v", broker, s, err)
		}
		// Shutdown without Start, twice.
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("Shutdown without Start: %v", err)
		}
		if err := s.Shutdown(t.Context()); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
		if _, err := s.Poll(t.Context(), 0); err == nil {
			t.Errorf("Poll before Start: no error")
		}
	}
}

func TestRedisPattern(t *testing.T) {
	for broker, want := range map[string]string{"redis://h:1": "/0.celeryev/task.*", "redis://h:1/": "/0.celeryev/task.*", "redis://:pw@h:1/7": "/7.celeryev/task.*"} {
		if got, err := redisPattern(broker); err != nil || got != want {
			t.Errorf("redisPattern(%s) = %q, %v; want %q", broker, got, err, want)
		}
	}
}
