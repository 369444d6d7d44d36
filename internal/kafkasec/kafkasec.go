// Package kafkasec turns the `tls` and `sasl` of a kafka source or
// findings sink (config.KafkaTLS, config.KafkaSASL) into what kafka-go
// connects with: a Dialer for connections to one broker (partition
// readers) and a Transport for the Client and the Writer. One
// implementation for the kafka collector and the kafka sink.
//
// Load reads the certificate files once; the password is read from its
// file or environment variable at every new connection, so a rotated
// secret (a Kubernetes secret volume) is used without a restart. No error
// of this package holds the password.
package kafkasec

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/twicehq/twice/config"
)

// ClientID is the client id twice's connections give the brokers.
const ClientID = "twice"

// Security is the loaded TLS and SASL of one source or sink. A nil
// *Security is a plaintext connection without authentication; its
// methods work on nil.
type Security struct {
	tls      *tls.Config
	mech     sasl.Mechanism
	username string

	mu        sync.Mutex
	transport *kafkago.Transport
}

// Load reads the CA, certificate and key files t names and checks that
// the password of s can be read. Both nil gives a nil Security (and no
// error). Errors name the key at fault.
func Load(t *config.KafkaTLS, s *config.KafkaSASL) (*Security, error) {
	if t == nil && s == nil {
		return nil, nil
	}
	sec := &Security{}
	if t != nil {
		c, err := tlsConfig(t)
		if err != nil {
			return nil, err
		}
		sec.tls = c
	}
	if s != nil {
		m, err := mechanism(s)
		if err != nil {
			return nil, err
		}
		sec.mech, sec.username = m, s.Username
	}
	return sec, nil
}

func tlsConfig(t *config.KafkaTLS) (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it, for tests
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		c.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func mechanism(s *config.KafkaSASL) (sasl.Mechanism, error) {
	var newMech func(user, pw string) (sasl.Mechanism, error)
	switch s.Mechanism {
	case config.SASLPlain:
		newMech = func(user, pw string) (sasl.Mechanism, error) {
			return plain.Mechanism{Username: user, Password: pw}, nil
		}
	case config.SASLScramSHA256, config.SASLScramSHA512:
		algo := scram.SHA256
		if s.Mechanism == config.SASLScramSHA512 {
			algo = scram.SHA512
		}
		newMech = func(user, pw string) (sasl.Mechanism, error) {
			m, err := scram.Mechanism(algo, user, pw)
			if err != nil {
				// xdg-go/scram's errors (SASLprep of the name or
				// password) never hold the password.
				return nil, fmt.Errorf("sasl: %w", err)
			}
			return m, nil
		}
	default:
		return nil, fmt.Errorf("sasl.mechanism: %q is not supported", s.Mechanism)
	}
	if _, err := s.Password.Resolve(); err != nil {
		return nil, fmt.Errorf("sasl: %w", err)
	}
	return &secretMechanism{name: s.Mechanism, user: s.Username, password: s.Password, newMech: newMech}, nil
}

// secretMechanism reads the password at each authentication and hands
// over to kafka-go's mechanism.
type secretMechanism struct {
	name     string
	user     string
	password config.Secret
	newMech  func(user, pw string) (sasl.Mechanism, error)
}

func (m *secretMechanism) Name() string { return m.name }

func (m *secretMechanism) Start(ctx context.Context) (sasl.StateMachine, []byte, error) {
	pw, err := m.password.Resolve()
	if err != nil {
		return nil, nil, fmt.Errorf("sasl: %w", err)
	}
	mech, err := m.newMech(m.user, pw)
	if err != nil {
		return nil, nil, err
	}
	return mech.Start(ctx)
}

// Dialer returns a dialer of connections to one broker, with TLS and
// SASL when s has them.
func (s *Security) Dialer(timeout time.Duration) *kafkago.Dialer {
	d := &kafkago.Dialer{Timeout: timeout, ClientID: ClientID}
	if s != nil {
		d.TLS, d.SASLMechanism = s.tls, s.mech
	}
	return d
}

// Transport returns the transport of Clients and Writers: nil (kafka-go's
// default transport) for a nil Security, else one transport of s's own,
// made on the first call, which pools its connections.
func (s *Security) Transport() kafkago.RoundTripper {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transport == nil {
		s.transport = &kafkago.Transport{
			DialTimeout: 10 * time.Second,
			ClientID:    ClientID,
			TLS:         s.tls,
			SASL:        s.mech,
		}
	}
	return s.transport
}

// Close closes the idle connections of the transport. Security stays
// usable.
func (s *Security) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
}

// Explain adds what an error of a secured connection most likely means:
// failed SASL authentication names the user and mechanism (never the
// password). Other errors are returned as they are.
func (s *Security) Explain(err error) error {
	if err == nil || s == nil || s.mech == nil {
		return err
	}
	if errors.Is(err, kafkago.SASLAuthenticationFailed) {
		return fmt.Errorf("SASL %s authentication as %q failed (wrong username or password?): %w", s.mech.Name(), s.username, err)
	}
	if errors.Is(err, kafkago.UnsupportedSASLMechanism) {
		return fmt.Errorf("the brokers do not enable SASL %s: %w", s.mech.Name(), err)
	}
	return err
}
