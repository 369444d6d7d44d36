package ingest

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/twicehq/twice/collectors/push"
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
	abs, _ := filepath.Abs(filepath.Join("testdata", "token.txt"))
	dir, _ := filepath.Abs("testdata")
	want := Config{Listen: "0.0.0.0:9091", Token: config.Secret{File: abs}, MaxBodyBytes: 1 << 20, MaxPending: 5000, MaxRate: 200,
		TLS: &push.TLSFiles{CertFile: filepath.Join(dir, "server.pem"), KeyFile: filepath.Join(dir, "server-key.pem")}}
	for _, p := range []*string{&got.Token.File, &got.TLS.CertFile, &got.TLS.KeyFile} {
		if !filepath.IsAbs(*p) {
			*p, _ = filepath.Abs(*p)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nwant %+v", got, want)
	}
	local := c.Sources[1].Settings.(*Config)
	if local.listen() != DefaultListen || local.Token.IsSet() {
		t.Errorf("defaults: %+v", local)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"open without token", "sources: [{name: s, type: ingest, listen: ':8081'}]",
			`twice.yaml:1:43: sources[0].listen: ":8081" is reachable beyond this machine: set token (or token_file, token_env), or listen on 127.0.0.1`},
		{"bad listen", "sources: [{name: s, type: ingest, listen: 'nohost'}]", `sources[0].listen: want host:port, got "nohost"`},
		{"two tokens", "sources: [{name: s, type: ingest, token: a, token_env: B}]", "sources[0].token_env: give only one of token, token_file and token_env (token is given)"},
		{"body zero", "sources: [{name: s, type: ingest, max_body_bytes: 0}]", "sources[0].max_body_bytes: must be at least 1, got 0"},
		{"pending zero", "sources: [{name: s, type: ingest, max_pending: 0}]", "sources[0].max_pending: must be at least 1, got 0"},
		{"rate zero", "sources: [{name: s, type: ingest, max_rate: 0}]", "sources[0].max_rate: must be at least 1, got 0"},
		{"unknown key", "sources: [{name: s, type: ingest, path: x}]", `unknown key "path"`},
		{"tls without key", "sources: [{name: s, type: ingest, tls: {cert_file: c.pem}}]", "sources[0].tls: missing key_file"},
		{"tls not a mapping", "sources: [{name: s, type: ingest, tls: true}]", "sources[0].tls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// A token lets it listen everywhere, and is never printed.
	c, err := load(t, "sources: [{name: s, type: ingest, listen: ':8081', token: hunter2}]")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Sources[0].Settings.(*Config); s.Token.Value != "hunter2" || strings.Contains(fmtAll(s), "hunter2") {
		t.Errorf("settings %s", fmtAll(s))
	}
}
