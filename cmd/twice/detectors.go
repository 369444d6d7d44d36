package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/detectors"
	"github.com/twicehq/twice/twicetype"
)

// detectorRules says, per detector, what it finds (one sentence) and what
// a finding's subject is. Defaults, severities and keys come from the
// code (detectors.DefaultSettings, config.DetectorKeys), not from here.
var detectorRules = map[string]struct{ rule, subject string }{
	twicetype.DuplicateEffect: {"One effect_key was observed more than max_per_key times: two receipts for one payment.",
		"effect_key"},
	twicetype.MissingEffect: {"A job of an expect rule's job_type succeeded, and fewer than the rule's count effects of its type and effect_key followed within its within.",
		"job_id"},
	twicetype.EffectBeforeFailure: {"An attempt produced an effect, then failed, went dead or was retried without succeeding: the crash window, where the retry repeats the effect.",
		"job_id"},
	twicetype.DuplicateExecution: {"A job started again after one of its attempts had succeeded: a lost ack or a visibility timeout.",
		"job_id"},
	twicetype.OutOfOrder: {"An effect or state of an entity carried a seq lower than one already seen for that entity: an older update landed last.",
		"entity"},
	twicetype.StaleExecution: {"A job's first start came more than max_start_delay after its enqueue, or an attempt started behind a newer seq of its entity.",
		"job_id"},
	twicetype.EffectAfterTerminal: {"An effect on an entity came after a state that marked the entity terminal: a receipt after a refund.",
		"effect_key"},
	twicetype.LostJob: {"A job enqueued or started saw no succeeded, dead or discarded event within lost_after of its latest activity.",
		"job_id"},
	twicetype.RetryStorm: {"In a window of one queue, attempts started per distinct job started reached amplification, with at least min_attempts attempts.",
		"queue@window start"},
	twicetype.DeadLetter: {"Jobs of a queue went dead and were never enqueued again nor succeeded.",
		"queue"},
}

// detectorInfo is one detector as twice detectors shows it.
type detectorInfo struct {
	ID       string            `json:"id"`
	Severity string            `json:"severity"`
	Rule     string            `json:"rule"`
	Subject  string            `json:"subject"`
	Defaults map[string]string `json:"defaults"`
	Keys     []string          `json:"keys"`
	// thresholds keeps the defaults' keys in config order for text.
	thresholds []string
}

// detectorCatalog lists every detector in the order of spec §2, with the
// defaults of settings.
func detectorCatalog(settings map[string]detectors.Settings) ([]detectorInfo, error) {
	var out []detectorInfo
	for _, id := range twicetype.DetectorIDs {
		r, ok := detectorRules[id]
		if !ok {
			return nil, fmt.Errorf("detector %s has no rule sentence in twice detectors", id)
		}
		st := settings[id]
		info := detectorInfo{ID: id, Severity: st.Severity.String(), Rule: r.rule, Subject: r.subject,
			Defaults: map[string]string{}, Keys: config.DetectorKeys(id), thresholds: config.ThresholdKeys(id)}
		for _, k := range info.thresholds {
			v, ok := config.ThresholdValue(st, k)
			if !ok {
				return nil, fmt.Errorf("detector %s: no value for %s", id, k)
			}
			info.Defaults[k] = v
		}
		out = append(out, info)
	}
	return out, nil
}

func newDetectorsCmd(e env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "detectors",
		Short: "List the detectors: what each finds, its default severity and thresholds, and the keys that change them",
		Long: `detectors lists every detector twice runs: the rule it checks, what its
findings are about (the subject), its default severity and thresholds, and
the keys of twice.yaml that change them (under detectors.ID; see
docs/configuration.md). Every detector is on by default.`,
		Example: `  twice detectors
  twice detectors --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := detectorCatalog(detectors.DefaultSettings())
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			switch strings.ToLower(format) {
			case "text":
				writeDetectorsText(&buf, cat)
			case "json":
				enc := json.NewEncoder(&buf)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				if err := enc.Encode(cat); err != nil {
					return err
				}
			default:
				return usageErr("--format: want text or json, got %q", format)
			}
			_, err = e.stdout.Write(buf.Bytes())
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "text|json")
	return cmd
}

func writeDetectorsText(b *bytes.Buffer, cat []detectorInfo) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for i, d := range cat {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "%s (%s)\n", d.ID, d.Severity)
		fmt.Fprintf(tw, "  rule\t%s\n", d.Rule)
		fmt.Fprintf(tw, "  subject\t%s\n", d.Subject)
		defaults := make([]string, 0, len(d.thresholds))
		for _, k := range d.thresholds {
			defaults = append(defaults, k+": "+d.Defaults[k])
		}
		if d.ID == twicetype.MissingEffect {
			defaults = append(defaults, fmt.Sprintf("its expectations are the expect rules of twice.yaml (within %s, count 1 unless a rule says otherwise)",
				config.ShortDuration(config.DefaultWithin)))
		}
		if len(defaults) == 0 {
			defaults = append(defaults, "no thresholds")
		}
		fmt.Fprintf(tw, "  defaults\t%s\n", strings.Join(defaults, ", "))
		fmt.Fprintf(tw, "  keys\tdetectors.%s.{%s}\n", d.ID, strings.Join(d.Keys, ", "))
	}
	tw.Flush()
	b.WriteString("\nSet them in twice.yaml, e.g.\n  detectors:\n    lost-job: {lost_after: 2h, severity: critical}\n    duplicate-effect: {budget: {max: 5}}\n")
}
