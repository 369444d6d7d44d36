package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAPIAuthBearer serves a handler through apiAuth on a real HTTP
// server: with a token, /findings and /metrics need it, the probes do not.
func TestAPIAuthBearer(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) })
	srv := httptest.NewServer(apiAuth(inner, "s3cret"))
	t.Cleanup(srv.Close)
	get := func(path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		path, auth string
		want       int
	}{
		{"/findings", "", http.StatusUnauthorized},
		{"/findings", "Bearer wrong", http.StatusUnauthorized},
		{"/findings", "Bearer s3cret", http.StatusOK},
		{"/findings", "s3cret", http.StatusUnauthorized},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Bearer s3cret", http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusOK},
	} {
		if got := get(tc.path, tc.auth); got != tc.want {
			t.Errorf("GET %s with %q: %d, want %d", tc.path, tc.auth, got, tc.want)
		}
	}
}

// TestAPIAuthOff: without a token the API is open, as before.
func TestAPIAuthOff(t *testing.T) {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	rec := httptest.NewRecorder()
	apiAuth(inner, "").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/findings", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "ok") {
		t.Errorf("no token: %d %q, want 200", rec.Code, rec.Body.String())
	}
}

// TestWatchAPIToken runs the real `twice watch` with $TWICE_API_TOKEN set:
// its /findings wants the token, its probes and `twice healthcheck` do not.
func TestWatchAPIToken(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	if err := os.WriteFile(filepath.Join(dir, "jobs.jsonl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "sources:\n  - {name: jobs, type: file, paths: [jobs.jsonl]}\nwatch:\n  state_dir: state\n  listen: 127.0.0.1:0\n  findings: []\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &syncBuffer{}
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"watch", "-c", cfg}, env{
			stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr,
			isTerminal: func(io.Writer) bool { return false },
			getenv: func(k string) string {
				if k == apiTokenEnv {
					return "s3cret"
				}
				return ""
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-code:
		case <-time.After(30 * time.Second):
			t.Errorf("twice watch did not stop within 30s")
		}
	})
	var addr string
	deadline := time.Now().Add(30 * time.Second)
	for addr == "" {
		if m := apiLine.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case c := <-code:
			t.Fatalf("twice watch exited %d:\n%s", c, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no HTTP API within 30s:\n%s", stderr.String())
		}
	}
	status := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("/findings", ""); s != http.StatusUnauthorized {
		t.Errorf("GET /findings without the token: %d, want 401", s)
	}
	if s := status("/findings", "Bearer s3cret"); s != http.StatusOK {
		t.Errorf("GET /findings with the token: %d, want 200", s)
	}
	if s := status("/healthz", ""); s != http.StatusOK {
		t.Errorf("GET /healthz without the token: %d, want 200", s)
	}
	if _, errOut, c := runCLI(t, "healthcheck", "--url", "http://"+addr+"/healthz"); c != exitOK {
		t.Errorf("twice healthcheck: exit %d\n%s", c, errOut)
	}
}
