package webhook

import (
	"fmt"
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
	got := *c.Sources[0].Settings.(*Config)
	want := Config{Listen: "0.0.0.0:8082", Upstream: "https://partner.example.com/api", KeyPath: "data.payment_id", JobHeader: "X-Job-Id",
		IDHeader: "Webhook-Id", Effect: "partner.notified", MaxKeyBodyBytes: 65536, MaxPending: 100, Token: config.Secret{Env: "TWICE_WEBHOOK_TOKEN"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nwant %+v", got, want)
	}
	if got.keyHeader() != "" {
		t.Errorf("key_path set: key header %q", got.keyHeader())
	}
	m := c.Sources[1].Settings.(*Config)
	if m.listen() != DefaultListen || m.keyHeader() != DefaultKeyHeader || m.effect() != DefaultEffect || m.maxKeyBody() != DefaultMaxKeyBodyBytes {
		t.Errorf("defaults %+v", m)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no upstream", "sources: [{name: s, type: webhook}]", "twice.yaml:1:11: sources[0]: missing upstream (a webhook source needs it)"},
		{"bad upstream", "sources: [{name: s, type: webhook, upstream: 'ftp://x'}]", `twice.yaml:1:46: sources[0].upstream: want http(s)://host[:port][/path], got "ftp://x"`},
		{"upstream password hidden", "sources: [{name: s, type: webhook, upstream: 'http://u:hunter2@x?q=1'}]", "u:xxxxx@x"},
		{"open without token", "sources: [{name: s, type: webhook, upstream: 'http://x', listen: ':8082'}]", `sources[0].listen: ":8082" is reachable beyond this machine: set token`},
		{"both keys", "sources: [{name: s, type: webhook, upstream: 'http://x', key_header: K, key_path: a}]", "sources[0].key_path: give key_header or key_path, not both"},
		{"bad path", "sources: [{name: s, type: webhook, upstream: 'http://x', key_path: 'a..b'}]", `sources[0].key_path: path "a..b": segment 2 is empty`},
		{"bad header", "sources: [{name: s, type: webhook, upstream: 'http://x', id_header: 'a b'}]", `sources[0].id_header: "a b" is not a header name`},
		{"unknown key", "sources: [{name: s, type: webhook, upstream: 'http://x', url: y}]", `unknown key "url"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("a password is printed: %v", err)
			}
		})
	}
	c, err := load(t, "sources: [{name: s, type: webhook, upstream: 'http://x', listen: ':1', token: hunter2}]")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprintf("%v %+v %#v", c.Sources[0].Settings, c.Sources[0].Settings, c.Sources[0].Settings); strings.Contains(s, "hunter2") {
		t.Errorf("the token is printed: %s", s)
	}
}
