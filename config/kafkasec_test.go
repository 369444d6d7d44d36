package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKafkaSecurityDecoded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "twice.yaml")
	src := `sources:
  - name: plain-tls
    type: kafka
    brokers: [b:9093]
    topics: [t]
    tls: true
  - name: mtls
    type: kafka
    brokers: [b:9093]
    topics: [t]
    tls: {ca_file: certs/ca.pem, cert_file: /etc/twice/client.pem, key_file: certs/client.key, server_name: kafka.internal}
    sasl: {mechanism: scram-sha-512, username: twice, password_file: secrets/kafka-password}
  - name: env
    type: kafka
    brokers: [b:9093]
    topics: [t]
    tls: false
    sasl: {mechanism: PLAIN, username: key, password_env: KAFKA_PASSWORD}
watch:
  findings:
    - type: kafka
      brokers: [b:9093]
      topic: findings
      tls: {ca_file: ca.pem, insecure_skip_verify: true}
      sasl: {mechanism: SCRAM-SHA-256, username: sink, password: "s3cret"}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := c.Sources[0].Kafka.TLS; got == nil || *got != (KafkaTLS{}) || c.Sources[0].Kafka.SASL != nil {
		t.Errorf("tls: true = %+v, sasl %+v", got, c.Sources[0].Kafka.SASL)
	}
	wantTLS := KafkaTLS{CAFile: filepath.Join(dir, "certs/ca.pem"), CertFile: "/etc/twice/client.pem",
		KeyFile: filepath.Join(dir, "certs/client.key"), ServerName: "kafka.internal"}
	if got := c.Sources[1].Kafka.TLS; got == nil || *got != wantTLS {
		t.Errorf("tls = %+v, want %+v", got, wantTLS)
	}
	wantSASL := KafkaSASL{Mechanism: SASLScramSHA512, Username: "twice", Password: Secret{File: filepath.Join(dir, "secrets/kafka-password")}}
	if got := c.Sources[1].Kafka.SASL; got == nil || *got != wantSASL {
		t.Errorf("sasl = %+v, want %+v", got, wantSASL)
	}
	if k := c.Sources[2].Kafka; k.TLS != nil || k.SASL == nil || *k.SASL != (KafkaSASL{Mechanism: SASLPlain, Username: "key", Password: Secret{Env: "KAFKA_PASSWORD"}}) {
		t.Errorf("tls: false, sasl env = %+v %+v", k.TLS, k.SASL)
	}
	s := c.Watch.Findings[0]
	if s.TLS == nil || *s.TLS != (KafkaTLS{CAFile: filepath.Join(dir, "ca.pem"), InsecureSkipVerify: true}) {
		t.Errorf("sink tls = %+v", s.TLS)
	}
	if s.SASL == nil || *s.SASL != (KafkaSASL{Mechanism: SASLScramSHA256, Username: "sink", Password: Secret{Value: "s3cret"}}) {
		t.Errorf("sink sasl = %+v", s.SASL)
	}
	// The password is never printed, whatever the verb.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, *s.SASL); strings.Contains(out, "s3cret") {
			t.Errorf("%s of the sasl shows the password: %s", verb, out)
		}
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "s3cret") {
			t.Errorf("%s of the sink shows the password: %s", verb, out)
		}
	}
}

func TestKafkaSecurityErrors(t *testing.T) {
	t.Parallel()
	const head = "sources:\n  - name: k\n    type: kafka\n    brokers: [b:9092]\n    topics: [t]\n"
	tests := []struct{ name, src, want string }{
		{"tls is a string", head + "    tls: yes\n",
			`twice.yaml:6:10: sources[0].tls: want true, false or a mapping {ca_file, cert_file, key_file, server_name}, got "yes"`},
		{"tls is empty", head + "    tls:\n",
			`twice.yaml:6:9: sources[0].tls: want true, false or a mapping {ca_file, cert_file, key_file, server_name}, got nothing`},
		{"tls unknown key", head + "    tls: {ca: ca.pem}\n",
			`twice.yaml:6:11: sources[0].tls: unknown key "ca" (known: ca_file, cert_file, key_file, server_name, insecure_skip_verify)`},
		{"cert without key", head + "    tls: {cert_file: c.pem}\n",
			`twice.yaml:6:10: sources[0].tls: give cert_file and key_file together (a client certificate and its key), or neither`},
		{"empty ca_file", head + "    tls: {ca_file: \"\"}\n",
			`twice.yaml:6:20: sources[0].tls.ca_file: must not be empty`},
		{"insecure not a bool", head + "    tls: {insecure_skip_verify: 1}\n",
			`twice.yaml:6:33: sources[0].tls.insecure_skip_verify: want true or false, got 1`},
		{"sasl is true", head + "    sasl: true\n",
			`twice.yaml:6:11: sources[0].sasl: want a mapping {mechanism, username, password | password_file | password_env}, got true`},
		{"sasl unknown mechanism", head + "    sasl: {mechanism: MD5, username: u, password: p}\n",
			`twice.yaml:6:23: sources[0].sasl.mechanism: unknown SASL mechanism "MD5" (known: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`},
		{"sasl oauthbearer", head + "    sasl: {mechanism: OAUTHBEARER, username: u, password: p}\n",
			`twice.yaml:6:23: sources[0].sasl.mechanism: OAUTHBEARER is not supported (the Kafka client twice uses has no OAUTHBEARER); use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512`},
		{"sasl without password", head + "    sasl: {mechanism: PLAIN, username: u}\n",
			`twice.yaml:6:11: sources[0].sasl: missing password, password_file or password_env`},
		{"sasl without username", head + "    sasl: {mechanism: PLAIN, password_env: P}\n",
			`twice.yaml:6:11: sources[0].sasl: missing username`},
		{"sasl two passwords", head + "    sasl: {mechanism: PLAIN, username: u, password: hunter2, password_file: p}\n",
			`twice.yaml:6:62: sources[0].sasl.password_file: give only one of password, password_file and password_env (password is given)`},
		{"sasl password not a string", head + "    sasl: {mechanism: PLAIN, username: u, password: 314159}\n",
			`twice.yaml:6:53: sources[0].sasl.password: want a string, got a value that is not a string (put the password in quotes)`},
		{"sasl unknown key", head + "    sasl: {mechanism: PLAIN, username: u, password: hunter2, token: x}\n",
			`twice.yaml:6:62: sources[0].sasl: unknown key "token" (known: mechanism, username, password, password_file, password_env)`},
		{"sink sasl", "watch:\n  findings:\n    - {type: kafka, brokers: [b:9092], topic: f, sasl: {mechanism: SCRAM-SHA-1, username: u, password: hunter2}}\n",
			`twice.yaml:3:68: watch.findings[0].sasl.mechanism: unknown SASL mechanism "SCRAM-SHA-1" (known: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)`},
		{"sink tls", "watch:\n  findings:\n    - {type: kafka, brokers: [b:9092], topic: f, tls: {key_file: k.pem}}\n",
			`twice.yaml:3:55: watch.findings[0].tls: give cert_file and key_file together (a client certificate and its key), or neither`},
		{"file sink with tls", "watch:\n  findings:\n    - {type: file, path: f, tls: true}\n",
			`twice.yaml:3:29: watch.findings[0]: unknown key "tls" (known: type, path)`},
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
			for _, pw := range []string{"hunter2", "314159"} {
				if strings.Contains(err.Error(), pw) {
					t.Errorf("the error shows the password: %v", err)
				}
			}
		})
	}
}

func TestKafkaSecurityValidate(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Sources = []Source{{Name: "k", Type: SourceKafka, Kafka: &KafkaSource{
		Brokers: []string{"b:9092"}, Topics: []string{"t"}, Group: "g", Format: FormatTwice, Start: StartEarliest,
		TLS:  &KafkaTLS{CertFile: "c.pem"},
		SASL: &KafkaSASL{Mechanism: "OAUTHBEARER", Password: Secret{Value: "hunter2", Env: "P"}},
	}}}
	c.Watch.Findings = []Sink{{Type: SinkKafka, Brokers: []string{"b:9092"}, Topic: "f", SASL: &KafkaSASL{Mechanism: SASLPlain, Username: "u"}}}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate: no error")
	}
	for _, want := range []string{
		"sources[0].tls: give cert_file and key_file together",
		"sources[0].sasl.mechanism: OAUTHBEARER is not supported",
		"sources[0].sasl.username: empty",
		"sources[0].sasl: give only one of password, password_file and password_env",
		"watch.findings[0].sasl: missing password, password_file or password_env",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v\nwant a line with %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Validate shows the password: %v", err)
	}
}

func TestSecretResolve(t *testing.T) {
	t.Setenv("TWICE_TEST_KAFKA_PW", "from-env")
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		s       Secret
		want    string
		wantErr string
	}{
		{Secret{Value: "v"}, "v", ""},
		{Secret{File: file}, "from-file", ""},
		{Secret{Env: "TWICE_TEST_KAFKA_PW"}, "from-env", ""},
		{Secret{File: empty}, "", "secret file " + empty + " is empty"},
		{Secret{File: filepath.Join(dir, "missing")}, "", "no such file"},
		{Secret{Env: "TWICE_TEST_KAFKA_UNSET"}, "", "environment variable TWICE_TEST_KAFKA_UNSET is empty or not set"},
		{Secret{}, "", "no secret given"},
	} {
		got, err := tt.s.Resolve()
		if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%v.Resolve() = %q, %v; want %q, error with %q", tt.s, got, err, tt.want, tt.wantErr)
		}
	}
}
