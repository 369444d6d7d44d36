package oban

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twicehq/twice/collectors/pgjobs"
	"github.com/twicehq/twice/collectors/pgjobs/pgjobstest"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
	"github.com/twicehq/twice/sources"
	"github.com/twicehq/twice/twicetype"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// Grants are what an oban source's role needs (docs/sources/oban.md).
const Grants = `GRANT USAGE ON SCHEMA public TO %[1]s; GRANT SELECT ON public.oban_jobs TO %[1]s`

// env is a database with oban_jobs as Oban's migrations make it, a
// ledger, and a role with only the GRANTs of the docs (and SELECT on the
// ledger).
type env struct {
	t      *testing.T
	pool   *pgxpool.Pool
	reader string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	admin := servicetest.Postgres(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ddl, err := os.ReadFile(filepath.Join("testdata", "oban_jobs.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(ddl)); err != nil {
		t.Fatalf("oban_jobs.sql: %v", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE ledger (id bigserial PRIMARY KEY, effect text NOT NULL, effect_key text NOT NULL,
		job_id bigint NOT NULL, attempt int NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	reader := servicetest.PostgresRole(t, admin)
	c, err := pgx.ParseConfig(reader)
	if err != nil {
		t.Fatal(err)
	}
	role := pgx.Identifier{c.User}.Sanitize()
	if _, err := pool.Exec(ctx, fmt.Sprintf(Grants, role)+"; GRANT SELECT ON public.ledger TO "+role); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, pool: pool, reader: reader}
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

// Oban's transitions, as its Basic engine writes them (lib/oban/engines/
// basic.ex): insert, fetch_jobs, complete_job, error_job, discard_job,
// cancel_job, snooze_job, and the stager's scheduled/retryable →
// available.

// insert is Oban.insert: a row available now.
func (e *env) insert(worker, queue, args string, maxAttempts int) int64 {
	e.t.Helper()
	var id int64
	if err := e.pool.QueryRow(context.Background(), `INSERT INTO oban_jobs (worker, queue, args, max_attempts) VALUES ($1, $2, $3, $4) RETURNING id`,
		worker, queue, args, maxAttempts).Scan(&id); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// fetch is fetch_jobs for one job: executing, attempt + 1, attempted_at,
// attempted_by.
func (e *env) fetch(id int64) {
	e.exec(`UPDATE oban_jobs SET state = 'executing', attempted_at = timezone('UTC', clock_timestamp()),
		attempted_by = ARRAY['node-1', 'uuid-1'], attempt = attempt + 1 WHERE id = $1 AND state = 'available' AND attempt < max_attempts`, id)
}

// attemptError is Job.format_attempt: {attempt, at, error}, at as
// Jason writes a DateTime (microseconds, Z).
const attemptError = `jsonb_build_object('attempt', attempt, 'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'error', $2::text)`

func (e *env) complete(id int64) {
	e.exec(`UPDATE oban_jobs SET state = 'completed', completed_at = timezone('UTC', clock_timestamp()) WHERE id = $1`, id)
}

// fail is error_job: retryable, a retry after backoff, the error kept.
func (e *env) fail(id int64, msg string) {
	e.exec(`UPDATE oban_jobs SET state = 'retryable', scheduled_at = timezone('UTC', clock_timestamp()),
		errors = errors || ARRAY[`+attemptError+`] WHERE id = $1`, id, msg)
}

// discard is error_job on the last attempt: discarded, the error kept.
func (e *env) discard(id int64, msg string) {
	e.exec(`UPDATE oban_jobs SET state = 'discarded', discarded_at = timezone('UTC', clock_timestamp()),
		errors = errors || ARRAY[`+attemptError+`] WHERE id = $1`, id, msg)
}

// cancel is cancel_job: from the worker ({:cancel, reason}) with its
// error, or by an operator without one.
func (e *env) cancel(id int64, msg string) {
	if msg != "" {
		e.exec(`UPDATE oban_jobs SET state = 'cancelled', cancelled_at = timezone('UTC', clock_timestamp()),
			errors = errors || ARRAY[`+attemptError+`] WHERE id = $1`, id, msg)
		return
	}
	e.exec(`UPDATE oban_jobs SET state = 'cancelled', cancelled_at = timezone('UTC', clock_timestamp())
		WHERE id = $1 AND state NOT IN ('cancelled', 'completed', 'discarded')`, id)
}

// stage is the stager: retryable and scheduled jobs due become available.
func (e *env) stage() {
	e.exec(`UPDATE oban_jobs SET state = 'available' WHERE state IN ('scheduled', 'retryable') AND scheduled_at <= timezone('UTC', clock_timestamp())`)
}

// retry is Oban.retry_job: an operator runs a finished job again.
func (e *env) retry(id int64) {
	e.exec(`UPDATE oban_jobs SET state = 'available', max_attempts = GREATEST(max_attempts, attempt + 1),
		scheduled_at = timezone('UTC', clock_timestamp()), completed_at = NULL, cancelled_at = NULL, discarded_at = NULL WHERE id = $1`, id)
}

// effect writes a ledger row.
func (e *env) effect(effect, key string, id int64) {
	e.exec(`INSERT INTO ledger (effect, effect_key, job_id, attempt) SELECT $1, $2, id, attempt FROM oban_jobs WHERE id = $3`, effect, key, id)
}

func newStream(t *testing.T, e *env, cfg pgjobs.Config) sources.Stream {
	t.Helper()
	cfg.Postgres = e.reader
	s, err := sources.NewRegistry(Factory).NewStream(config.Source{Name: "jobs", Type: Type, Settings: &cfg}, sources.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	if err := s.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func poll(t *testing.T, s sources.Stream, wait time.Duration) []sources.Record {
	t.Helper()
	recs, err := s.Poll(context.Background(), wait)
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

// Every documented transition of Oban, several between two polls: each
// attempt is rebuilt from the row, at the times Oban recorded, once.
func TestTransitions(t *testing.T) {
	e := newEnv(t)
	s := newStream(t, e, pgjobs.Config{Key: "args.payment_id", Attrs: map[string]string{"tenant": "meta.tenant"}, PollInterval: 10 * time.Millisecond})
	flaky := e.insert("MyApp.Charge", "payments", `{"payment_id": "p-1"}`, 5)
	dead := e.insert("MyApp.Sync", "inventory", `{"sku": 1}`, 2)
	cancelled := e.insert("MyApp.Export", "default", `{}`, 3)
	dropped := e.insert("MyApp.Export", "default", `{}`, 3)
	running := e.insert("MyApp.Mail", "default", `{"payment_id": 7}`, 3)
	e.exec(`UPDATE oban_jobs SET meta = '{"tenant": "acme"}' WHERE id = $1`, flaky)
	n := func(id int64, s string) string { return fmt.Sprintf("%d %s", id, s) }
	if got, want := describe(poll(t, s, time.Second)), []string{n(flaky, "job.enqueued"), n(dead, "job.enqueued"),
		n(cancelled, "job.enqueued"), n(dropped, "job.enqueued"), n(running, "job.enqueued")}; !slices.Equal(got, want) {
		t.Fatalf("first poll: %q, want %q", got, want)
	}

	// Between two polls: flaky fails twice and succeeds; dead fails twice
	// and is discarded; cancelled is cancelled by its worker; dropped by
	// an operator before it ran; running starts.
	e.fetch(flaky)
	e.fail(flaky, "** (RuntimeError) timeout")
	e.stage()
	e.fetch(flaky)
	e.fail(flaky, "** (RuntimeError) timeout")
	e.stage()
	e.fetch(flaky)
	e.complete(flaky)
	e.fetch(dead)
	e.fail(dead, "unavailable")
	e.stage()
	e.fetch(dead)
	e.discard(dead, "unavailable")
	e.fetch(cancelled)
	e.cancel(cancelled, "{:cancel, :no_longer_needed}")
	e.cancel(dropped, "")
	e.fetch(running)
	recs := poll(t, s, time.Second)
	byJob := map[string][]string{}
	for _, d := range describe(recs) {
		id, rest, _ := strings.Cut(d, " ")
		byJob[id] = append(byJob[id], rest)
	}
	for id, want := range map[int64][]string{
		flaky:     {"job.started 1", "job.failed 1 retry=true", "job.started 2", "job.failed 2 retry=true", "job.started 3", "job.succeeded 3"},
		dead:      {"job.started 1", "job.failed 1 retry=true", "job.started 2", "job.failed 2 retry=false", "job.dead 2"},
		cancelled: {"job.started 1", "job.failed 1 retry=false", "job.discarded"},
		dropped:   {"job.discarded"},
		running:   {"job.started 1"},
	} {
		if got := byJob[fmt.Sprint(id)]; !slices.Equal(got, want) {
			t.Errorf("job %d: %q, want %q", id, got, want)
		}
	}
	// Times: a failure at its error's "at", the last start at
	// attempted_at, the end at completed_at; fields from args and meta.
	var errAt []string
	var attempted, completed time.Time
	if err := e.pool.QueryRow(context.Background(), `SELECT array(SELECT x->>'at' FROM unnest(errors) x), attempted_at AT TIME ZONE 'UTC', completed_at AT TIME ZONE 'UTC' FROM oban_jobs WHERE id = $1`,
		flaky).Scan(&errAt, &attempted, &completed); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		ev := r.Event
		if ev == nil || ev.JobID != fmt.Sprint(flaky) {
			continue
		}
		var want time.Time
		switch {
		case ev.Kind == twicetype.JobFailed:
			want, _ = time.Parse(time.RFC3339Nano, errAt[ev.Attempt-1])
		case ev.Kind == twicetype.JobStarted && ev.Attempt == 3:
			want = attempted
		case ev.Kind == twicetype.JobSucceeded:
			want = completed
		default:
			continue
		}
		if ev.Time != want.UnixNano() {
			t.Errorf("%s %d at %v, want %v", ev.Kind, ev.Attempt, time.Unix(0, ev.Time).UTC(), want.UTC())
		}
		if ev.Key != "p-1" || ev.JobType != "MyApp.Charge" || ev.Queue != "payments" || string(ev.Attrs) != `{"tenant":"acme"}` {
			t.Errorf("event %s: key %q job_type %q queue %q attrs %s", ev.ID, ev.Key, ev.JobType, ev.Queue, ev.Attrs)
		}
	}

	// Snoozed ({:snooze, 1}): attempt back by one, scheduled; it runs again
	// as the same attempt and completes.
	e.exec(`UPDATE oban_jobs SET state = 'scheduled', scheduled_at = timezone('UTC', clock_timestamp()), attempt = attempt - 1,
		meta = jsonb_set(meta, '{snoozed}', '1') WHERE id = $1`, running)
	e.stage()
	e.fetch(running)
	e.complete(running)
	// An operator retries the dead job, which then succeeds.
	e.retry(dead)
	e.fetch(dead)
	e.complete(dead)
	got := describe(poll(t, s, time.Second))
	want := []string{n(running, "job.succeeded 1"), n(dead, "job.enqueued"), n(dead, "job.started 3"), n(dead, "job.succeeded 3")}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after a snooze and a retry: %q, want %q", got, want)
	}
	if got := describe(poll(t, s, time.Second)); len(got) != 0 {
		t.Errorf("a poll with nothing new: %q", got)
	}
	// An operator retries a job that had completed (twice no longer
	// follows it): seen again while it waits, its earlier attempts are
	// not repeated.
	e.retry(flaky)
	if got, want := describe(poll(t, s, time.Second)), []string{n(flaky, "job.enqueued")}; !slices.Equal(got, want) {
		t.Errorf("a completed job retried: %q, want %q", got, want)
	}
	e.fetch(flaky)
	e.complete(flaky)
	if got, want := describe(poll(t, s, time.Second)), []string{n(flaky, "job.started 4"), n(flaky, "job.succeeded 4")}; !slices.Equal(got, want) {
		t.Errorf("its new run: %q, want %q", got, want)
	}
}

// An insert notified on PREFIX.oban_insert, as Oban's notifier does,
// wakes the stream long before its poll interval.
func TestNotifyWakes(t *testing.T) {
	e := newEnv(t)
	s := newStream(t, e, pgjobs.Config{PollInterval: time.Hour})
	if got := poll(t, s, time.Second); len(got) != 0 {
		t.Fatalf("first poll of an empty table: %q", describe(got))
	}
	id := e.insert("MyApp.Mail", "default", `{}`, 3)
	if got := describe(poll(t, s, 100*time.Millisecond)); len(got) != 0 {
		t.Fatalf("a poll before its interval without a notification: %q", got)
	}
	e.exec(`SELECT pg_notify('public.oban_insert', '{"queue": "default"}')`)
	got := describe(poll(t, s, time.Minute))
	if want := []string{fmt.Sprintf("%d job.enqueued", id)}; !slices.Equal(got, want) {
		t.Errorf("after NOTIFY: %q, want %q", got, want)
	}
}

// twice audit of oban_jobs and a ledger (a postgres source) finds the
// crash window, the duplicate it causes, and the dead letter.
func TestAudit(t *testing.T) {
	e := newEnv(t)
	crash := e.insert("MyApp.Charge", "payments", `{"payment_id": "pay-crash"}`, 3)
	e.fetch(crash)
	e.effect("charge.created", "charge/pay-crash", crash)
	e.fail(crash, "** (DBConnection.ConnectionError) closed")
	e.stage()
	e.fetch(crash)
	e.effect("charge.created", "charge/pay-crash", crash)
	e.complete(crash)
	pruned := e.insert("MyApp.Mail", "default", `{}`, 1)
	dead := e.insert("MyApp.Sync", "inventory", `{"sku": 1}`, 1)
	e.fetch(dead)
	e.discard(dead, "unavailable")
	// The Pruner deleted a finished job before twice read it.
	e.exec(`DELETE FROM oban_jobs WHERE id = $1`, pruned)
	ok := e.insert("MyApp.Charge", "payments", `{"payment_id": "pay-ok"}`, 3)
	e.fetch(ok)
	e.effect("charge.created", "charge/pay-ok", ok)
	e.complete(ok)
	cfg := filepath.Join(t.TempDir(), "twice.yaml")
	yaml := fmt.Sprintf(`sources:
  - {name: jobs, type: oban, postgres: %[1]q, key: args.payment_id}
  - name: ledger
    type: postgres
    postgres: %[1]q
    table: public.ledger
    cursor: id
    map:
      id: '"ledger:" + string(row.id)'
      ts: row.created_at
      kind: '"effect"'
      effect: row.effect
      effect_key: row.effect_key
      job_id: string(row.job_id)
      attempt: row.attempt
expect:
  - {job_type: MyApp.Charge, effect: charge.created, effect_key: "charge/{{key}}", within: 1m}
`, e.reader)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, sum := pgjobstest.Audit(t, cfg)
	want := []string{"dead-letter inventory", "duplicate-effect charge/pay-crash", fmt.Sprintf("effect-before-failure %d", crash)}
	if got := pgjobstest.Pairs(fs); !slices.Equal(got, want) {
		t.Errorf("twice audit: %q, want %q", got, want)
	}
	if sum.Malformed != 0 || sum.Repeated != 0 {
		t.Errorf("summary %+v", sum)
	}
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "(public.oban_jobs) lost 1 events") || !strings.Contains(sum.Warnings[0], pgjobs.ReasonIDsSkipped) {
		t.Errorf("warnings %q, want one: 1 row lost (%s)", sum.Warnings, pgjobs.ReasonIDsSkipped)
	}
}

func TestConfigErrors(t *testing.T) {
	c, err := config.ParseWith("twice.yaml", []byte(`sources: [{name: s, type: oban, postgres: 'postgres://x/db', prefix: jobs, key: meta.tenant}]`),
		config.Options{Sources: sources.NewRegistry(Factory)})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Sources[0].Settings.(*pgjobs.Config); got.Schema != "jobs" || got.Key != "meta.tenant" {
		t.Errorf("decoded %+v", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"sources: [{name: s, type: oban, postgres: 'postgres://x/db', schema: x}]", `unknown key "schema"`},
		{"sources: [{name: s, type: oban, postgres: 'postgres://x/db', key: metadata.x}]", "want one of args, meta, tags"},
		{"sources: [{name: s, type: oban, prefix: x}]", "missing postgres"},
	} {
		_, err := config.ParseWith("twice.yaml", []byte(tc.yaml), config.Options{Sources: sources.NewRegistry(Factory)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
