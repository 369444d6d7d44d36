package otlp

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // exporters may compress with gzip
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/twicehq/twice/collectors/push"
)

// TracesPath is where OTLP/HTTP exporters POST traces.
const TracesPath = "/v1/traces"

// Content types of OTLP/HTTP.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// receiver serves OTLP/HTTP (and OTLP/gRPC when configured) for one
// Stream: it maps each export request and answers once its records are
// durable.
type receiver struct {
	cfg Config
	mp  *mapper
	log func(format string, args ...any)

	mu    sync.Mutex
	http  *push.HTTPReceiver
	grpc  *grpc.Server
	gaddr string
	spans map[string]int64 // by outcome
}

// Start resolves the token and listens.
func (r *receiver) Start(ctx context.Context, s *push.Stream) error {
	token := ""
	if r.cfg.Token.IsSet() {
		var err error
		if token, err = r.cfg.Token.Resolve(); err != nil {
			return err
		}
	}
	h := push.NewHTTPReceiver(r.cfg.listen(), func(s *push.Stream) http.Handler {
		return &handler{s: s, rcv: r, token: token, maxBody: r.cfg.maxBody()}
	})
	h.SetMaxRate(r.cfg.MaxRate, nil)
	var creds []grpc.ServerOption
	if r.cfg.TLS != nil {
		c, err := r.cfg.TLS.Load()
		if err != nil {
			return err
		}
		h.SetTLS(c)
		creds = append(creds, grpc.Creds(credentials.NewTLS(c)))
	}
	var gs *grpc.Server
	var gln net.Listener
	if r.cfg.GRPCListen != "" {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", r.cfg.GRPCListen)
		if err != nil {
			return fmt.Errorf("grpc listen: %w", err)
		}
		gln = ln
		gs = grpc.NewServer(append(creds, grpc.MaxRecvMsgSize(int(r.cfg.maxBody())))...)
		coltracepb.RegisterTraceServiceServer(gs, &traceService{s: s, rcv: r, token: token})
	}
	if err := h.Start(ctx, s); err != nil {
		if gln != nil {
			gln.Close()
		}
		return err
	}
	r.mu.Lock()
	r.http, r.grpc = h, gs
	if gln != nil {
		r.gaddr = gln.Addr().String()
	}
	r.mu.Unlock()
	if gs != nil {
		go func() {
			if err := gs.Serve(gln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.log("source %s: OTLP/gRPC: serve: %v", s.Name(), err)
			}
		}()
		r.log("source %s: OTLP/gRPC on %s", s.Name(), gln.Addr())
	}
	return nil
}

// Shutdown stops both servers, waiting for the requests being served
// within ctx.
func (r *receiver) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	h, gs := r.http, r.grpc
	r.mu.Unlock()
	if gs != nil {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
		}
	}
	if h != nil {
		return h.Shutdown(ctx)
	}
	return nil
}

// export maps req, submits its records and returns the answer once they
// are durable.
func (r *receiver) export(ctx context.Context, s *push.Stream, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	m := r.mp.Map(req)
	r.mu.Lock()
	for k, n := range m.Spans {
		r.spans[k] += int64(n)
	}
	r.mu.Unlock()
	if err := s.Submit(ctx, m.Records); err != nil {
		return nil, err
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if m.Rejected > 0 {
		msg := m.FirstError
		if m.Rejected > 1 {
			msg += fmt.Sprintf(" (and %d more)", m.Rejected-1)
		}
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: m.Rejected, ErrorMessage: msg}
		s.Count("partly_rejected")
	} else {
		s.Count("accepted")
	}
	return resp, nil
}

// spanCounts returns the spans seen by outcome.
func (r *receiver) spanCounts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(Outcomes))
	for _, o := range Outcomes {
		out[o] = r.spans[o]
	}
	return out
}

func (r *receiver) httpAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.http == nil {
		return ""
	}
	return r.http.Addr()
}

func (r *receiver) grpcAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gaddr
}

