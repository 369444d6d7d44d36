package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twicehq/twice/collectors/jobpath"
	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/sources"
)

// receiver resolves the token at Start and serves the proxy.
type receiver struct {
	cfg  Config
	now  func() time.Time
	logf func(string, ...any)

	mu   sync.Mutex
	http *push.HTTPReceiver
}

func (r *receiver) Start(ctx context.Context, s *push.Stream) error {
	token := ""
	if r.cfg.Token.IsSet() {
		var err error
		if token, err = r.cfg.Token.Resolve(); err != nil {
			return err
		}
	}
	up, err := url.Parse(r.cfg.Upstream)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	keyPath, err := jobpath.Parse(r.cfg.KeyPath)
	if err != nil {
		return fmt.Errorf("key_path: %w", err)
	}
	p := &proxy{s: s, cfg: r.cfg, token: token, now: r.now, logf: r.logf, keyPath: keyPath}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Ask for and pass on exactly what the client asked for: no
	// transparent gzip.
	tr.DisableCompression = true
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			// Rewrite drops these from the outbound request; the
			// request goes on as the client sent it.
			for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v, ok := pr.In.Header[h]; ok {
					pr.Out.Header[h] = v
				}
			}
		},
		Transport:      tr,
		ModifyResponse: p.delivered,
		ErrorHandler:   p.failed,
		ErrorLog:       nil,
	}
	h := push.NewHTTPReceiver(r.cfg.listen(), func(*push.Stream) http.Handler { return p })
	h.SetMaxRate(r.cfg.MaxRate, nil)
	if r.cfg.TLS != nil {
		c, err := r.cfg.TLS.Load()
		if err != nil {
			return err
		}
		h.SetTLS(c)
	}
	if err := h.Start(ctx, s); err != nil {
		return err
	}
	r.mu.Lock()
	r.http = h
	r.mu.Unlock()
	return nil
}

func (r *receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	h := r.http
	r.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.Shutdown(ctx)
}

func (r *receiver) addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.http == nil {
		return ""
	}
	return r.http.Addr()
}

// proxy forwards requests upstream and records each 2xx answer as an
// effect before the client gets it.
type proxy struct {
	s       *push.Stream
	cfg     Config
	token   string
	now     func() time.Time
	logf    func(string, ...any)
	keyPath jobpath.Path
	rp      *httputil.ReverseProxy
	lines   atomic.Int64
}

type deliveryKey struct{}

// delivery is what the proxy keeps of one request while it is forwarded.
type delivery struct {
	method         string
	key, jobID, id string
	body           *teeBody
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.token != "" {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(TokenHeader)), []byte(p.token)) != 1 {
			p.s.Count("unauthorized")
			http.Error(w, "twice: a valid "+TokenHeader+" header is required", http.StatusUnauthorized)
			return
		}
		r.Header.Del(TokenHeader)
	}
	if err := p.s.Check(1); err != nil {
		// Refused before anything is forwarded: the client retries.
		push.WriteSubmitError(p.s, w, err)
		return
	}
	d := &delivery{method: r.Method}
	if h := p.cfg.keyHeader(); h != "" {
		d.key = r.Header.Get(h)
	}
	if p.cfg.JobHeader != "" {
		d.jobID = r.Header.Get(p.cfg.JobHeader)
	}
	if p.cfg.IDHeader != "" {
		d.id = r.Header.Get(p.cfg.IDHeader)
	}
	keep := int64(0)
	if p.keyPath != nil {
		keep = p.cfg.maxKeyBody()
	}
	d.body = &teeBody{h: sha256.New(), keep: keep}
	if r.Body != nil && r.Body != http.NoBody {
		d.body.r = r.Body
		r.Body = d.body
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), deliveryKey{}, d)))
}

