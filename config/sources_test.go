package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
)

// queueSettings is what the test tap "queue" decodes: a little of every
// kind of key a tap has.
type queueSettings struct {
	Redis    string
	Queues   []string
	Prefix   string
	Mode     string
	Every    time.Duration
	Batch    int
	TLS      bool
	CAFile   string
	Attrs    map[string]string
	Password string
}

func (q *queueSettings) Validate() error {
	if len(q.Queues) == 0 {
		return &config.Error{Path: "queues", Msg: "no queues"}
	}
	return nil
}

// queueTypes is a SourceTypes of one type, "queue".
type queueTypes struct{}

func (queueTypes) Types() []string { return []string{"queue"} }

func (queueTypes) DecodeSource(typ string, m *config.SourceMapping) (config.SourceSettings, bool) {
	if typ != "queue" {
		return nil, false
	}
	m.Known("redis", "queues", "prefix", "mode", "every", "batch", "tls", "attrs")
	q := &queueSettings{Prefix: "bull", Mode: "poll"}
	m.Require("redis")
	m.URL("redis", &q.Redis, "redis", "rediss")
	m.Strings("queues", &q.Queues)
	m.String("prefix", &q.Prefix)
	m.OneOf("mode", &q.Mode, "poll", "middleware")
	m.Duration("every", &q.Every)
	m.Int("batch", &q.Batch, 1)
	m.StringMap("attrs", &q.Attrs)
	if m.IsMapping("tls") {
		if tls, ok := m.Mapping("tls"); ok {
			tls.Known("ca_file")
			q.TLS = tls.File("ca_file", &q.CAFile)
		}
	} else {
		m.Bool("tls", &q.TLS)
	}
	return q, true
}

func parseWith(t *testing.T, yaml string) (*config.Config, error) {
	t.Helper()
	return config.ParseWith("twice.yaml", []byte(yaml), config.Options{Sources: queueTypes{}})
}

// TestTapSource: a source of a type the SourceTypes knows is decoded by
// it, with defaults, and keeps its name and line.
func TestTapSource(t *testing.T) {
	c, err := parseWith(t, `
sources:
  - name: jobs
    type: queue
    redis: redis://127.0.0.1:6379/0
    queues: [emails, "pay*"]
    mode: middleware
    every: 2s
    batch: 10
    tls: {ca_file: /etc/ca.pem}
    attrs: {payment_id: data.payment}
  - name: files
    path: a.jsonl
`)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sources[0]
	if s.Name != "jobs" || s.Type != "queue" || s.Line != 3 || s.Kafka != nil {
		t.Fatalf("source = %+v", s)
	}
	want := &queueSettings{Redis: "redis://127.0.0.1:6379/0", Queues: []string{"emails", "pay*"}, Prefix: "bull",
		Mode: "middleware", Every: 2 * time.Second, Batch: 10, TLS: true, CAFile: "/etc/ca.pem",
		Attrs: map[string]string{"payment_id": "data.payment"}}
	if !reflect.DeepEqual(s.Settings, want) {
		t.Errorf("settings = %+v\nwant %+v", s.Settings, want)
	}
	if c.Sources[1].Settings != nil || c.Sources[1].Type != "file" {
		t.Errorf("file source = %+v", c.Sources[1])
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	c.Sources[0].Settings.(*queueSettings).Queues = nil
	if err := c.Validate(); err == nil || err.Error() != "sources[0].queues: no queues" {
		t.Errorf("Validate of settings without queues = %v", err)
	}
}

// TestTapSourceErrors: every problem of a tap's mapping is reported at
// its file:line with its key path, as for the built-in types.
func TestTapSourceErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown type", "sources:\n  - {name: q, type: queu}\n",
			`twice.yaml:2:21: sources[0].type: unknown source type "queu" (known: file, queue)`},
		{"missing name and key", "sources:\n  - type: queue\n",
			"twice.yaml:2:5: sources[0]: missing name (a queue source needs it)\n" +
				"twice.yaml:2:5: sources[0]: missing redis (a queue source needs it)"},
		{"unknown key", "sources:\n  - name: q\n    type: queue\n    redis: redis://h:1\n    queue: [a]\n",
			`twice.yaml:5:5: sources[0]: unknown key "queue" (known: name, type, redis, queues, prefix, mode, every, batch, tls, attrs)`},
		{"bad url", "sources:\n  - name: q\n    type: queue\n    redis: http://u:secret@h:1\n",
			`twice.yaml:4:12: sources[0].redis: want a URL like redis://host:port, got "http://u:xxxxx@h:1"`},
		{"bad values", "sources:\n  - name: q\n    type: queue\n    redis: redis://h:1\n    queues: []\n    mode: push\n    every: 0s\n    batch: 0\n    tls: yes please\n",
			"twice.yaml:5:13: sources[0].queues: must not be empty\n" +
				`twice.yaml:6:11: sources[0].mode: want one of poll, middleware, got "push"` + "\n" +
				"twice.yaml:7:12: sources[0].every: must be greater than 0, got 0s\n" +
				"twice.yaml:8:12: sources[0].batch: must be at least 1, got 0\n" +
				`twice.yaml:9:10: sources[0].tls: want true or false, got "yes please"`},
		{"nested unknown key", "sources:\n  - name: q\n    type: queue\n    redis: redis://h:1\n    tls: {ca: x}\n",
			`twice.yaml:5:11: sources[0].tls: unknown key "ca" (known: ca_file)`},
		{"list item", "sources:\n  - name: q\n    type: queue\n    redis: redis://h:1\n    queues: [a, 3, '']\n",
			"twice.yaml:5:17: sources[0].queues[1]: want a string, got 3\n" +
				"twice.yaml:5:20: sources[0].queues[2]: must not be empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWith(t, tc.yaml)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got\n%v\nwant\n%s", err, tc.want)
			}
			var ce *config.Error
			if err != nil && !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

// TestTapSourceWithoutTypes: Parse, without SourceTypes, knows file and
// kafka only.
func TestTapSourceWithoutTypes(t *testing.T) {
	_, err := config.Parse("twice.yaml", []byte("sources:\n  - {name: q, type: queue}\n"))
	want := `twice.yaml:2:21: sources[0].type: unknown source type "queue" (known: file, kafka)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestTapSourceRelativeFile: File reads a path relative to twice.yaml's
// folder when Load read it.
func TestTapSourceRelativeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "twice.yaml")
	writeTestFile(t, path, "sources:\n  - name: q\n    type: queue\n    redis: rediss://h:1\n    tls: {ca_file: certs/ca.pem}\n")
	c, err := config.LoadWith(path, config.Options{Sources: queueTypes{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sources[0].Settings.(*queueSettings).CAFile; got != filepath.Join(dir, "certs/ca.pem") {
		t.Errorf("ca_file = %q, want it under %s", got, dir)
	}
	if !strings.HasPrefix(c.Sources[0].Settings.(*queueSettings).Redis, "rediss://") {
		t.Errorf("redis = %q", c.Sources[0].Settings.(*queueSettings).Redis)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
