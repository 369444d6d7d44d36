package river

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/twicehq/twice/collectors/pgjobs"
	"github.com/twicehq/twice/collectors/pgjobs/pgjobstest"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

// newStream returns the river stream of a source over e's table, read
// as the role with only the documented GRANTs.
func newStream(t *testing.T, e *env, cfg pgjobs.Config) sources.Stream {
	t.Helper()
	cfg.Postgres = e.reader
	s, err := sources.NewRegistry(Factory).NewStream(config.Source{Name: "jobs", Type: Type, Settings: &cfg}, sources.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

// poll returns what one poll of s reads.
func poll(t *testing.T, s sources.Stream) []sources.Record {
	t.Helper()
	recs, err := s.Poll(context.Background(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func describe(recs []sources.Record) []string {
	var out []string
	for _, r := range recs {
		switch {
		case r.Event != nil:
			ev := r.Event
			s := fmt.Sprintf("%s %s", ev.JobID, ev.Kind)
			if ev.HasAttempt {
				s += fmt.Sprintf(" %d", ev.Attempt)
			}
			if ev.HasRetry {
				s += fmt.Sprintf(" retry=%v", ev.Retry)
			}
			out = append(out, s)
		case r.Lost != nil:
			out = append(out, fmt.Sprintf("lost %d %s", r.Lost.Count, r.Lost.Reason))
		case r.Malformed != nil:
			out = append(out, "malformed "+r.Malformed.Reason)
		}
	}
	return out
}

// A job that fails twice and then succeeds between two polls still
// yields its three attempts, at the times River recorded; a job
// cancelled before it ran is discarded; nothing is emitted twice, by a
// later poll or by a stream restarted from the position.
func TestAttemptsBetweenPolls(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	s := newStream(t, e, pgjobs.Config{Key: "args.payment", PollInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	flaky := e.insert(c, FlakyArgs{Payment: "p-flaky", Fails: 2}, &river.InsertOpts{MaxAttempts: 5})
	cancelled := e.insert(c, ReceiptArgs{Payment: "p-cancel"}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	// A job inserted for later is not enqueued until it is due.
	got := describe(poll(t, s))
	want := []string{fmt.Sprintf("%d job.enqueued", flaky)}
	if !slices.Equal(got, want) {
		t.Fatalf("first poll: %q, want %q", got, want)
	}

	if _, err := c.JobCancel(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	e.run(c)
	e.waitState(flaky, "completed")
	recs := poll(t, s)
	got = describe(recs)
	f := func(s string) string { return fmt.Sprintf("%d %s", flaky, s) }
	want = []string{
		f("job.started 1"), f("job.failed 1 retry=true"),
		f("job.started 2"), f("job.failed 2 retry=true"),
		f("job.started 3"), f("job.succeeded 3"),
	}
	var forFlaky []string
	for _, g := range got {
		if strings.HasPrefix(g, fmt.Sprint(flaky)+" ") {
			forFlaky = append(forFlaky, g)
		}
	}
	if !slices.Equal(forFlaky, want) {
		t.Errorf("second poll, job %d: %q, want %q", flaky, forFlaky, want)
	}
	if !slices.Contains(got, fmt.Sprintf("%d job.enqueued", cancelled)) || !slices.Contains(got, fmt.Sprintf("%d job.discarded", cancelled)) {
		t.Errorf("second poll: %q, want job %d enqueued and discarded", got, cancelled)
	}
	// The times are River's: an errors entry's "at" is when its attempt
	// began (River's executor start), so an attempt started then and
	// failed when the next one began; the last began at attempted_at and
	// ended at finalized_at.
	var errAtText []string
	var attempted, finalized time.Time
	if err := e.pool.QueryRow(ctx, `SELECT array(SELECT x->>'at' FROM unnest(errors) x), attempted_at, finalized_at FROM river_job WHERE id = $1`,
		flaky).Scan(&errAtText, &attempted, &finalized); err != nil {
		t.Fatal(err)
	}
	var starts []time.Time
	for _, s := range errAtText {
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		starts = append(starts, at)
	}
	starts = append(starts, attempted)
	for _, r := range recs {
		ev := r.Event
		if ev == nil || ev.JobID != fmt.Sprint(flaky) {
			continue
		}
		var want time.Time
		switch ev.Kind {
		case twicetype.JobStarted:
			want = starts[ev.Attempt-1]
		case twicetype.JobFailed:
			want = starts[ev.Attempt]
		case twicetype.JobSucceeded:
			want = finalized
		}
		if ev.Time != want.UnixNano() {
			t.Errorf("%s attempt %d at %v, want %v", ev.Kind, ev.Attempt, time.Unix(0, ev.Time).UTC(), want.UTC())
		}
		if ev.Key != "p-flaky" || ev.JobType != "Flaky" || ev.Queue != "default" {
			t.Errorf("event %s: key %q job_type %q queue %q", ev.ID, ev.Key, ev.JobType, ev.Queue)
		}
	}
	pos := recs[len(recs)-1].Position

	// Nothing new: nothing again.
	if got := describe(poll(t, s)); len(got) != 0 {
		t.Errorf("third poll: %q, want nothing", got)
	}
	// A stream restarted at the position emits nothing again either.
	s2 := newStream(t, e, pgjobs.Config{Key: "args.payment", PollInterval: 10 * time.Millisecond})
	if err := s2.Start(ctx, map[string]sources.Position{s2.Lanes()[0]: pos}); err != nil {
		t.Fatal(err)
	}
	if got := describe(poll(t, s2)); len(got) != 0 {
		t.Errorf("after a restart: %q, want nothing", got)
	}
	// An operator retries the cancelled job: enqueued again, then run.
	if _, err := c.JobRetry(ctx, cancelled); err != nil {
		t.Fatal(err)
	}
	e.waitState(cancelled, "completed")
	got = describe(poll(t, s2))
	want = []string{fmt.Sprintf("%d job.enqueued", cancelled), fmt.Sprintf("%d job.started 1", cancelled), fmt.Sprintf("%d job.succeeded 1", cancelled)}
	if !slices.Equal(got, want) {
		t.Errorf("after the retry of a cancelled job: %q, want %q", got, want)
	}
}

// River's client notifies SCHEMA.river_insert on insert: the stream
// wakes long before its poll interval.
func TestInsertNotificationWakes(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	s := newStream(t, e, pgjobs.Config{PollInterval: time.Hour})
	ctx := context.Background()
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := poll(t, s); len(got) != 0 {
		t.Fatalf("first poll of an empty table: %q", describe(got))
	}
	id := e.insert(c, ReceiptArgs{Payment: "p-1"}, nil)
	recs, err := s.Poll(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(recs), []string{fmt.Sprintf("%d job.enqueued", id)}; !slices.Equal(got, want) {
		t.Errorf("after an insert: %q, want %q", got, want)
	}
}

// Rows deleted before twice read them are lost coverage: ids missing
// between rows read, and a followed job deleted before it ended.
func TestLostCoverage(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	ctx := context.Background()
	ids := []int64{
		e.insert(c, ReceiptArgs{Payment: "a"}, nil),
		e.insert(c, ReceiptArgs{Payment: "b"}, nil),
		e.insert(c, ReceiptArgs{Payment: "c"}, nil),
		e.insert(c, ReceiptArgs{Payment: "d"}, nil),
	}
	if _, err := e.pool.Exec(ctx, "DELETE FROM river_job WHERE id = ANY($1)", ids[1:3]); err != nil {
		t.Fatal(err)
	}
	s := newStream(t, e, pgjobs.Config{PollInterval: 10 * time.Millisecond, GapTimeout: time.Nanosecond})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got := describe(poll(t, s))
	want := []string{"lost 2 " + pgjobs.ReasonIDsSkipped, fmt.Sprintf("%d job.enqueued", ids[0]), fmt.Sprintf("%d job.enqueued", ids[3])}
	if !slices.Equal(got, want) {
		t.Errorf("first poll: %q, want %q", got, want)
	}
	if _, err := e.pool.Exec(ctx, "DELETE FROM river_job WHERE id = $1", ids[3]); err != nil {
		t.Fatal(err)
	}
	got = describe(poll(t, s))
	want = []string{"lost 1 " + pgjobs.ReasonDeletedRunning}
	if !slices.Equal(got, want) {
		t.Errorf("after deleting a followed job: %q, want %q", got, want)
	}
}

// The role of the docs' GRANTs cannot write, and a role without them
// gets an error that says what it needs.
func TestGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	conn, err := pgxConnect(ctx, e.reader)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE river_job SET state = 'available' WHERE false"); err == nil {
		t.Error("the reader role may UPDATE river_job")
	}
	bare := newStream(t, &env{reader: servicePlainRole(t, e)}, pgjobs.Config{})
	err = bare.Start(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "SELECT on the table") {
		t.Errorf("Start as a role without GRANTs: %v", err)
	}
}

// The mix of faults runs on real River workers while twice watch reads
// river_job (as the role of the docs' GRANTs) and the ledger's effects;
// the watch is SIGKILLed once, and jobs move while it is down. It must
// end with exactly the faults, and twice audit of the same sources too.
func TestWatchFaultMix(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - {name: jobs, type: river, postgres: %[1]q, key: args.payment, poll_interval: 100ms}
  - name: ledger
    type: postgres
    postgres: %[1]q
    table: public.ledger
    cursor: id
    poll_interval: 100ms
    settle: 0s
    map:
      id: '"ledger:" + string(row.id)'
      ts: row.created_at
      kind: '"effect"'
      effect: row.effect
      effect_key: row.effect_key
      job_id: string(row.job_id)
      attempt: row.attempt
expect:
  - {job_type: SendReceipt, effect: receipt.sent, effect_key: "receipt/{{key}}", within: 3s}
  - {job_type: ChargeCard, effect: charge.created, effect_key: "charge/{{key}}", within: 3s}
detectors:
  lost-job: {lost_after: 4s}
engine: {lateness: 2s}
watch:
  state_dir: %[2]q
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
  idle_timeout: 1s
`, e.reader, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := watchtest.Build(t)
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 2)
	w.WaitFor(t, "ready", w.Ready)
	e.run(c)

	crash := e.insert(c, ChargeArgs{Payment: "pay-crash", Crash: true}, nil)
	dupA := e.insert(c, ReceiptArgs{Payment: "p-dup"}, nil)
	dead := e.insert(c, SyncArgs{Item: "sku-1"}, nil)
	e.waitState(crash, "completed")
	w.WaitFor(t, "some events audited", func() bool { return w.Metrics()["twice_events_total"] >= 6 })
	w.Kill()

	// While twice is down: more jobs, which run and end.
	dupB := e.insert(c, ReceiptArgs{Payment: "p-dup"}, nil)
	missing := e.insert(c, ReceiptArgs{Payment: "p-missing", Skip: true}, nil)
	stuck := e.insert(c, ExportArgs{Report: "r-1"}, nil)
	ok := e.insert(c, ChargeArgs{Payment: "pay-ok"}, nil)
	for _, id := range []int64{dupA, dupB, missing, ok} {
		e.waitState(id, "completed")
	}
	e.waitState(dead, "discarded")
	e.waitState(stuck, "running")
	w = watchtest.Start(t, bin, cfg, logPath, 2)

	// One last job once the stuck job is past lost_after, so that event
	// time passes every deadline.
	pgjobstest.WaitFor(t, "lost_after and the lateness past the stuck job's start", 30*time.Second, func() (bool, error) {
		var past bool
		err := e.pool.QueryRow(context.Background(), "SELECT now() > attempted_at + interval '7 seconds' FROM river_job WHERE id = $1", stuck).Scan(&past)
		return past, err
	})
	last := e.insert(c, ReceiptArgs{Payment: "p-last"}, nil)
	e.waitState(last, "completed")

	expected := []string{
		"dead-letter inventory",
		"duplicate-effect charge/pay-crash",
		"duplicate-effect receipt/p-dup",
		fmt.Sprintf("effect-before-failure %d", crash),
		fmt.Sprintf("lost-job %d", stuck),
		fmt.Sprintf("missing-effect %d", missing),
	}
	slices.Sort(expected)
	var page watchtest.Page
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last findings of the watch: %q\nsummary %+v", page.Keys(nil), page.Summary)
		}
	})
	w.WaitFor(t, "exactly the faults", func() bool {
		page = w.Findings()
		return slices.Equal(pgjobstest.Pairs(page.Findings), expected)
	})
	causes := map[string]string{}
	for _, f := range page.Findings {
		causes[f.Detector+" "+f.Subject] = f.Cause
	}
	for pair, cause := range map[string]string{
		"duplicate-effect charge/pay-crash": "redelivery",
		"duplicate-effect receipt/p-dup":    "duplicate-enqueue",
		fmt.Sprintf("lost-job %d", stuck):   "stuck",
	} {
		if causes[pair] != cause {
			t.Errorf("%s: cause %q, want %q", pair, causes[pair], cause)
		}
	}
	if page.Summary.Malformed != 0 || len(page.Summary.Warnings) != 0 {
		t.Errorf("watch summary %+v: want no malformed events and no warning", page.Summary)
	}
	w.Stop(t)

	// twice audit reads river_job as it is now, then stops.
	fs, sum := pgjobstest.Audit(t, cfg)
	if got := pgjobstest.Pairs(fs); !slices.Equal(got, expected) {
		t.Errorf("twice audit: %q, want %q", got, expected)
	}
	if sum.Malformed != 0 || sum.Repeated != 0 {
		t.Errorf("twice audit summary %+v", sum)
	}
}

func TestConfigTestdata(t *testing.T) {
	c, err := config.LoadWith(filepath.Join("testdata", "config.yaml"), config.Options{Sources: sources.NewRegistry(Factory)})
	if err != nil {
		t.Fatal(err)
	}
	got := *c.Sources[0].Settings.(*pgjobs.Config)
	if got.Postgres != "postgres://twice:secret@db:5432/app?sslmode=require" || got.Schema != "jobs" || got.Key != "args.payment_id" ||
		got.Entity != "args.order_id" || got.Attrs["tenant"] != "metadata.tenant" || got.PollInterval != 500*time.Millisecond ||
		got.GapTimeout != 2*time.Minute {
		t.Errorf("decoded %+v", got)
	}
	d := c.Sources[1].Settings.(*pgjobs.Config).WithDefaults()
	if d.Schema != "public" || d.PollInterval != time.Second || d.GapTimeout != time.Minute {
		t.Errorf("defaults %+v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no postgres", "sources: [{name: s, type: river}]", "missing postgres"},
		{"bad scheme", "sources: [{name: s, type: river, postgres: 'mysql://x/db'}]", "sources[0].postgres: want a URL like postgres://host:port"},
		{"unknown key", "sources: [{name: s, type: river, postgres: 'postgres://x/db', prefix: oban}]", `unknown key "prefix"`},
		{"bad schema", "sources: [{name: s, type: river, postgres: 'postgres://x/db', schema: 'a;b'}]", "sources[0].schema: \"a;b\": want a schema name"},
		{"bad root", "sources: [{name: s, type: river, postgres: 'postgres://x/db', key: 'data.payment'}]", `sources[0].key: path "data.payment": starts with "data", want one of args, metadata, tags`},
		{"empty segment", "sources: [{name: s, type: river, postgres: 'postgres://x/db', entity: 'args..x'}]", "sources[0].entity: path \"args..x\": segment 2 is empty"},
		{"poll_interval", "sources: [{name: s, type: river, postgres: 'postgres://x/db', poll_interval: 1ms}]", "sources[0].poll_interval: 1ms, want at least 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.ParseWith("twice.yaml", []byte(tc.yaml), config.Options{Sources: sources.NewRegistry(Factory)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// Rows River's retention (or an operator) deleted while twice watch was
// stopped are reported as lost coverage after the restart: a warning in
// GET /findings and twice_coverage_lost_total, never a finding.
func TestWatchGap(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - {name: jobs, type: river, postgres: %q, poll_interval: 100ms, gap_timeout: 100ms}
watch:
  state_dir: %q
  listen: 127.0.0.1:0
  checkpoint_interval: 100ms
`, e.reader, filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := watchtest.Build(t)
	logPath := filepath.Join(dir, "watch.log")
	w := watchtest.Start(t, bin, cfg, logPath, 1)
	e.insert(c, ReceiptArgs{Payment: "p-0"}, nil)
	w.WaitFor(t, "the first job", func() bool { return w.Metrics()["twice_events_total"] >= 1 })
	w.Kill()
	ids := []int64{e.insert(c, ReceiptArgs{Payment: "p-1"}, nil), e.insert(c, ReceiptArgs{Payment: "p-2"}, nil), e.insert(c, ReceiptArgs{Payment: "p-3"}, nil)}
	if _, err := e.pool.Exec(context.Background(), "DELETE FROM river_job WHERE id = ANY($1)", ids[:2]); err != nil {
		t.Fatal(err)
	}
	w = watchtest.Start(t, bin, cfg, logPath, 1)
	// twice_coverage_lost_total counts gaps; the warning says how many rows.
	w.WaitFor(t, "the gap reported", func() bool { return w.Metrics()["twice_coverage_lost_total"] == 1 })
	page := w.Findings()
	if len(page.Findings) != 0 || len(page.Summary.Warnings) != 1 || !strings.Contains(page.Summary.Warnings[0], "lost 2 events") ||
		!strings.Contains(page.Summary.Warnings[0], pgjobs.ReasonIDsSkipped) {
		t.Errorf("findings %q, warnings %q: want no finding and one warning (%s)", page.Keys(nil), page.Summary.Warnings, pgjobs.ReasonIDsSkipped)
	}
	w.Stop(t)
}
