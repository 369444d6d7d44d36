package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestKafkaSchemaRegistryDecoded(t *testing.T) {
	t.Parallel()
	const src = `sources:
  - name: url
    type: kafka
    brokers: [b:9092]
    topics: [t]
    format: map
    schema_registry: http://registry:8081
    map: {kind: '"effect"', ts: 'value.at', effect: '"x"', effect_key: 'value.id'}
  - name: object
    type: kafka
    brokers: [b:9092]
    topics: [t]
    format: map
    schema_registry: {url: "https://registry.internal/apis/ccompat/v7", username: twice, password_file: secrets/registry, ca_file: certs/ca.pem}
    map: {kind: '"effect"', ts: 'value.at', effect: '"x"', effect_key: 'value.id'}
`
	c, err := Parse("twice.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Sources[0].Kafka.SchemaRegistry; got == nil || *got != (KafkaSchemaRegistry{URL: "http://registry:8081"}) {
		t.Errorf("schema_registry: URL = %+v", got)
	}
	want := KafkaSchemaRegistry{URL: "https://registry.internal/apis/ccompat/v7", Username: "twice",
		Password: Secret{File: "secrets/registry"}, CAFile: "certs/ca.pem"} // Parse leaves paths as written; Load makes them relative to the file
	if got := c.Sources[1].Kafka.SchemaRegistry; got == nil || *got != want {
		t.Errorf("schema_registry = %+v, want %+v", got, want)
	}
	shown := fmt.Sprintf("%v %#v", *c.Sources[1].Kafka.SchemaRegistry, *c.Sources[1].Kafka.SchemaRegistry)
	if !strings.Contains(shown, "secret from file") {
		t.Errorf("printed as %s", shown)
	}
}

func TestKafkaSchemaRegistryErrors(t *testing.T) {
	t.Parallel()
	const head = "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n"
	const mapped = "    format: map\n    map: {kind: '\"effect\"', ts: 'value.at', effect: '\"x\"', effect_key: 'value.id'}\n"
	tests := []struct{ name, src, want string }{
		{"needs format map", head + "    schema_registry: http://r:8081\n",
			`twice.yaml:6:5: sources[0].schema_registry: schema_registry needs format: map (the decoded value is what the map's expressions read)`},
		{"not a URL", head + mapped + "    schema_registry: registry:8081\n",
			`twice.yaml:8:22: sources[0].schema_registry: want the registry's URL, http://host:port or https://host:port, got "registry:8081"`},
		{"password in the URL", head + mapped + "    schema_registry: http://u:hunter2@r:8081\n",
			`twice.yaml:8:22: sources[0].schema_registry: put the user and password in username and password (or password_file), not in the URL`},
		{"a list", head + mapped + "    schema_registry: [http://r:8081]\n",
			`twice.yaml:8:22: sources[0].schema_registry: want a URL or a mapping {url, username, password | password_file | password_env, ca_file}, got a list`},
		{"no url", head + mapped + "    schema_registry: {ca_file: ca.pem}\n",
			`twice.yaml:8:22: sources[0].schema_registry: missing url`},
		{"user without password", head + mapped + "    schema_registry: {url: http://r:8081, username: u}\n",
			`twice.yaml:8:22: sources[0].schema_registry: give username and a password (password, password_file or password_env) together, or neither`},
		{"two passwords", head + mapped + "    schema_registry: {url: http://r:8081, username: u, password: hunter2, password_file: p}\n",
			`twice.yaml:8:75: sources[0].schema_registry.password_file: give only one of password, password_file and password_env (password is given)`},
		{"unknown key", head + mapped + "    schema_registry: {url: http://r:8081, token: x}\n",
			`twice.yaml:8:43: sources[0].schema_registry: unknown key "token" (known: url, username, password, password_file, password_env, ca_file, cert_file, key_file, insecure_skip_verify)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("twice.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse:\n%s\nno error, want %s", tt.src, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse:\n%s\nerror:\n %s\nwant:\n %s", tt.src, got, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

func TestKafkaSchemaRegistryValidate(t *testing.T) {
	t.Parallel()
	r := &KafkaSchemaRegistry{URL: "ftp://x", Username: "u"}
	errs := r.validate("schema_registry")
	if len(errs) != 2 {
		t.Fatalf("errs = %v, want a URL error and a missing password", errs)
	}
}
