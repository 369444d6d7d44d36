package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/twicehq/twice/collectors/jsonl"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// Path is where events are POSTed.
const Path = "/v1/events"

// maxListedErrors caps the line errors a response lists; the count is
// always complete.
const maxListedErrors = 100

// receiver resolves the token at Start and serves the handler.
type receiver struct {
	cfg Config

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
	max := int64(r.cfg.MaxBodyBytes)
	if max == 0 {
		max = DefaultMaxBodyBytes
	}
	h := push.NewHTTPReceiver(r.cfg.listen(), func(s *push.Stream) http.Handler {
		return &handler{s: s, token: token, maxBody: max}
	})
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

// handler serves POST /v1/events.
type handler struct {
	s       *push.Stream
	token   string
	maxBody int64
}

// Response is the JSON body of every answer to POST /v1/events.
type Response struct {
	// Accepted counts the events durable in twice (repeats of an id
	// included: they are dropped when audited); Rejected the lines that
	// are not events.
	Accepted int `json:"accepted"`
	Rejected int `json:"rejected"`
	// Errors lists the rejected lines (at most 100), by line number in
	// the body, from 1.
	Errors []LineError `json:"errors,omitempty"`
	// Error says why the request as a whole was refused.
	Error string `json:"error,omitempty"`
}

// LineError is a line of the body that is not an event.
type LineError struct {
	Line  int64  `json:"line"`
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, r Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != Path {
		h.s.Count("not_found")
		writeJSON(w, http.StatusNotFound, Response{Error: "POST events to " + Path})
		return
	}
	if r.Method != http.MethodPost {
		h.s.Count("bad_method")
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, Response{Error: "POST events to " + Path})
		return
	}
	if !push.BearerOK(r, h.token) {
		h.s.Count("unauthorized")
		w.Header().Set("WWW-Authenticate", `Bearer realm="twice"`)
		writeJSON(w, http.StatusUnauthorized, Response{Error: "a valid bearer token is required (Authorization: Bearer …)"})
		return
	}
	if r.ContentLength > h.maxBody {
		h.s.Count("too_large")
		writeJSON(w, http.StatusRequestEntityTooLarge, Response{Error: tooLarge(h.maxBody)})
		return
	}
	body, err := h.readBody(w, r)
	if err != nil {
		var mb *http.MaxBytesError
		if errors.Is(err, errUnsupportedEncoding) {
			h.s.Count("bad_encoding")
			writeJSON(w, http.StatusUnsupportedMediaType, Response{Error: err.Error()})
			return
		}
		if errors.As(err, &mb) || errors.Is(err, errTooLarge) {
			h.s.Count("too_large")
			writeJSON(w, http.StatusRequestEntityTooLarge, Response{Error: tooLarge(h.maxBody)})
			return
		}
		h.s.Count("bad_body")
		writeJSON(w, http.StatusBadRequest, Response{Error: "reading the body: " + err.Error()})
		return
	}
	recs, resp := h.parse(body)
	if len(recs) == 0 {
		h.s.Count("invalid")
		resp.Error = "empty body: send NDJSON, one event per line"
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	if err := h.s.Submit(r.Context(), recs); err != nil {
		h.s.Count(push.ResultOf(err))
		code := push.HTTPStatus(err)
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeJSON(w, code, Response{Error: err.Error()})
		return
	}
	if resp.Rejected > 0 {
		// The events are durable (and the bad lines counted as
		// malformed); the bad lines must be fixed by the sender, so the
		// answer is a client error that lists them.
		h.s.Count("partly_invalid")
		writeJSON(w, http.StatusUnprocessableEntity, resp)
		return
	}
	h.s.Count("accepted")
	writeJSON(w, http.StatusOK, resp)
}

var (
	errUnsupportedEncoding = errors.New("Content-Encoding must be gzip or none")
	errTooLarge            = errors.New("body too large")
)

// readBody reads the body, at most maxBody bytes as sent and, for a
// gzip body, at most maxBody bytes once decompressed.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, h.maxBody)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return io.ReadAll(body)
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(zr, h.maxBody+1))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if int64(len(b)) > h.maxBody {
			return nil, errTooLarge
		}
		return b, nil
	default:
		return nil, errUnsupportedEncoding
	}
}

func tooLarge(max int64) string {
	return "body larger than max_body_bytes (" + itoa(max) + "); send fewer events per request"
}

// parse reads the NDJSON body: the records to submit (events, and the
// rejected lines as malformed records, so they are counted in
// twice_malformed_total too) and the answer's counts.
func (h *handler) parse(body []byte) ([]sources.Record, Response) {
	var resp Response
	var recs []sources.Record
	name := h.s.Name()
	var lineNo int64
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		lineNo++
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := jsonl.ParseLine(line, name, lineNo)
		if err != nil {
			resp.Rejected++
			if len(resp.Errors) < maxListedErrors {
				resp.Errors = append(resp.Errors, LineError{Line: lineNo, Error: err.Error()})
			}
			recs = append(recs, sources.Record{Malformed: &twicetype.Malformed{Source: name, Line: lineNo, Reason: err.Error()}})
			continue
		}
		resp.Accepted++
		recs = append(recs, push.EventRecord(ev))
	}
	return recs, resp
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
