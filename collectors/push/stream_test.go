package push

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// fakeReceiver counts its starts and shutdowns; failStarts makes that
// many Starts fail first.
type fakeReceiver struct {
	mu                sync.Mutex
	starts, shutdowns int
	failStarts        int
	stream            *Stream
}

func (f *fakeReceiver) Start(_ context.Context, s *Stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStarts > 0 {
		f.failStarts--
		return errors.New("address in use")
	}
	f.starts++
	f.stream = s
	return nil
}

func (f *fakeReceiver) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdowns++
	return nil
}

func rec(id string) sources.Record {
	return sources.Record{Event: &twicetype.Event{ID: id}}
}

// submitAsync runs Submit on its own goroutine; the channel gets its
// result.
func submitAsync(ctx context.Context, s *Stream, recs ...sources.Record) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Submit(ctx, recs) }()
	return ch
}

// pollN polls until n records came.
func pollN(t *testing.T, s *Stream, n int) []sources.Record {
	t.Helper()
	var out []sources.Record
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("polled %d records, want %d", len(out), n)
		}
		recs, err := s.Poll(context.Background(), 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

func commit(t *testing.T, s *Stream, pos int64) {
	t.Helper()
	if err := s.Commit(context.Background(), map[string]sources.Position{s.Lane(): sources.IntPosition(pos)}); err != nil {
		t.Fatal(err)
	}
}

func TestSubmitReturnsOnlyOnceCommitCoversTheRecords(t *testing.T) {
	ctx := context.Background()
	s := NewStream("in", &fakeReceiver{}, Options{})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	first := submitAsync(ctx, s, rec("a"), rec("b"))
	recs := pollN(t, s, 2)
	second := submitAsync(ctx, s, rec("c"))
	recs = append(recs, pollN(t, s, 1)...)
	for i, r := range recs {
		if r.Lane != DefaultLane || r.Position != sources.IntPosition(int64(i+1)) {
			t.Fatalf("record %d: lane %q position %q, want %q %d", i, r.Lane, r.Position, DefaultLane, i+1)
		}
	}
	commit(t, s, 1) // covers a, not b: the first client still waits
	select {
	case err := <-first:
		t.Fatalf("first Submit returned %v before its last record was committed", err)
	case <-time.After(50 * time.Millisecond): // a negative: nothing may happen
	}
	commit(t, s, 2)
	if err := <-first; err != nil {
		t.Fatalf("first Submit: %v", err)
	}
	select {
	case err := <-second:
		t.Fatalf("second Submit returned %v before commit", err)
	default:
	}
	commit(t, s, 3)
	if err := <-second; err != nil {
		t.Fatalf("second Submit: %v", err)
	}
	if st := s.Stats(); st.Submitted != 3 || st.Durable != 3 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFullAndTooLargeFailAtOnceAndTakeNothing(t *testing.T) {
	ctx := context.Background()
	s := NewStream("in", &fakeReceiver{}, Options{MaxPending: 3})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Submit(ctx, []sources.Record{rec("a"), rec("b"), rec("c"), rec("d")}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("4 records with MaxPending 3: %v, want ErrTooLarge", err)
	}
	waiting := submitAsync(ctx, s, rec("a"), rec("b"))
	pollN(t, s, 2)
	if err := s.Submit(ctx, []sources.Record{rec("c"), rec("d")}); !errors.Is(err, ErrFull) {
		t.Fatalf("2 more records with 2 of 3 pending: %v, want ErrFull", err)
	}
	if s.Pending() != 2 {
		t.Fatalf("pending %d after a refused Submit, want 2", s.Pending())
	}
	commit(t, s, 2)
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	// Room again once committed.
	again := submitAsync(ctx, s, rec("c"), rec("d"), rec("e"))
	recs := pollN(t, s, 3)
	if recs[2].Position != "5" {
		t.Fatalf("position after a refused Submit: %q, want 5 (refused records take none)", recs[2].Position)
	}
	commit(t, s, 5)
	if err := <-again; err != nil {
		t.Fatal(err)
	}
	if HTTPStatus(ErrFull) != http.StatusServiceUnavailable || HTTPStatus(ErrTooLarge) != http.StatusRequestEntityTooLarge {
		t.Fatal("HTTPStatus")
	}
}

func TestShutdownAnswersWaitingClientsWithClosed(t *testing.T) {
	ctx := context.Background()
	rcv := &fakeReceiver{}
	s := NewStream("in", rcv, Options{})
	if err := s.Submit(ctx, []sources.Record{rec("early")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit before Start: %v, want ErrClosed", err)
	}
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, nil); err != nil || rcv.starts != 1 {
		t.Fatalf("second Start: %v, receiver started %d times", err, rcv.starts)
	}
	answered := submitAsync(ctx, s, rec("a"))
	pollN(t, s, 1)
	commit(t, s, 1)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	waiting := submitAsync(ctx, s, rec("b"))
	pollN(t, s, 1)
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiting Submit at Shutdown: %v, want ErrClosed", err)
	}
	if err := s.Shutdown(ctx); err != nil || rcv.shutdowns != 1 {
		t.Fatalf("second Shutdown: %v, receiver shut down %d times", err, rcv.shutdowns)
	}
	if err := s.Submit(ctx, []sources.Record{rec("late")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Shutdown: %v", err)
	}
	if err := s.Start(ctx, nil); err == nil {
		t.Fatal("Start after Shutdown succeeded")
	}
	// Shutdown without Start does not touch the receiver.
	rcv2 := &fakeReceiver{}
	if err := NewStream("x", rcv2, Options{}).Shutdown(ctx); err != nil || rcv2.shutdowns != 0 {
		t.Fatalf("Shutdown without Start: %v, %d receiver shutdowns", err, rcv2.shutdowns)
	}
}

func TestStartResumesTheSequenceAndIsRetried(t *testing.T) {
	ctx := context.Background()
	rcv := &fakeReceiver{failStarts: 1}
	s := NewStream("in", rcv, Options{Lane: "mail"})
	resume := map[string]sources.Position{"mail": "41"}
	if err := s.Start(ctx, resume); err == nil {
		t.Fatal("Start with a failing receiver succeeded")
	}
	if err := s.Submit(ctx, []sources.Record{rec("a")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after a failed Start: %v", err)
	}
	if err := s.Start(ctx, resume); err != nil {
		t.Fatal(err)
	}
	done := submitAsync(ctx, s, rec("a"))
	recs := pollN(t, s, 1)
	if recs[0].Lane != "mail" || recs[0].Position != "42" {
		t.Fatalf("first record after resuming at 41: %s %s, want mail 42", recs[0].Lane, recs[0].Position)
	}
	commit(t, s, 41) // the old checkpoint again: not this record
	select {
	case err := <-done:
		t.Fatalf("Submit returned %v on a commit before its record", err)
	default:
	}
	commit(t, s, 42)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := NewStream("in", &fakeReceiver{}, Options{}).Start(ctx, map[string]sources.Position{DefaultLane: "x"}); err == nil {
		t.Fatal("Start at a position that is no sequence number succeeded")
	}
}

func TestSubmitEndsWithItsContext(t *testing.T) {
	s := NewStream("in", &fakeReceiver{}, Options{})
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := submitAsync(ctx, s, rec("a"))
	pollN(t, s, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit after its context ended: %v", err)
	}
	if ResultOf(context.Canceled) != "abandoned" {
		t.Fatal("ResultOf")
	}
	// The record is still pending and is released by its commit.
	if s.Pending() != 1 {
		t.Fatalf("pending %d", s.Pending())
	}
	commit(t, s, 1)
	if s.Pending() != 0 {
		t.Fatalf("pending %d after commit", s.Pending())
	}
}

func TestConcurrentSubmitsAreEachAnsweredOnce(t *testing.T) {
	ctx := context.Background()
	s := NewStream("in", &fakeReceiver{}, Options{MaxPending: 1000})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	const clients, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				errs <- s.Submit(ctx, []sources.Record{rec(strconv.Itoa(c*each + i))})
			}
		}()
	}
	stop := make(chan struct{})
	seen := map[sources.Position]bool{}
	go func() { // the sidecar: poll, then commit what was polled
		defer close(stop)
		for len(seen) < clients*each {
			recs, _ := s.Poll(ctx, 20*time.Millisecond)
			for _, r := range recs {
				if seen[r.Position] {
					t.Errorf("position %s given twice", r.Position)
				}
				seen[r.Position] = true
			}
			if len(recs) > 0 {
				_ = s.Commit(ctx, map[string]sources.Position{DefaultLane: recs[len(recs)-1].Position})
			}
		}
	}()
	wg.Wait()
	<-stop
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Durable != clients*each || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestIsLoopbackAndBearer(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "[::1]:25": true, "localhost:2525": true,
		":8081": false, "0.0.0.0:8081": false, "10.0.0.5:25": false, "nonsense": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v", addr, got)
		}
	}
	r, _ := http.NewRequest("POST", "/", nil)
	if BearerOK(r, "s3cret") {
		t.Error("no header accepted")
	}
	r.Header.Set("Authorization", "Bearer wrong")
	if BearerOK(r, "s3cret") {
		t.Error("wrong token accepted")
	}
	r.Header.Set("Authorization", "bearer s3cret")
	if !BearerOK(r, "s3cret") {
		t.Error("right token refused")
	}
	if !BearerOK(r, "") {
		t.Error("no token configured: refused")
	}
}
