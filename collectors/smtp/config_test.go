package smtp

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
	dir, _ := filepath.Abs("testdata")
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		a, _ := filepath.Abs(p)
		return a
	}
	got.Relay.CAFile, got.Relay.Password.File = abs(got.Relay.CAFile), abs(got.Relay.Password.File)
	want := Config{Listen: "0.0.0.0:2526", KeyHeader: "X-Receipt-Key", JobHeader: "X-Job-Id", Effect: "receipt.sent",
		KeepRecipients: true, MaxMessageBytes: 1 << 20, MaxPending: 500, MaxConnections: 20, Username: "app", Password: config.Secret{Env: "TWICE_SMTP_PASSWORD"},
		Relay: &Relay{Address: "smtp.example.com:587", CAFile: filepath.Join(dir, "upstream-ca.pem"), Username: "relay-user",
			Password: config.Secret{File: filepath.Join(dir, "relay-password.txt")}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("source %+v\nrelay %+v\nwant %+v\nrelay %+v", got, *got.Relay, want, *want.Relay)
	}
	capture := c.Sources[1].Settings.(*Config)
	if capture.listen() != DefaultListen || capture.keyHeader() != DefaultKeyHeader || capture.effect() != DefaultEffect ||
		capture.KeepRecipients || capture.Relay != nil {
		t.Errorf("defaults: %+v", capture)
	}
	if r := c.Sources[2].Settings.(*Config).Relay; r == nil || r.Address != "localhost:25" || r.NoStartTLS {
		t.Errorf("short relay: %+v", r)
	}
	if tm := c.Sources[3].Settings.(*Config); tm.KeyTemplate != "receipt/{{X-Payment-Id}}" {
		t.Errorf("key_template: %+v", tm)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"open without auth", "sources: [{name: s, type: smtp, listen: ':25'}]",
			`twice.yaml:1:41: sources[0].listen: ":25" is reachable beyond this machine: set username and password`},
		{"user without password", "sources: [{name: s, type: smtp, username: u}]", "sources[0].username: username and password go together"},
		{"bad header", "sources: [{name: s, type: smtp, key_header: 'X Key'}]", `sources[0].key_header: "X Key" is not a header name`},
		{"relay without address", "sources: [{name: s, type: smtp, relay: {starttls: false}}]", "sources[0].relay: missing address"},
		{"relay bad address", "sources: [{name: s, type: smtp, relay: 'nohost'}]", `sources[0].relay: address: want host:port, got "nohost"`},
		{"relay unknown key", "sources: [{name: s, type: smtp, relay: {address: 'a:1', tls: true}}]", `unknown key "tls"`},
		{"two passwords", "sources: [{name: s, type: smtp, username: u, password: a, password_file: b}]", "sources[0].password_file: give only one of password"},
		{"unknown key", "sources: [{name: s, type: smtp, path: x}]", `unknown key "path"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
	c, err := load(t, "sources: [{name: s, type: smtp, listen: ':2525', username: u, password: hunter2, relay: {address: 'a:1', username: r, password: hunter3}}]")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sources[0].Settings.(*Config)
	if printed := fmt.Sprintf("%v %+v %#v %+v", s, s, s, *s.Relay); strings.Contains(printed, "hunter") {
		t.Errorf("a password is printed: %s", printed)
	}
}
