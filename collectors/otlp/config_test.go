package otlp

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
	abs, _ := filepath.Abs(filepath.Join("testdata", "token.txt"))
	if got.Token.File != "" && !filepath.IsAbs(got.Token.File) {
		got.Token.File, _ = filepath.Abs(got.Token.File)
	}
	no := false
	want := Config{
		Listen: "0.0.0.0:4318", GRPCListen: "0.0.0.0:4317", Token: config.Secret{File: abs},
		EffectAttr: "app.effect", KeyAttr: "app.effect_key", JobAttr: "app.job_id", AttemptAttr: "app.attempt", JobTypeAttr: "celery.task_name",
		Match: []Rule{
			{Span: "smtp.send", Effect: "email.sent"},
			{Span: "POST /v1/charges", Effect: "payment.charged", KeyAttr: "http.request.header.idempotency-key"},
		},
		Attrs:        map[string]string{"service": "service.name", "to": "messaging.destination.name"},
		Jobs:         &no,
		MaxBodyBytes: 1 << 20, MaxPending: 5000,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nwant %+v", got, want)
	}
	local := c.Sources[1].Settings.(*Config)
	if local.listen() != DefaultListen || local.effectAttr() != DefaultEffectAttr || local.keyAttr() != DefaultKeyAttr ||
		local.jobAttr() != DefaultJobAttr || local.attemptAttr() != DefaultAttemptAttr || local.jobTypeAttr() != DefaultJobTypeAttr || !local.jobs() || local.GRPCListen != "" {
		t.Errorf("defaults: %+v", local)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"open without token", "sources: [{name: s, type: otlp, listen: ':4318'}]",
			`twice.yaml:1:41: sources[0].listen: ":4318" is reachable beyond this machine: set token (or token_file, token_env), or listen on 127.0.0.1`},
		{"grpc open without token", "sources: [{name: s, type: otlp, grpc_listen: '0.0.0.0:4317'}]",
			`sources[0].grpc_listen: "0.0.0.0:4317" is reachable beyond this machine`},
		{"same address", "sources: [{name: s, type: otlp, listen: '127.0.0.1:4318', grpc_listen: '127.0.0.1:4318'}]",
			`sources[0].grpc_listen: is the same address as listen ("127.0.0.1:4318")`},
		{"bad listen", "sources: [{name: s, type: otlp, listen: 'nohost'}]", `sources[0].listen: want host:port, got "nohost"`},
		{"key is effect", "sources: [{name: s, type: otlp, key_attr: twice.effect}]", `sources[0].key_attr: is the same attribute as effect_attr ("twice.effect")`},
		{"rule without effect", "sources: [{name: s, type: otlp, match: {smtp.send: {key_attr: k}}}]", `twice.yaml:1:52: sources[0].match.smtp.send: missing effect: the effect type of the spans named "smtp.send"`},
		{"rule unknown key", "sources: [{name: s, type: otlp, match: {smtp.send: {effect: e, kind: client}}}]", `sources[0].match.smtp.send: unknown key "kind" (known: effect, key_attr)`},
		{"bad glob", "sources: [{name: s, type: otlp, match: {'smtp[': email.sent}}]", `sources[0].match.smtp[: "smtp[" is not a valid glob`},
		{"match not a mapping", "sources: [{name: s, type: otlp, match: [smtp.send]}]", "sources[0].match: want a mapping"},
		{"jobs not bool", "sources: [{name: s, type: otlp, jobs: sometimes}]", "sources[0].jobs"},
		{"body zero", "sources: [{name: s, type: otlp, max_body_bytes: 0}]", "sources[0].max_body_bytes: must be at least 1, got 0"},
		{"unknown key", "sources: [{name: s, type: otlp, path: x}]", `unknown key "path"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	// A token lets it listen everywhere, and is never printed.
	c, err := load(t, "sources: [{name: s, type: otlp, listen: ':4318', token: hunter2}]")
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Sources[0].Settings.(*Config); s.Token.Value != "hunter2" || strings.Contains(fmt.Sprintf("%v %+v %#v", s, s, s), "hunter2") {
		t.Errorf("settings print the token")
	}
}
