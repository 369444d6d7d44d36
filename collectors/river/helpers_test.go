package river

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/twicehq/twice/collectors/pgjobs/pgjobstest"
	"github.com/twicehq/twice/internal/servicetest"
	"github.com/twicehq/twice/internal/watchtest"
)

// Grants are what a river source's role needs (docs/sources/river.md).
const Grants = `GRANT USAGE ON SCHEMA public TO %[1]s; GRANT SELECT ON public.river_job TO %[1]s`

// ledgerGrant lets the role read the ledger too, for the postgres source
// of the effects.
const ledgerGrant = `GRANT SELECT ON public.ledger TO %s`

// env is one test's database with River's schema, a ledger table the
// workers write their effects to, and a role with only the GRANTs of the
// docs.
type env struct {
	t      *testing.T
	admin  string // superuser URL of the test's database
	reader string // URL of the role with only Grants
	pool   *pgxpool.Pool

	mu      sync.Mutex
	release chan struct{} // ExportReport blocks until it is closed
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
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatalf("River's migrations: %v", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE ledger (id bigserial PRIMARY KEY, effect text NOT NULL, effect_key text NOT NULL,
		job_id bigint NOT NULL, attempt int NOT NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	reader := servicetest.PostgresRole(t, admin)
	role := pgx.Identifier{userOf(t, reader)}.Sanitize()
	if _, err := pool.Exec(ctx, fmt.Sprintf(Grants, role)+"; "+fmt.Sprintf(ledgerGrant, role)); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, admin: admin, reader: reader, pool: pool, release: make(chan struct{})}
}

func userOf(t *testing.T, rawURL string) string {
	t.Helper()
	c, err := pgx.ParseConfig(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return c.User
}

// effect writes a ledger row for job: what a postgres source of twice
// reads as an effect.
func (e *env) effect(ctx context.Context, effect, key string, job *rivertype.JobRow) error {
	_, err := e.pool.Exec(ctx, `INSERT INTO ledger (effect, effect_key, job_id, attempt) VALUES ($1, $2, $3, $4)`,
		effect, key, job.ID, job.Attempt)
	return err
}

// The job mix's args.

// ChargeArgs charges a payment: a ledger row, then, with Crash, an error
// on the first attempt (the crash window).
type ChargeArgs struct {
	Payment string `json:"payment"`
	Crash   bool   `json:"crash,omitempty"`
}

func (ChargeArgs) Kind() string { return "ChargeCard" }

// ReceiptArgs sends a receipt: a ledger row, unless Skip (a success
// without its effect).
type ReceiptArgs struct {
	Payment string `json:"payment"`
	Skip    bool   `json:"skip,omitempty"`
}

func (ReceiptArgs) Kind() string { return "SendReceipt" }

// SyncArgs always fails; two attempts, then River discards it.
type SyncArgs struct {
	Item string `json:"item"`
}

func (SyncArgs) Kind() string { return "SyncInventory" }

func (SyncArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: "inventory", MaxAttempts: 2}
}

// ExportArgs blocks until the test ends: a job stuck running.
type ExportArgs struct {
	Report string `json:"report"`
}

func (ExportArgs) Kind() string { return "ExportReport" }

func (ExportArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "slow"} }

// FlakyArgs fails its first Fails attempts, then succeeds.
type FlakyArgs struct {
	Payment string `json:"payment"`
	Fails   int    `json:"fails"`
}

func (FlakyArgs) Kind() string { return "Flaky" }

type chargeWorker struct {
	river.WorkerDefaults[ChargeArgs]
	e *env
}

func (w *chargeWorker) Work(ctx context.Context, job *river.Job[ChargeArgs]) error {
	if err := w.e.effect(ctx, "charge.created", "charge/"+job.Args.Payment, job.JobRow); err != nil {
		return err
	}
	if job.Args.Crash && job.Attempt == 1 {
		return errors.New("connection reset after the charge")
	}
	return nil
}

type receiptWorker struct {
	river.WorkerDefaults[ReceiptArgs]
	e *env
}

func (w *receiptWorker) Work(ctx context.Context, job *river.Job[ReceiptArgs]) error {
	if job.Args.Skip {
		return nil
	}
	return w.e.effect(ctx, "receipt.sent", "receipt/"+job.Args.Payment, job.JobRow)
}

type syncWorker struct{ river.WorkerDefaults[SyncArgs] }

func (syncWorker) Work(context.Context, *river.Job[SyncArgs]) error {
	return errors.New("inventory service unavailable")
}

type exportWorker struct {
	river.WorkerDefaults[ExportArgs]
	e *env
}

func (w *exportWorker) Work(ctx context.Context, _ *river.Job[ExportArgs]) error {
	select {
	case <-w.e.release:
	case <-ctx.Done():
	}
	return nil
}

func (*exportWorker) Timeout(*river.Job[ExportArgs]) time.Duration { return -1 }

type flakyWorker struct {
	river.WorkerDefaults[FlakyArgs]
}

func (flakyWorker) Work(_ context.Context, job *river.Job[FlakyArgs]) error {
	if job.Attempt <= job.Args.Fails {
		return fmt.Errorf("flaky: attempt %d fails", job.Attempt)
	}
	return nil
}

// quickRetry retries at once: River makes the job available again
// without waiting for its scheduler.
type quickRetry struct{}

func (quickRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Millisecond) }

// client returns a River client of the mix's workers (not started).
func (e *env) client() *river.Client[pgx.Tx] {
	e.t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, &chargeWorker{e: e})
	river.AddWorker(workers, &receiptWorker{e: e})
	river.AddWorker(workers, syncWorker{})
	river.AddWorker(workers, &exportWorker{e: e})
	river.AddWorker(workers, flakyWorker{})
	c, err := river.NewClient(riverpgxv5.New(e.pool), &river.Config{
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 5},
			"inventory":        {MaxWorkers: 2},
			"slow":             {MaxWorkers: 1},
		},
		Workers:           workers,
		RetryPolicy:       quickRetry{},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// run starts c; the test's end releases the stuck job and stops it.
func (e *env) run(c *river.Client[pgx.Tx]) {
	e.t.Helper()
	if err := c.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		e.mu.Lock()
		select {
		case <-e.release:
		default:
			close(e.release)
		}
		e.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
}

// insert inserts a job and returns its id.
func (e *env) insert(c *river.Client[pgx.Tx], args river.JobArgs, opts *river.InsertOpts) int64 {
	e.t.Helper()
	res, err := c.Insert(context.Background(), args, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Job.ID
}

// state returns a job's state and attempt.
func (e *env) state(id int64) (string, int) {
	e.t.Helper()
	var s string
	var a int
	if err := e.pool.QueryRow(context.Background(), "SELECT state::text, attempt FROM river_job WHERE id = $1", id).Scan(&s, &a); err != nil {
		e.t.Fatalf("job %d: %v", id, err)
	}
	return s, a
}

// waitState waits until a job is in state.
func (e *env) waitState(id int64, state string) {
	e.t.Helper()
	pgjobstest.WaitFor(e.t, fmt.Sprintf("job %d %s", id, state), 30*time.Second, func() (bool, error) {
		s, a := e.state(id)
		return s == state, fmt.Errorf("state %s, attempt %d", s, a)
	})
}

func pgxConnect(ctx context.Context, rawURL string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, rawURL)
}

// servicePlainRole is a role that may connect to e's database, no more.
func servicePlainRole(t *testing.T, e *env) string { return servicetest.PostgresRole(t, e.admin) }

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }
