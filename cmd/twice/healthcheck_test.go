package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// healthServer is a real HTTP server answering /healthz with status and
// counting the requests to that path.
func healthServer(t *testing.T, status int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.WriteHeader(status)
		if status != http.StatusOK {
			w.Write([]byte("not ready\nsource jobs: broker down\n"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestHealthcheckURL(t *testing.T) {
	ok, _ := healthServer(t, http.StatusOK)
	out, errOut, code := runCLI(t, "healthcheck", "--url", ok.URL+"/healthz")
	if code != exitOK {
		t.Fatalf("healthy server: exit %d, want 0\n%s", code, errOut)
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("stdout %q, want it to say ok", out)
	}

	bad, _ := healthServer(t, http.StatusServiceUnavailable)
	_, errOut, code = runCLI(t, "healthcheck", "--url", bad.URL+"/healthz")
	if code != 1 {
		t.Fatalf("503: exit %d, want 1", code)
	}
	if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 ||
		!strings.Contains(errOut, "503") || !strings.Contains(errOut, "broker down") {
		t.Errorf("503: stderr %q, want one line with the status and the body", errOut)
	}
}

// TestHealthcheckUnreachable: nothing listens on the address (a port
// just released), so the check fails with one line naming it.
func TestHealthcheckUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	url := "http://" + addr + "/healthz"
	_, errOut, code := runCLI(t, "healthcheck", "--url", url)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, url) {
		t.Errorf("stderr %q, want one line naming %s", errOut, url)
	}
}

// TestHealthcheckConfigListen: without --url, the check goes to /healthz
// on the watch.listen of --config, a wildcard host being 127.0.0.1.
func TestHealthcheckConfigListen(t *testing.T) {
	srv, hits := healthServer(t, http.StatusOK)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	cfg := filepath.Join(t.TempDir(), "twice.yaml")
	writeHealthConfig(t, cfg, `":`+port+`"`)
	if _, errOut, code := runCLI(t, "healthcheck", "--config", cfg); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, errOut)
	}
	if hits.Load() != 1 {
		t.Errorf("/healthz got %d requests, want 1", hits.Load())
	}

	writeHealthConfig(t, cfg, `""`)
	_, errOut, code := runCLI(t, "healthcheck", "-c", cfg)
	if code != 1 || !strings.Contains(errOut, "watch.listen") {
		t.Errorf("listen off: exit %d, stderr %q; want 1 saying watch.listen is empty", code, errOut)
	}

	_, errOut, code = runCLI(t, "healthcheck", "-c", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("missing config: exit %d, stderr %q; want 1 naming the file", code, errOut)
	}
}

// TestHealthcheckDefaultConfig: the default ./twice.yaml is read when it
// exists in the working directory.
func TestHealthcheckDefaultConfig(t *testing.T) {
	srv, hits := healthServer(t, http.StatusOK)
	dir := t.TempDir()
	writeHealthConfig(t, filepath.Join(dir, "twice.yaml"), `"`+srv.Listener.Addr().String()+`"`)
	t.Chdir(dir)
	if _, errOut, code := runCLI(t, "healthcheck"); code != exitOK {
		t.Fatalf("exit %d, want 0\n%s", code, errOut)
	}
	if hits.Load() != 1 {
		t.Errorf("/healthz got %d requests, want 1", hits.Load())
	}
}

// TestHealthcheckTimeout: a server that never answers fails the check
// after the timeout, not later.
func TestHealthcheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	start := time.Now()
	_, errOut, code := runCLI(t, "healthcheck", "--url", srv.URL+"/healthz")
	if code != 1 || !strings.Contains(errOut, "no answer within 3s") {
		t.Errorf("exit %d, stderr %q; want 1 saying no answer within 3s", code, errOut)
	}
	if d := time.Since(start); d > 2*healthcheckTimeout {
		t.Errorf("took %s, want about %s", d, healthcheckTimeout)
	}
}

func writeHealthConfig(t *testing.T, path, listen string) {
	t.Helper()
	cfg := "sources:\n  - {name: jobs, type: file, paths: [jobs.jsonl]}\nwatch:\n  listen: " + listen + "\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}
