package simulate_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/simulate"
	"github.com/twicehq/twice/twicetype"
)

// generate writes a stream to a file and returns its path, truth and stats.
func generate(t *testing.T, opts simulate.Options) (string, *simulate.Truth, *simulate.Stats) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	truth, st, err := simulate.Generate(func(l []byte) error {
		bw.Write(l)
		return bw.WriteByte('\n')
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, truth, st
}

// auditFile audits path in-process with the generated twice.yaml.
func auditFile(t *testing.T, path string) *twicetype.Report {
	t.Helper()
	cfg, err := config.Parse("twice.yaml", []byte(simulate.ConfigYAML()))
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(audit.EngineOptions(cfg))
	if err := engine.Run(context.Background(), eng, []collectors.Collector{file.New(path, file.Options{})}); err != nil {
		t.Fatal(err)
	}
	return eng.Finish()
}

// allFaults gives every fault a rate high enough to show in a small run.
func allFaults() map[string]float64 {
	r := map[string]float64{}
	for _, f := range simulate.Faults {
		r[f] = 0.03
	}
	r[simulate.FaultRetryStorm] = 0.01
	return r
}

func TestGeneratedStreamScoresExactly(t *testing.T) {
	cases := []struct {
		name  string
		opts  simulate.Options
		noisy bool
	}{
		{name: "small", opts: simulate.Options{Seed: 1, Jobs: 400, Rates: allFaults(), Tail: 2 * time.Hour}},
		{name: "small-noisy", opts: simulate.Options{Seed: 2, Jobs: 400, Rates: allFaults(), Tail: 2 * time.Hour, Noise: simulate.Noise{Reorder: 0.3, Repeat: 0.05, Malformed: 0.02}}, noisy: true},
		{name: "no-tail-pending", opts: simulate.Options{Seed: 3, Jobs: 3000, Rates: allFaults()}},
		{name: "events-noisy", opts: simulate.Options{Seed: 4, Events: 60000, Rates: simulate.DefaultRates(), Tail: 2 * time.Hour, Noise: simulate.DefaultNoise}, noisy: true},
		{name: "defaults", opts: simulate.Options{Seed: 5, Events: 40000, Rates: simulate.DefaultRates(), Tail: time.Hour + time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			path, truth, st := generate(t, c.opts)
			rep := auditFile(t, path)
			d := simulate.Compare(truth.Findings, simulate.FromFindings(rep.Findings))
			if !d.OK(true) {
				var b bytes.Buffer
				d.WriteDiff(&b, "  ", true, 20)
				t.Fatalf("the audit does not match the truth (%d expected, %d reported):\n%s", len(truth.Findings), len(rep.Findings), b.String())
			}
			for _, s := range simulate.ScoreDiff(d) {
				if s.Precision != 1 || s.Recall != 1 {
					t.Errorf("%s: precision %.3f recall %.3f", s.Detector, s.Precision, s.Recall)
				}
			}
			// The audit counted what the generator wrote.
			if rep.Summary.Events != st.Events || rep.Summary.RepeatedIDs != st.Repeated || rep.Summary.Malformed != st.Malformed {
				t.Errorf("summary events/repeated/malformed = %d/%d/%d, generator wrote %d/%d/%d",
					rep.Summary.Events, rep.Summary.RepeatedIDs, rep.Summary.Malformed, st.Events, st.Repeated, st.Malformed)
			}
			if rep.Summary.Late != 0 {
				t.Errorf("summary.late = %d: noise moved lines past the reorder buffer", rep.Summary.Late)
			}
			if c.noisy && (st.Repeated == 0 || st.Malformed == 0) {
				t.Errorf("noisy run wrote %d repeated and %d malformed lines; want some of each", st.Repeated, st.Malformed)
			}
			// Small runs exercise every detector; the truth is not empty.
			if c.opts.Jobs == 400 || c.name == "events-noisy" {
				seen := map[string]bool{}
				for _, f := range truth.Findings {
					seen[f.Detector] = true
				}
				for _, det := range twicetype.DetectorIDs {
					if !seen[det] {
						t.Errorf("no %s finding in the truth: the run does not exercise it", det)
					}
				}
			}
			t.Logf("%d lines, %d events, %d jobs, %d findings, %d pending", st.Lines, st.Events, st.Jobs, len(truth.Findings), rep.Summary.Pending)
		})
	}
}

func TestPendingDeadlinesAreNotInTheTruth(t *testing.T) {
	// Only lost jobs, and no tail: the last ones are pending.
	opts := simulate.Options{Seed: 9, Jobs: 3000, Rates: map[string]float64{simulate.FaultLostJob: 0.05}}
	path, truth, _ := generate(t, opts)
	rep := auditFile(t, path)
	if rep.Summary.Pending == 0 {
		t.Fatal("no pending deadline: the test does not exercise the end-of-input rule")
	}
	if n := len(truth.Findings); n == 0 || int64(n) >= truth.Faults[simulate.FaultLostJob] {
		t.Fatalf("truth has %d lost jobs of %d injected; want some but not all", n, truth.Faults[simulate.FaultLostJob])
	}
	d := simulate.Compare(truth.Findings, simulate.FromFindings(rep.Findings))
	if !d.OK(true) {
		var b bytes.Buffer
		d.WriteDiff(&b, "  ", true, 20)
		t.Fatal(b.String())
	}
}

func TestSameSeedSameBytes(t *testing.T) {
	opts := simulate.Options{Seed: 7, Jobs: 300, Rates: allFaults(), Noise: simulate.DefaultNoise}
	a, _, _ := generate(t, opts)
	b, _, _ := generate(t, opts)
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("the same options wrote different streams")
	}
	opts.Seed = 8
	c, _, _ := generate(t, opts)
	dc, _ := os.ReadFile(c)
	if bytes.Equal(da, dc) {
		t.Fatal("another seed wrote the same stream")
	}
}

