package river

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/twicehq/twice/collectors/pgjobs"
)

// River migrated into a schema of its own (River's Config.Schema): the
// source's schema key reads that river_job, with the GRANTs on that
// schema, and wakes on that schema's insert channel.
func TestSchema(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	role := pgx.Identifier{userOf(t, e.reader)}.Sanitize()
	if _, err := e.pool.Exec(ctx, "CREATE SCHEMA jobs; GRANT USAGE ON SCHEMA jobs TO "+role); err != nil {
		t.Fatal(err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(e.pool), &rivermigrate.Config{Schema: "jobs"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "GRANT SELECT ON jobs.river_job TO "+role); err != nil {
		t.Fatal(err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &receiptWorker{e: e})
	c, err := river.NewClient(riverpgxv5.New(e.pool), &river.Config{Schema: "jobs", Workers: workers,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := newStream(t, e, pgjobs.Config{Schema: "jobs", Key: "args.payment", PollInterval: time.Hour})
	if err := s.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if got := s.Lanes(); !slices.Equal(got, []string{"jobs.river_job"}) {
		t.Errorf("lanes %q", got)
	}
	if recs := poll(t, s); len(recs) != 0 {
		t.Fatalf("an empty table: %q", describe(recs))
	}
	res, err := c.Insert(ctx, ReceiptArgs{Payment: "p-1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Poll(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(recs), []string{fmt.Sprintf("%d job.enqueued", res.Job.ID)}; !slices.Equal(got, want) {
		t.Errorf("after an insert into jobs.river_job: %q, want %q", got, want)
	}
	if len(recs) == 1 && recs[0].Event.Key != "p-1" {
		t.Errorf("key %q", recs[0].Event.Key)
	}
}
