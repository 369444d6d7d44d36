package push

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Past max_rate a request is answered 429 with Retry-After before the
// handler sees it, counted as rate_limited; tokens come back with time.
func TestRateLimitedAnswers429AndRefills(t *testing.T) {
	s := NewStream("in", &fakeReceiver{}, Options{})
	clock := time.Unix(1_700_000_000, 0)
	served := 0
	h := RateLimited(s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served++ }), 2, func() time.Time { return clock })
	do := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/events", nil))
		return w
	}
	for i := 0; i < 2; i++ {
		if w := do(); w.Code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i+1, w.Code)
		}
	}
	w := do()
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("third request in the same instant: %d, Retry-After %q; want 429, 1", w.Code, w.Header().Get("Retry-After"))
	}
	if served != 2 {
		t.Errorf("handler served %d requests, want 2: a refused request must not reach it", served)
	}
	if got := s.Stats().Requests[ResultRateLimited]; got != 1 {
		t.Errorf("rate_limited count %d, want 1", got)
	}
	clock = clock.Add(500 * time.Millisecond) // one token at 2/s
	if w := do(); w.Code != http.StatusOK {
		t.Errorf("after half a second: %d, want 200", w.Code)
	}
	if w := do(); w.Code != http.StatusTooManyRequests {
		t.Errorf("second request after half a second: %d, want 429", w.Code)
	}
	clock = clock.Add(time.Hour) // the bucket holds one second's worth, no more
	for i := 0; i < 3; i++ {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if w := do(); w.Code != want {
			t.Errorf("after an hour idle, request %d: %d, want %d", i+1, w.Code, want)
		}
	}
	unlimited := RateLimited(s, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), 0, func() time.Time { return clock })
	for i := 0; i < 100; i++ {
		w := httptest.NewRecorder()
		unlimited.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("no limit: request %d answered %d", i+1, w.Code)
		}
	}
}

// The receiver applies its max_rate to every request it serves.
func TestHTTPReceiverAppliesMaxRate(t *testing.T) {
	s := NewStream("in", &fakeReceiver{}, Options{})
	frozen := time.Unix(1_700_000_000, 0)
	r := NewHTTPReceiver("127.0.0.1:0", func(*Stream) http.Handler {
		return http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	})
	r.SetMaxRate(1, func() time.Time { return frozen })
	ctx := context.Background()
	if err := r.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(ctx)
	var codes []int
	for i := 0; i < 2; i++ {
		resp, err := http.Post("http://"+r.Addr()+"/", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != http.StatusOK || codes[1] != http.StatusTooManyRequests {
		t.Errorf("answers %v at max_rate 1 with the clock stopped, want [200 429]", codes)
	}
}