// handler serves POST /v1/traces.
type handler struct {
	s       *push.Stream
	rcv     *receiver
	token   string
	maxBody int64
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != contentJSON {
		ct = contentProtobuf // the answer's encoding; errors too
	}
	fail := func(result string, code int, msg string) {
		h.s.Count(result)
		writeStatus(w, ct, code, msg)
	}
	switch {
	case r.URL.Path != TracesPath:
		fail("not_found", http.StatusNotFound, "POST traces to "+TracesPath+" (twice takes traces only)")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		fail("bad_method", http.StatusMethodNotAllowed, "POST traces to "+TracesPath)
		return
	case !push.BearerOK(r, h.token):
		w.Header().Set("WWW-Authenticate", `Bearer realm="twice"`)
		fail("unauthorized", http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer …)")
		return
	}
	if got, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); got != contentJSON && got != contentProtobuf {
		fail("unsupported", http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/x-protobuf or application/json", r.Header.Get("Content-Type")))
		return
	}
	body, code, err := readBody(w, r, h.maxBody)
	if err != nil {
		result := "bad_body"
		if code == http.StatusRequestEntityTooLarge {
			result = "too_large"
		} else if code == http.StatusUnsupportedMediaType {
			result = "unsupported"
		}
		fail(result, code, err.Error())
		return
	}
	decode := DecodeProtobuf
	if ct == contentJSON {
		decode = DecodeJSON
	}
	req, err := decode(body)
	if err != nil {
		fail("invalid", http.StatusBadRequest, err.Error())
		return
	}
	resp, err := h.rcv.export(r.Context(), h.s, req)
	if err != nil {
		h.s.Count(push.ResultOf(err))
		code := push.HTTPStatus(err)
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		msg := err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			msg = "not recorded in time; retry"
		}
		writeStatus(w, ct, code, msg)
		return
	}
	writeMessage(w, ct, http.StatusOK, resp)
}

// readBody reads the body, gunzipped when Content-Encoding says gzip,
// up to max bytes after decompression.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, int, error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q: send gzip or none", enc)
	}
	body, err := io.ReadAll(io.LimitReader(src, max+1))
	var mb *http.MaxBytesError
	if errors.As(err, &mb) || int64(len(body)) > max {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than max_body_bytes (%d); export smaller batches", max)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	return body, 0, nil
}

// writeMessage answers with m in the request's encoding.
func writeMessage(w http.ResponseWriter, ct string, code int, m proto.Message) {
	var b []byte
	var err error
	if ct == contentJSON {
		b, err = protojson.Marshal(m)
	} else {
		b, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeStatus answers an error with a google.rpc.Status, as OTLP/HTTP
// asks.
func writeStatus(w http.ResponseWriter, ct string, code int, msg string) {
	writeMessage(w, ct, code, &status.Status{Code: int32(grpcCode(code)), Message: msg})
}

// grpcCode is the gRPC code of an HTTP error status.
func grpcCode(code int) codes.Code {
	switch code {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return codes.Unimplemented
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	}
	return codes.Unavailable
}

// traceService is the OTLP/gRPC TraceService.
type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	s     *push.Stream
	rcv   *receiver
	token string
}

// Export answers once the request's records are durable: Unavailable
// (retried by exporters) when twice is full or shutting down,
// ResourceExhausted (not retried) for a request larger than max_pending.
func (t *traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if t.token != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		r := &http.Request{Header: http.Header{}}
		for _, v := range md.Get("authorization") {
			r.Header.Add("Authorization", v)
		}
		if !push.BearerOK(r, t.token) {
			t.s.Count("unauthorized")
			return nil, grpcstatus.Error(codes.Unauthenticated, "a valid bearer token is required (authorization: Bearer …)")
		}
	}
	resp, err := t.rcv.export(ctx, t.s, req)
	if err != nil {
		t.s.Count(push.ResultOf(err))
		switch {
		case errors.Is(err, push.ErrTooLarge):
			return nil, grpcstatus.Error(codes.ResourceExhausted, err.Error())
		case errors.Is(err, context.Canceled):
			return nil, grpcstatus.Error(codes.Canceled, "not recorded in time; retry")
		case errors.Is(err, context.DeadlineExceeded):
			return nil, grpcstatus.Error(codes.DeadlineExceeded, "not recorded in time; retry")
		}
		return nil, grpcstatus.Error(codes.Unavailable, err.Error())
	}
	return resp, nil
}
