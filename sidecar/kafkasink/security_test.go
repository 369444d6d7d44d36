package kafkasink

import (
	"context"
	"strings"
	"testing"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/kafkasec"
	"github.com/twicehq/twice/internal/servicetest"
)

// TestSinkOverSASL publishes over SASL_SSL with SCRAM-SHA-512 and a CA:
// every revision is in the topic once (read back over PLAINTEXT), and a
// new sink, over the same listener, reads back what the first published
// (the read-back after a crash uses the secured connection too).
func TestSinkOverSASL(t *testing.T) {
	brokers := servicetest.KafkaBrokers(t)
	sec := servicetest.KafkaSecurity(t)
	topic := servicetest.KafkaTopic(t, brokers, 2)
	ctx := context.Background()
	load := func(password string) *kafkasec.Security {
		s, err := kafkasec.Load(&config.KafkaTLS{CAFile: sec.CAFile},
			&config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: sec.ScramUser, Password: config.Secret{Value: password}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := NewWith(sec.SASLSSLBrokers, topic, Options{Security: load(sec.ScramPassword)})
	if _, err := s.Start(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, revs(1, 30)); err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got := topicSeqs(t, brokers, topic)
	for seq := uint64(1); seq <= 30; seq++ {
		if got[seq] != 1 {
			t.Errorf("seq %d is in the topic %d times, want once", seq, got[seq])
		}
	}

	s2 := NewWith(sec.SASLSSLBrokers, topic, Options{Security: load(sec.ScramPassword)})
	held, err := s2.Start(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Shutdown(ctx)
	if len(held) != 20 || !held[11] || !held[30] {
		t.Errorf("read back after seq 10: %d revisions %v, want 11..30", len(held), held)
	}

	// A wrong password: Start fails (the watch retries it), saying why,
	// naming the topic, never showing the password.
	const wrong = "not-the-password-42"
	bad := NewWith(sec.SASLSSLBrokers, topic, Options{Security: load(wrong)})
	_, err = bad.Start(ctx, 0)
	if err == nil {
		t.Fatal("Start with a wrong password succeeded")
	}
	want := `kafka topic ` + topic + `: reading back: SASL SCRAM-SHA-512 authentication as "` + sec.ScramUser + `" failed`
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), wrong) {
		t.Errorf("Start with a wrong password: %v\nwant it to start with %q and not show the password", err, want)
	}
}
