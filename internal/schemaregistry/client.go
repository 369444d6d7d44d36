// Package schemaregistry reads values in the Confluent Schema Registry
// wire format: a zero magic byte, a 4-byte big-endian schema id, then the
// payload (for Protobuf, a list of message indexes before it). A Client
// fetches each schema by id from a Confluent-compatible registry (GET
// /schemas/ids/{id}, its references by GET
// /subjects/{subject}/versions/{version}), keeps it for the life of the
// process, and decodes values to JSON: Avro with hamba/avro, Protobuf by
// compiling the registry's .proto text with bufbuild/protocompile and
// printing the message with protojson, JSON Schema values as they are.
//
// It is the only code of twice that speaks to a schema registry, and the
// kafka source's only way to read Avro or Protobuf.
//
// Errors tell what to do with a message: one wrapping ErrUnavailable (the
// registry cannot be reached, answers 5xx, or refuses the login) means
// try the message again later; a *NotFoundError (the registry answered
// 404 for the id) and any other error mean the message cannot be decoded.
package schemaregistry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/backoff"
)

// ErrUnavailable is wrapped by errors of a registry that could not
// answer: the message is to be tried again, not given up on.
var ErrUnavailable = errors.New("schema registry unavailable")

// NotFoundError is the error of a schema id the registry does not know
// (it answered 404).
type NotFoundError struct {
	// ID is the schema id; Subject and Version are set instead for a
	// reference that is not found.
	ID      int
	Subject string
	Version int
}

func (e *NotFoundError) Error() string {
	if e.Subject != "" {
		return fmt.Sprintf("schema reference %s version %d is not in the schema registry (404)", e.Subject, e.Version)
	}
	return fmt.Sprintf("schema id %d is not in the schema registry (404)", e.ID)
}

// Options configure a Client; zero values mean the defaults.
type Options struct {
	// URL is the registry's base URL, http:// or https://, with any path
	// prefix (Apicurio's /apis/ccompat/v7, say).
	URL string
	// Username and Password, when Username is set, are sent as HTTP basic
	// auth. The password is resolved at each request (a file that is
	// rotated is read again) and never logged.
	Username string
	Password config.Secret
	// TLS is the client's TLS configuration for https; nil for the
	// system's roots.
	TLS *tls.Config
	// Timeout bounds one request; default 10s.
	Timeout time.Duration
	// Attempts is how many times a request that could not be answered is
	// made before the call fails with ErrUnavailable; default 3.
	Attempts int
	// MinBackoff is the first delay between attempts; default 200ms.
	MinBackoff time.Duration
	// NotFoundTTL is how long a 404 for an id is remembered, so that a
	// topic full of values with an unknown id does not send the registry
	// one request per message; default 30s.
	NotFoundTTL time.Duration
	// Now is the clock of NotFoundTTL; default time.Now.
	Now func() time.Time
}

// Client fetches schemas from a registry and decodes values. It is safe
// for concurrent use; the schemas it fetched are kept per id.
type Client struct {
	opts Options
	base string
	http *http.Client

	mu       sync.Mutex
	schemas  map[int]*schema      // by id
	refs     map[string]*document // by subject "\x00" version
	notFound map[int]time.Time    // ids the registry answered 404 for, until when
}

// New returns a Client of opts. It does no I/O.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("schema registry URL %q: want http://host:port or https://host:port", redactURL(opts.URL))
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 200 * time.Millisecond
	}
	if opts.NotFoundTTL <= 0 {
		opts.NotFoundTTL = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = opts.TLS
	return &Client{
		opts:     opts,
		base:     strings.TrimSuffix(opts.URL, "/"),
		http:     &http.Client{Transport: tr, Timeout: opts.Timeout},
		schemas:  map[int]*schema{},
		refs:     map[string]*document{},
		notFound: map[int]time.Time{},
	}, nil
}

// Load returns the Client of a kafka source's schema_registry, reading
// its CA and client certificate files now, so that a wrong path stops the
// source at its start.
func Load(r *config.KafkaSchemaRegistry) (*Client, error) {
	if r == nil {
		return nil, errors.New("no schema registry")
	}
	opts := Options{URL: r.URL, Username: r.Username, Password: r.Password}
	if r.CAFile != "" || r.CertFile != "" || r.InsecureSkipVerify {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.InsecureSkipVerify} //nolint:gosec // tests only, as documented
		if r.CAFile != "" {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, fmt.Errorf("schema registry: reading ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("schema registry: ca_file %s holds no PEM certificate", r.CAFile)
			}
			cfg.RootCAs = pool
		}
		if r.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("schema registry: loading cert_file and key_file: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		}
		opts.TLS = cfg
	}
	return New(opts)
}