// delivered records a 2xx answer of the upstream as an effect, durably,
// before the answer goes to the client; other answers go as they are,
// unrecorded (a delivery the receiver refused did not happen).
func (p *proxy) delivered(resp *http.Response) error {
	d, _ := resp.Request.Context().Value(deliveryKey{}).(*delivery)
	if d == nil {
		return nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		p.s.Count("upstream_" + strconv.Itoa(resp.StatusCode/100) + "xx")
		return nil
	}
	ev, err := p.effect(d, resp).Event(p.s.Name(), p.lines.Add(1))
	if err != nil {
		p.s.Count("invalid")
		p.logf("source %s: %v", p.s.Name(), err)
		return nil
	}
	if err := p.s.Submit(resp.Request.Context(), []sources.Record{push.EventRecord(ev)}); err != nil {
		if resp.Request.Context().Err() != nil {
			// The client went away; the record is on its way.
			p.s.Count(push.ResultOf(err))
			return nil
		}
		// Delivered: twice never changes the answer (a retry by the
		// client would deliver again). The record may be lost.
		p.s.Count("delivered_unrecorded")
		p.logf("source %s: %s %s delivered but not recorded: %v", p.s.Name(), d.method, redactedURL(resp.Request.URL), err)
		return nil
	}
	p.s.Count("accepted")
	return nil
}

// failed answers a request the upstream did not answer: 502, nothing
// recorded.
func (p *proxy) failed(w http.ResponseWriter, r *http.Request, err error) {
	p.s.Count("upstream_unreachable")
	p.logf("source %s: %s %s: %v", p.s.Name(), r.Method, redactedURL(r.URL), err)
	w.WriteHeader(http.StatusBadGateway)
}

// redactedURL is a URL without its query (which may hold secrets) or
// user info.
func redactedURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.User, c.Fragment = "", false, nil, ""
	return c.String()
}

func (p *proxy) effect(d *delivery, resp *http.Response) push.Effect {
	digest, complete, body := d.body.sum()
	key := d.key
	if p.keyPath != nil && complete {
		var v any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&v) == nil {
			key, _ = jobpath.Scalar(p.keyPath.Lookup(v))
		}
	}
	// The delivery's identity: the same request sent again is the same
	// observation.
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", d.method, resp.Request.URL.String(), key)
	if d.id != "" {
		fmt.Fprintf(h, "id\x00%s", d.id)
	} else {
		fmt.Fprintf(h, "body\x00%s", digest)
	}
	id := "webhook:" + hex.EncodeToString(h.Sum(nil)[:16])
	attrs := map[string]any{"method": d.method, "url": redactedURL(resp.Request.URL), "status": resp.StatusCode}
	if key == "" {
		p.s.Count("no_key")
		attrs["key_missing"] = true
		key = id
	}
	if d.id != "" {
		attrs["delivery_id"] = d.id
	}
	return push.Effect{ID: id, Time: p.now(), Effect: p.cfg.effect(), EffectKey: key, JobID: d.jobID, Attrs: attrs}
}

// teeBody hashes a request body as the upstream reads it, and keeps its
// first keep bytes for key_path.
type teeBody struct {
	r    io.ReadCloser
	mu   sync.Mutex
	h    hash.Hash
	keep int64
	buf  []byte
	n    int64
	eof  bool
}

func (t *teeBody) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	t.mu.Lock()
	t.h.Write(b[:n])
	t.n += int64(n)
	if room := t.keep - int64(len(t.buf)); room > 0 {
		t.buf = append(t.buf, b[:min(int64(n), room)]...)
	}
	if err == io.EOF {
		t.eof = true
	}
	t.mu.Unlock()
	return n, err
}

func (t *teeBody) Close() error { return t.r.Close() }

// sum returns the body's digest, whether all of it was read (and kept,
// for key_path), and what was kept. A body the upstream did not read to
// its end (it answered first) is digested as far as it was read.
func (t *teeBody) sum() (digest string, complete bool, kept []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.r == nil { // no body
		return "empty", true, nil
	}
	return hex.EncodeToString(t.h.Sum(nil)), t.eof && t.n <= t.keep, t.buf
}
