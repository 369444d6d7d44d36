package push_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/twicehq/twice/collectors/push"
	"github.com/twicehq/twice/sources"
)

// A push tap in a few lines: an HTTP handler that turns a request into a
// record and answers 200 only once the record is durable. The loop at
// the bottom plays the sidecar: it polls the stream and commits what it
// polled (in twice watch, after the checkpoint that holds it).
func Example() {
	rcv := push.NewHTTPReceiver("127.0.0.1:0", func(s *push.Stream) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			ev, err := push.Effect{
				ID:        "demo:" + r.Header.Get("Idempotency-Key"),
				Time:      time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
				Effect:    "demo.received",
				EffectKey: strings.TrimSpace(string(body)),
			}.Event(s.Name(), 0)
			if err != nil {
				s.Count("invalid")
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := s.Submit(r.Context(), []sources.Record{push.EventRecord(ev)}); err != nil {
				push.WriteSubmitError(s, w, err) // 503 + Retry-After: the client sends again
				return
			}
			s.Count("accepted")
			fmt.Fprintln(w, "recorded")
		})
	})
	s := push.NewStream("demo", rcv, push.Options{})
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		fmt.Println(err)
		return
	}
	defer s.Shutdown(ctx)

	go func() { // the sidecar
		for {
			recs, _ := s.Poll(ctx, 100*time.Millisecond)
			if len(recs) == 0 {
				continue
			}
			for _, r := range recs {
				fmt.Println("polled", r.Event.EffectKey, "at position", r.Position)
			}
			_ = s.Commit(ctx, map[string]sources.Position{s.Lane(): recs[len(recs)-1].Position})
			return
		}
	}()

	req, _ := http.NewRequest("POST", "http://"+rcv.Addr()+"/", strings.NewReader("order:42"))
	req.Header.Set("Idempotency-Key", "k-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(answer))
	// Output:
	// polled order:42 at position 1
	// 200 recorded
}
