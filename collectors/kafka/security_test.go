package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkaprod"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/sources"
)

// secureSource loads a twice.yaml with one kafka source reading topic
// through brokers with the given tls and sasl blocks (YAML, "" for
// none), as a user writes them; files (name → content) are written next
// to it first, for password_file and relative paths.
func secureSource(t *testing.T, brokers []string, topic, security string, files map[string]string) config.Source {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	yaml := fmt.Sprintf("sources:\n  - name: secured\n    type: kafka\n    brokers: [%s]\n    topics: [%s]\n    group: %s\n%s",
		strings.Join(brokers, ", "), topic, kafkaGroup(t), security)
	path := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	return cfg.Sources[0]
}

// secureEvents are n job events, one per message.
func secureEvents(n int) []kafkaprod.Message {
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	out := make([]kafkaprod.Message, n)
	for i := range out {
		out[i] = kafkaprod.Message{Value: fmt.Appendf(nil, `{"id":"s-%d","ts":%q,"kind":"job.started","job_id":"j-%d","attempt":1}`,
			i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), i)}
	}
	return out
}

// auditAll reads src as `twice audit SOURCE` does, to the end, and
// returns the events' ids.
func auditAll(ctx context.Context, src config.Source) ([]string, error) {
	cols, err := Factory{}.NewCollectors(ctx, src, sources.CollectOptions{})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range cols {
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
		for {
			b, err := c.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			for _, e := range b.Events {
				ids = append(ids, e.ID)
			}
		}
		if err := c.Shutdown(ctx); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// watchAll reads src as `twice watch` does until n records came.
func watchAll(t *testing.T, ctx context.Context, src config.Source, n int) {
	t.Helper()
	st, err := Factory{}.NewStream(src, sources.StreamOptions{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Stream)
	if err := s.c.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	defer s.c.Shutdown(context.Background())
	got := 0
	for got < n {
		recs, err := s.c.Poll(ctx, time.Second)
		if err != nil {
			t.Fatalf("after %d of %d records: %v (health: %v)", got, n, err, s.c.Health())
		}
		got += len(recs)
	}
	if got != n {
		t.Fatalf("watch read %d records, want %d", got, n)
	}
	lag, err := s.c.Lag(ctx)
	if err != nil {
		t.Fatalf("Lag over the secured listener: %v", err)
	}
	for tp, l := range lag {
		if l != 0 {
			t.Errorf("lag of %s = %d after reading everything", tp, l)
		}
	}
}

// TestSecuredListeners reads one topic through each secured listener of
// the test broker, configured with the keys of spec §3.1, both as
// `twice audit` reads a source and as `twice watch` does.
func TestSecuredListeners(t *testing.T) {
	brokers := kafkaBrokers(t)
	sec := servicetest.KafkaSecurity(t)
	topic := kafkaTopic(t, brokers, 2)
	msgs := secureEvents(20)
	produce(t, brokers, topic, msgs)

	tests := []struct {
		name     string
		brokers  []string
		security string
		files    map[string]string
	}{
		{"tls with a ca", sec.TLSBrokers, fmt.Sprintf("    tls: {ca_file: %s}\n", sec.CAFile), nil},
		{"mtls", sec.MTLSBrokers, fmt.Sprintf("    tls: {ca_file: %s, cert_file: %s, key_file: %s}\n", sec.CAFile, sec.ClientCert, sec.ClientKey), nil},
		{"sasl_ssl scram-sha-512 password_file", sec.SASLSSLBrokers,
			fmt.Sprintf("    tls: {ca_file: %s}\n    sasl: {mechanism: SCRAM-SHA-512, username: %s, password_file: kafka-password}\n", sec.CAFile, sec.ScramUser),
			map[string]string{"kafka-password": sec.ScramPassword + "\n"}},
		{"sasl_ssl scram-sha-256", sec.SASLSSLBrokers,
			fmt.Sprintf("    tls: {ca_file: %s}\n    sasl: {mechanism: SCRAM-SHA-256, username: %s, password: %q}\n", sec.CAFile, sec.ScramUser, sec.ScramPassword), nil},
		{"sasl_ssl plain", sec.SASLSSLBrokers,
			fmt.Sprintf("    tls: {ca_file: %s}\n    sasl: {mechanism: PLAIN, username: %s, password: %q}\n", sec.CAFile, sec.PlainUser, sec.PlainPassword), nil},
		{"sasl_plaintext scram-sha-512", sec.SASLBrokers,
			fmt.Sprintf("    sasl: {mechanism: SCRAM-SHA-512, username: %s, password: %q}\n", sec.ScramUser, sec.ScramPassword), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			src := secureSource(t, tt.brokers, topic, tt.security, tt.files)
			ids, err := auditAll(ctx, src)
			if err != nil {
				t.Fatalf("audit: %v", err)
			}
			if len(ids) != len(msgs) {
				t.Fatalf("audit read %d events, want %d", len(ids), len(msgs))
			}
			watchAll(t, ctx, src, len(msgs))
		})
	}
}

// TestSecuredListenerRefusals: what the brokers refuse fails with an
// error that says why, names the source, and never shows the password.
func TestSecuredListenerRefusals(t *testing.T) {
	brokers := kafkaBrokers(t)
	sec := servicetest.KafkaSecurity(t)
	topic := kafkaTopic(t, brokers, 1)
	const wrong = "not-the-password-42"
	tests := []struct {
		name     string
		brokers  []string
		security string
		want     []string
	}{
		{"wrong scram password", sec.SASLSSLBrokers,
			fmt.Sprintf("    tls: {ca_file: %s}\n    sasl: {mechanism: SCRAM-SHA-512, username: %s, password: %s}\n", sec.CAFile, sec.ScramUser, wrong),
			[]string{"source secured", `SASL SCRAM-SHA-512 authentication as "` + sec.ScramUser + `" failed (wrong username or password?)`}},
		{"wrong plain password", sec.SASLBrokers,
			fmt.Sprintf("    sasl: {mechanism: PLAIN, username: %s, password: %s}\n", sec.PlainUser, wrong),
			[]string{"source secured", `SASL PLAIN authentication as "` + sec.PlainUser + `" failed`}},
		{"unknown ca", sec.TLSBrokers, "    tls: true\n",
			[]string{"source secured", "certificate signed by unknown authority"}},
		{"mtls without a client certificate", sec.MTLSBrokers, fmt.Sprintf("    tls: {ca_file: %s}\n", sec.CAFile),
			[]string{"source secured", "tls: "}},
		{"plaintext to a tls listener", sec.TLSBrokers, "", []string{"source secured", "expecting TLS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			src := secureSource(t, tt.brokers, topic, tt.security, nil)
			_, err := auditAll(ctx, src)
			if err == nil {
				t.Fatal("audit read the topic; want a refusal")
			}
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
				t.Fatalf("audit did not fail within 30s: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to hold %q", err, w)
				}
			}
			if strings.Contains(err.Error(), wrong) {
				t.Errorf("the error shows the password: %v", err)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
}

// TestSecurityFilesCheckedAtStart: a certificate or password that cannot
// be read stops NewStream and NewCollectors (a configuration error at
// the start of a watch), naming the source and the key, with no I/O to
// the brokers.
func TestSecurityFilesCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	src := config.Source{Name: "secured", Type: config.SourceKafka, Kafka: &config.KafkaSource{
		Brokers: []string{"127.0.0.1:1"}, Topics: []string{"t"}, Group: "g", Format: config.FormatTwice, Start: config.StartEarliest,
		TLS: &config.KafkaTLS{CAFile: filepath.Join(dir, "missing-ca.pem")},
	}}
	_, err := Factory{}.NewStream(src, sources.StreamOptions{Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), "source secured: tls.ca_file:") {
		t.Errorf("NewStream with a missing CA file: %v", err)
	}
	src.Kafka.TLS = nil
	src.Kafka.SASL = &config.KafkaSASL{Mechanism: config.SASLScramSHA256, Username: "u", Password: config.Secret{Env: "TWICE_TEST_UNSET_PASSWORD"}}
	_, err = Factory{}.NewCollectors(context.Background(), src, sources.CollectOptions{})
	if err == nil || !strings.Contains(err.Error(), "source secured: sasl: environment variable TWICE_TEST_UNSET_PASSWORD") {
		t.Errorf("NewCollectors with an unset password variable: %v", err)
	}
}
