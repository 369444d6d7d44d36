package sidekiq

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	poll := *c.Sources[0].Settings.(*Config)
	want := Config{
		Redis: "redis://:secret@localhost:6379/0", Queues: []string{"default", "mail*"}, Namespace: "myapp",
		Mode: ModePoll, Key: "args.0.payment", Entity: "args.0.order",
		Attrs:        map[string]string{"customer": "args.0.customer", "tenant": "tags.0"},
		PollInterval: time.Second, MaxList: 10000,
	}
	if poll.Redis != want.Redis || strings.Join(poll.Queues, ",") != "default,mail*" || poll.Namespace != want.Namespace ||
		poll.Mode != want.Mode || poll.Key != want.Key || poll.Entity != want.Entity || len(poll.Attrs) != 2 ||
		poll.Attrs["tenant"] != "tags.0" || poll.PollInterval != want.PollInterval || poll.MaxList != want.MaxList {
		t.Errorf("poll source %+v\nwant %+v", poll, want)
	}
	mw := c.Sources[1].Settings.(*Config).WithDefaults()
	if mw.Mode != ModeMiddleware || mw.Stream != DefaultStream || mw.PollInterval != 0 {
		t.Errorf("middleware source %+v", mw)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no redis", "sources: [{name: s, type: sidekiq}]", "missing redis"},
		{"bad scheme", "sources: [{name: s, type: sidekiq, redis: 'http://x:1'}]", "sources[0].redis: want a URL like redis://host:port"},
		{"unknown key", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', prefix: bull}]", `unknown key "prefix"`},
		{"bad mode", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', mode: push}]", "sources[0].mode: want one of poll, middleware"},
		{"empty path segment", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', key: 'args..0'}]", "sources[0].key: path \"args..0\": segment 2 is empty"},
		{"attr path", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', attrs: {a: 'x.'}}]", "sources[0].attrs: a: path"},
		{"stream in poll mode", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', stream: s}]", "sources[0].stream: only for mode middleware"},
		{"poll_interval in middleware mode", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', mode: middleware, poll_interval: 1s}]", "sources[0].poll_interval: only for mode poll"},
		{"namespace colon", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', namespace: 'app:'}]", "without the trailing colon"},
		{"bad glob", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', queues: ['[']}]", "not a valid glob"},
		{"duplicate queue", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', queues: [a, a]}]", `"a" listed twice`},
		{"max_list", "sources: [{name: s, type: sidekiq, redis: 'redis://x:1', max_list: 0}]", "sources[0].max_list: must be at least 1"},
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
	if err := (Config{Redis: "redis://localhost:6379"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
	err := (Config{Mode: "x", Queues: []string{""}}).Validate()
	for _, want := range []string{"redis: required", "mode: want one of", "queues[0]: empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
	if _, err := NewPoller("s", Config{Redis: "redis://x:1", Mode: ModeMiddleware}); err == nil {
		t.Error("a poller of a middleware source: no error")
	}
}

func TestMatchQueue(t *testing.T) {
	c := Config{Queues: []string{"default", "mail*"}}
	for q, want := range map[string]bool{"default": true, "mailers": true, "mail": true, "low": false, "defaults": false} {
		if got := c.matchQueue(q); got != want {
			t.Errorf("matchQueue(%q) = %v, want %v", q, got, want)
		}
	}
	if !(Config{}).matchQueue("anything") {
		t.Error("no queues: want every queue")
	}
}