// redactURL drops any user:password from a URL before it is printed.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 {
			return "…@" + s[i+1:]
		}
		return s
	}
	u.User = nil
	return u.String()
}

// document is a schema as the registry returns it.
type document struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType"`
	References []reference `json:"references"`
}

// reference is one schema reference: name is the import name (a .proto
// file name, an Avro full name, a JSON Schema $ref).
type reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// schemaByID returns the compiled schema of id, fetching it (and its
// references) when it is not yet known.
func (c *Client) schemaByID(ctx context.Context, id int) (*schema, error) {
	now := c.opts.Now()
	c.mu.Lock()
	s := c.schemas[id]
	until, missing := c.notFound[id]
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if missing && now.Before(until) {
		return nil, &NotFoundError{ID: id}
	}
	var doc document
	if err := c.get(ctx, "/schemas/ids/"+strconv.Itoa(id), &doc); err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			nf.ID = id
			c.mu.Lock()
			c.notFound[id] = now.Add(c.opts.NotFoundTTL)
			c.mu.Unlock()
		}
		return nil, err
	}
	refs, err := c.references(ctx, doc.References, map[string]bool{})
	if err != nil {
		return nil, fmt.Errorf("schema id %d: %w", id, err)
	}
	s = compile(id, &doc, refs)
	c.mu.Lock()
	c.schemas[id] = s
	c.mu.Unlock()
	return s, nil
}

// resolved is one referenced schema, with the name it is imported by.
type resolved struct {
	name string
	doc  *document
}

// references fetches refs and theirs, depth first: a schema comes after
// the schemas it references.
func (c *Client) references(ctx context.Context, refs []reference, seen map[string]bool) ([]resolved, error) {
	var out []resolved
	for _, r := range refs {
		key := r.Subject + "\x00" + strconv.Itoa(r.Version)
		if seen[key] {
			continue
		}
		seen[key] = true
		c.mu.Lock()
		doc := c.refs[key]
		c.mu.Unlock()
		if doc == nil {
			doc = &document{}
			path := "/subjects/" + url.PathEscape(r.Subject) + "/versions/" + strconv.Itoa(r.Version)
			if err := c.get(ctx, path, doc); err != nil {
				var nf *NotFoundError
				if errors.As(err, &nf) {
					nf.Subject, nf.Version = r.Subject, r.Version
				}
				return nil, err
			}
			c.mu.Lock()
			c.refs[key] = doc
			c.mu.Unlock()
		}
		sub, err := c.references(ctx, doc.References, seen)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
		out = append(out, resolved{name: r.Name, doc: doc})
	}
	return out, nil
}

// get fetches path into v, retrying with backoff what could not be
// answered. A 404 is a *NotFoundError; other failures wrap ErrUnavailable.
func (c *Client) get(ctx context.Context, path string, v any) error {
	b := backoff.New(c.opts.MinBackoff, 5*time.Second)
	var last error
	for attempt := 1; ; attempt++ {
		retry, err := c.getOnce(ctx, path, v)
		if err == nil || !retry {
			return err
		}
		last = err
		if attempt >= c.opts.Attempts {
			break
		}
		if b.Wait(ctx) != nil {
			break
		}
	}
	return fmt.Errorf("%w: GET %s: %v", ErrUnavailable, path, last)
}

// getOnce makes one request; retry says whether a failure may pass.
func (c *Client) getOnce(ctx context.Context, path string, v any) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	if c.opts.Username != "" {
		pw, err := c.opts.Password.Resolve()
		if err != nil {
			return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		req.SetBasicAuth(c.opts.Username, pw)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error names the URL, which holds no password: it is sent
		// as a header.
		return true, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return true, fmt.Errorf("reading the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return false, &NotFoundError{}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// A login the registry refuses does not pass by retrying now;
		// the message waits for it to be fixed.
		return false, fmt.Errorf("%w: GET %s: %s (check schema_registry's username and password)", ErrUnavailable, path, resp.Status)
	case resp.StatusCode/100 != 2:
		return true, fmt.Errorf("%s: %s", resp.Status, shorten(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return true, fmt.Errorf("answer is not the JSON of a schema: %v", err)
	}
	return false, nil
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
