package bullmq

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twicehq/twice/collectors/jobpath"
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
		Redis: "rediss://twice:secret@redis.internal:6380/0", Prefix: "bull", Queues: []string{"payments", "mail-*"},
		Key: "data.payment", Entity: "data.order", Attrs: map[string]string{"amount": "data.amount", "tenant": "opts.jobId"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nwant %+v", got, want)
	}
	minimal := c.Sources[1].Settings.(*Config).WithDefaults()
	if minimal.Prefix != DefaultPrefix || minimal.Queues != nil || !minimal.matchQueue("anything") {
		t.Errorf("defaults %+v", minimal)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate of a loaded config: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no redis", "sources: [{name: s, type: bullmq}]", "missing redis"},
		{"bad scheme", "sources: [{name: s, type: bullmq, redis: 'http://x:1'}]", "sources[0].redis: want a URL like redis://host:port"},
		{"password hidden", "sources: [{name: s, type: bullmq, redis: 'http://u:hunter2@x:1'}]", "u:xxxxx@x:1"},
		{"unknown key", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', namespace: a}]", `unknown key "namespace"`},
		{"prefix colon", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', prefix: 'bull:'}]", "sources[0].prefix: \"bull:\": write it without the trailing colon"},
		{"prefix glob", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', prefix: 'b*'}]", "not a glob"},
		{"queue colon", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', queues: ['a:b']}]", "sources[0].queues: \"a:b\": BullMQ queue names cannot hold ':'"},
		{"bad glob", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', queues: ['[']}]", "not a valid glob"},
		{"duplicate queue", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', queues: [a, a]}]", `"a" listed twice`},
		{"empty queues", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', queues: []}]", "must not be empty"},
		{"key path", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', key: 'data..p'}]", "sources[0].key: path \"data..p\": segment 2 is empty"},
		{"attr path", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', attrs: {a: 'x.'}}]", "sources[0].attrs"},
		{"key not a string", "sources: [{name: s, type: bullmq, redis: 'redis://x:1', key: [a]}]", "sources[0].key"},
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
	if err := (&Config{Redis: "redis://localhost:6379"}).Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
	err := (&Config{Queues: []string{""}, Attrs: map[string]string{"a": ""}}).Validate()
	for _, want := range []string{"redis: required", "queues[0]: empty", "attrs.a: empty path"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
	if _, err := NewStream("s", Config{Redis: "ftp://x"}, StreamOptions{}); err == nil {
		t.Error("NewStream of a bad config: no error")
	}
	if _, err := NewCollector("s", Config{}, "q", CollectorOptions{}); err == nil {
		t.Error("NewCollector of a bad config: no error")
	}
}

func TestMatchQueue(t *testing.T) {
	c := Config{Queues: []string{"payments", "mail-*"}}
	for q, want := range map[string]bool{"payments": true, "mail-eu": true, "mail": false, "payments2": false, "a:b": false} {
		if got := c.matchQueue(q); got != want {
			t.Errorf("matchQueue(%q) = %v, want %v", q, got, want)
		}
	}
	if c.literalQueues() != nil {
		t.Error("globs are not literal")
	}
	if got := (&Config{Queues: []string{"a", "b"}}).literalQueues(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("literalQueues %v", got)
	}
}

func TestPaths(t *testing.T) {
	m, err := newMapping(&Config{Key: "data.items.1.sku", Entity: "data.n", Attrs: map[string]string{"o": "data.obj", "t": "opts.attempts"}})
	if err != nil {
		t.Fatal(err)
	}
	info := toJobInfo("7", []any{"A", `{"items":[{"sku":"x"},{"sku":"y"}],"n":12.0,"obj":{"b":1,"a":[true,null]}}`, `{"attempts":3}`, "1", "0"})
	f := m.Resolve(info.payload)
	if f.Key != "y" || f.Entity != "12.0" || string(f.Attrs) != `{"o":{"a":[true,null],"b":1},"t":3}` {
		t.Errorf("fields %+v attrs %s", f, f.Attrs)
	}
	// Objects, arrays, booleans and null are no key; a missing path is none.
	for _, p := range []string{"data.obj", "data.items", "data.obj.a.0", "data.obj.a.1", "data.missing", "data.items.01", "data.items.-1", "name.x"} {
		jp, _ := jobpath.Parse(p)
		if v, ok := jobpath.Scalar(jp.Lookup(info.payload)); ok {
			t.Errorf("%s: %q", p, v)
		}
	}
	jp, _ := jobpath.Parse("name")
	if v, _ := jobpath.Scalar(jp.Lookup(info.payload)); v != "A" {
		t.Errorf("name: %q", v)
	}
	jp, _ = jobpath.Parse("id")
	if v, _ := jobpath.Scalar(jp.Lookup(info.payload)); v != "7" {
		t.Errorf("id: %q", v)
	}
}