func TestScoreCatchesAWrongReport(t *testing.T) {
	path, truth, _ := generate(t, simulate.Options{Seed: 11, Jobs: 400, Rates: allFaults(), Tail: 2 * time.Hour})
	got := simulate.FromFindings(auditFile(t, path).Findings)
	if len(got) < 3 {
		t.Fatalf("only %d findings", len(got))
	}
	// Drop one finding, add a made-up one, and change a cause.
	wrong := append([]simulate.Got(nil), got[1:]...)
	wrong = append(wrong, simulate.Got{Detector: twicetype.LostJob, Subject: "j-made-up", Severity: twicetype.High})
	for i := range wrong {
		if wrong[i].Detector == twicetype.DuplicateEffect {
			wrong[i].Cause = "unknown"
			break
		}
	}
	d := simulate.Compare(truth.Findings, wrong)
	if d.OK(true) {
		t.Fatal("a wrong report compared as right")
	}
	low := map[string]string{}
	for _, s := range simulate.ScoreDiff(d) {
		if s.Precision < 1 || s.Recall < 1 {
			low[s.Detector] = fmt.Sprintf("p=%.3f r=%.3f", s.Precision, s.Recall)
		}
	}
	if _, ok := low[got[0].Detector]; !ok {
		t.Errorf("dropping a %s finding did not lower its recall: %v", got[0].Detector, low)
	}
	if _, ok := low[twicetype.LostJob]; !ok {
		t.Errorf("a made-up lost-job did not lower its precision: %v", low)
	}
	if _, ok := low[twicetype.DuplicateEffect]; !ok {
		t.Errorf("a wrong cause did not lower duplicate-effect: %v", low)
	}
	var b bytes.Buffer
	simulate.WriteScores(&b, simulate.ScoreDiff(d))
	if !strings.Contains(b.String(), "precision") {
		t.Errorf("score table without header:\n%s", b.String())
	}
}
