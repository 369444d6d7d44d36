package kafkasec

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/twicehq/twice/config"
)

// writeCert writes a self-signed certificate and its key as PEM files in
// dir and returns their paths.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	ca, _ := writeCert(t, dir, "ca")
	cert, key := writeCert(t, dir, "client")
	_, otherKey := writeCert(t, dir, "other")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TWICE_TEST_KAFKASEC_PW", "")

	sec, err := Load(nil, nil)
	if sec != nil || err != nil || sec.Transport() != nil || sec.Dialer(time.Second).TLS != nil {
		t.Fatalf("Load(nil, nil) = %v, %v; want a nil Security that dials in plaintext", sec, err)
	}
	sec, err = Load(&config.KafkaTLS{CAFile: ca, CertFile: cert, KeyFile: key, ServerName: "kafka.internal"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := sec.Dialer(time.Second)
	if d.TLS == nil || d.TLS.RootCAs == nil || len(d.TLS.Certificates) != 1 || d.TLS.ServerName != "kafka.internal" || d.SASLMechanism != nil {
		t.Errorf("dialer TLS %+v, SASL %v", d.TLS, d.SASLMechanism)
	}
	tr, ok := sec.Transport().(*kafkago.Transport)
	if !ok || tr.TLS != d.TLS || sec.Transport() != kafkago.RoundTripper(tr) {
		t.Errorf("Transport = %#v, want one transport with the dialer's TLS", sec.Transport())
	}
	sec.Close()

	const pw = "hunter2-secret"
	for _, tt := range []struct {
		name string
		tls  *config.KafkaTLS
		sasl *config.KafkaSASL
		want string
	}{
		{"missing ca", &config.KafkaTLS{CAFile: filepath.Join(dir, "nope.pem")}, nil, "tls.ca_file: open " + filepath.Join(dir, "nope.pem")},
		{"ca not pem", &config.KafkaTLS{CAFile: notPEM}, nil, "tls.ca_file: " + notPEM + " holds no PEM certificate"},
		{"key of another cert", &config.KafkaTLS{CertFile: cert, KeyFile: otherKey}, nil, "tls.cert_file, tls.key_file: tls: private key does not match public key"},
		{"unset password variable", nil, &config.KafkaSASL{Mechanism: config.SASLPlain, Username: "u", Password: config.Secret{Env: "TWICE_TEST_KAFKASEC_PW"}},
			"sasl: environment variable TWICE_TEST_KAFKASEC_PW is empty or not set"},
		{"oauthbearer", nil, &config.KafkaSASL{Mechanism: "OAUTHBEARER", Username: "u", Password: config.Secret{Value: pw}}, `sasl.mechanism: "OAUTHBEARER" is not supported`},
	} {
		_, err := Load(tt.tls, tt.sasl)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Load = %v, want an error with %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error shows the password: %v", tt.name, err)
		}
	}
}

// TestPasswordReadAtEachLogin: the password of password_file is read at
// each new connection, so a rotated file is used without a restart.
func TestPasswordReadAtEachLogin(t *testing.T) {
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sec, err := Load(nil, &config.KafkaSASL{Mechanism: config.SASLPlain, Username: "app", Password: config.Secret{File: file}})
	if err != nil {
		t.Fatal(err)
	}
	mech := sec.Dialer(time.Second).SASLMechanism
	if mech.Name() != "PLAIN" {
		t.Fatalf("mechanism %q", mech.Name())
	}
	login := func() string {
		_, ir, err := mech.Start(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return string(ir) // PLAIN's initial response: \0user\0password
	}
	if got := login(); got != "\x00app\x00first" {
		t.Errorf("first login sends %q", got)
	}
	if err := os.WriteFile(file, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := login(); got != "\x00app\x00second" {
		t.Errorf("login after the rotation sends %q", got)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mech.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "sasl: reading the secret") {
		t.Errorf("login with the file gone: %v", err)
	}

	for _, m := range []string{config.SASLScramSHA256, config.SASLScramSHA512} {
		sec, err := Load(nil, &config.KafkaSASL{Mechanism: m, Username: "app", Password: config.Secret{Value: "pw"}})
		if err != nil {
			t.Fatal(err)
		}
		mech := sec.Dialer(time.Second).SASLMechanism
		if _, ir, err := mech.Start(context.Background()); mech.Name() != m || err != nil || !strings.HasPrefix(string(ir), "n,,n=app,r=") {
			t.Errorf("%s: name %q, first message %q, %v", m, mech.Name(), ir, err)
		}
	}
}

func TestExplain(t *testing.T) {
	sec, err := Load(nil, &config.KafkaSASL{Mechanism: config.SASLScramSHA512, Username: "twice", Password: config.Secret{Value: "hunter2"}})
	if err != nil {
		t.Fatal(err)
	}
	err = sec.Explain(fmt.Errorf("reading metadata: %w", kafkago.SASLAuthenticationFailed))
	want := `SASL SCRAM-SHA-512 authentication as "twice" failed (wrong username or password?): reading metadata: `
	if !strings.HasPrefix(err.Error(), want) || !errors.Is(err, kafkago.SASLAuthenticationFailed) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Explain = %v", err)
	}
	err = sec.Explain(fmt.Errorf("handshake: %w", kafkago.UnsupportedSASLMechanism))
	if !strings.HasPrefix(err.Error(), "the brokers do not enable SASL SCRAM-SHA-512: handshake: ") || !errors.Is(err, kafkago.UnsupportedSASLMechanism) {
		t.Errorf("Explain(unsupported mechanism) = %v", err)
	}
	other := errors.New("connection refused")
	if got := sec.Explain(other); got != other {
		t.Errorf("Explain(other) = %v", got)
	}
	var none *Security
	if got := none.Explain(kafkago.SASLAuthenticationFailed); got != kafkago.SASLAuthenticationFailed {
		t.Errorf("nil Security's Explain = %v", got)
	}
}
