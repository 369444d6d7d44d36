package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/gate"
	"github.com/twicehq/twice/twicetype"
)

// loadBaseline reads --baseline; nil without one. A baseline that cannot
// be read or is not a baseline is a usage error: the gate would
// otherwise fail every finding, or none.
func loadBaseline(path string) (*gate.Baseline, error) {
	if path == "" {
		return nil, nil
	}
	b, err := gate.ReadBaseline(path)
	if err != nil {
		return nil, usageErr("--baseline: %v", err)
	}
	return b, nil
}

// applyGate sets the report's CI gate from the baseline and the
// detector budgets of the configuration.
func applyGate(rep *twicetype.Report, cfg *config.Config, base *gate.Baseline, baselineName string) {
	budgets := map[string]*twicetype.Budget{}
	for id, d := range cfg.Detectors {
		if d.Budget != nil && d.Enabled {
			budgets[id] = d.Budget
		}
	}
	gate.Apply(rep, base, baselineName, budgets)
}

// readReportFile reads a JSON report of twice audit; "-" is stdin. A
// file that cannot be read is an input error, one that is not a JSON
// report a usage error.
func readReportFile(e env, path string) (*twicetype.Report, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		fh, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, inputErr(fmt.Errorf("report %s: no such file (write one with twice audit --format json -o %s)", path, path))
			}
			return nil, inputErr(fmt.Errorf("report: %w", err))
		}
		defer fh.Close()
		r = fh
	}
	rep, err := gate.ReadReport(r, path)
	if err != nil {
		if errors.Is(err, gate.ErrFormat) {
			return nil, usageErr("%v", err)
		}
		return nil, inputErr(err)
	}
	return rep, nil
}

func newBaselineCmd(e env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "baseline [-o FILE] REPORT.json",
		Short: "Accept the findings of a JSON report as the baseline of twice audit --baseline",
		Long: `baseline writes the fingerprints of every finding of REPORT.json (a report of
twice audit --format json; '-' is stdin), with each finding's detector,
severity and subject for people, as a baseline file. twice audit --baseline
FILE then fails only for findings not in it, and every report says which
findings are new and which findings of the baseline were fixed (no longer
found).

Commit the baseline beside the code. To accept a finding later, write the
baseline again from a newer report; to make an accepted finding fail again,
delete its entry.

Exit codes: 0 written, 2 usage error (REPORT.json is not a JSON report),
3 REPORT.json could not be read or FILE not written.`,
		Example: `  twice audit --format json -o report.json events.jsonl
  twice baseline -o baseline.json report.json
  twice audit --baseline baseline.json events.jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := readReportFile(e, args[0])
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			base := gate.FromFindings(rep.Findings)
			if err := base.Write(&buf); err != nil {
				return inputErr(err)
			}
			if output == "" {
				_, err := e.stdout.Write(buf.Bytes())
				return err
			}
			out, err := createReportFile(output)
			if err != nil {
				return usageErr("-o: %v", err)
			}
			defer out.abort()
			if err := out.commit(buf.Bytes()); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(e.stderr, "twice: %s: %d findings accepted\n", output, len(base.Findings))
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the baseline to FILE instead of stdout")
	return cmd
}
