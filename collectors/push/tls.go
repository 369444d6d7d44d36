package push

import (
	"crypto/tls"
	"fmt"

	"github.com/twicehq/twice/config"
)

// TLSFiles are a server certificate and its key, PEM files named in a
// source's config as `tls: {cert_file: …, key_file: …}`: the push
// source then serves HTTPS (or offers STARTTLS, for SMTP).
type TLSFiles struct {
	CertFile, KeyFile string
}

// DecodeTLS reads the mapping under key (cert_file and key_file, both
// required; paths relative to twice.yaml's folder); nil when the key is
// absent. The caller lists key in m.Known.
func DecodeTLS(m *config.SourceMapping, key string) *TLSFiles {
	if !m.Has(key) {
		return nil
	}
	sub, ok := m.Mapping(key)
	if !ok {
		return nil
	}
	sub.Known("cert_file", "key_file")
	t := &TLSFiles{}
	if sub.Require("cert_file", "key_file") {
		sub.File("cert_file", &t.CertFile)
		sub.File("key_file", &t.KeyFile)
	}
	return t
}

// Load reads the certificate and key (at Start, never in a constructor).
func (t *TLSFiles) Load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
