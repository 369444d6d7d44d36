package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/twicehq/twice/audit"
	"github.com/twicehq/twice/collectors"
	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/engine"
	"github.com/twicehq/twice/simulate"
	"github.com/twicehq/twice/twicetype"
)

func newTestCmd(e env) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run scenario files: events and the findings they must produce",
		Long: `twice test runs scenario files kept beside twice.yaml, in the spirit of
promtool test rules. Each scenario audits its events (inline, or files) with
a configuration (a file, or inline) and checks the findings: every expected
finding (detector and subject; severity, cause and count when given) must
be reported, and with no_other_findings nothing else may be.

  config: twice.yaml
  scenarios:
    - name: a crash after the send repeats the receipt
      events: |
        {"ts":"2026-11-24T10:00:00Z","kind":"job.enqueued","job_type":"SendReceipt","job_id":"j-1","key":"payment:1"}
        ...
      findings:
        - {detector: duplicate-effect, subject: receipt/payment:1, cause: redelivery}
      no_other_findings: true

Exit 0 when every scenario passes, 1 when one fails, 2 when a file is not
a valid scenario file (the error names the file and line).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTests(cmd.Context(), e, args, quiet)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only failing scenarios and the total")
	return cmd
}

// scenarioFile is a parsed scenario file.
type scenarioFile struct {
	path      string
	scenarios []*testScenario
}

// testScenario is one scenario of a file.
type testScenario struct {
	name     string
	line     int
	cfg      *config.Config
	inputs   []string // files
	events   string   // inline JSON Lines
	inline   bool
	want     []simulate.Expected
	noOthers bool
}

func runTests(ctx context.Context, e env, paths []string, quiet bool) error {
	var bad, passed, failed int
	for _, p := range paths {
		sf, err := loadScenarioFile(p)
		if err != nil {
			fmt.Fprintf(e.stderr, "twice: %v\n", err)
			bad++
			continue
		}
		if !quiet {
			fmt.Fprintln(e.stdout, p)
		}
		for _, sc := range sf.scenarios {
			rep, err := sc.run(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return inputErr(err)
				}
				fmt.Fprintf(e.stdout, "  FAIL  %s (line %d)\n        %v\n", sc.name, sc.line, err)
				failed++
				continue
			}
			d := simulate.Compare(sc.want, simulate.FromFindings(rep.Findings))
			if d.OK(sc.noOthers) {
				passed++
				if !quiet {
					fmt.Fprintf(e.stdout, "  PASS  %s\n", sc.name)
				}
				continue
			}
			failed++
			if quiet {
				fmt.Fprintf(e.stdout, "%s:%d: ", p, sc.line)
			}
			fmt.Fprintf(e.stdout, "  FAIL  %s (line %d)\n", sc.name, sc.line)
			d.WriteDiff(e.stdout, "        ", sc.noOthers, 0)
		}
	}
	fmt.Fprintf(e.stdout, "%d scenarios: %d passed, %d failed", passed+failed, passed, failed)
	if bad > 0 {
		fmt.Fprintf(e.stdout, "; %d file(s) not valid", bad)
	}
	fmt.Fprintln(e.stdout)
	switch {
	case bad > 0:
		return &exitError{code: exitUsage}
	case failed > 0:
		return &exitError{code: exitFindings}
	}
	return nil
}

// run audits the scenario's events with its configuration.
func (sc *testScenario) run(ctx context.Context) (*twicetype.Report, error) {
	var cols []collectors.Collector
	if sc.inline {
		cols = append(cols, file.New("-", file.Options{Stdin: strings.NewReader(sc.events)}))
	}
	for _, p := range sc.inputs {
		cols = append(cols, file.New(p, file.Options{}))
	}
	eng := engine.New(audit.EngineOptions(sc.cfg))
	if err := engine.Run(ctx, eng, cols); err != nil {
		return nil, err
	}
	return eng.Finish(), nil
}

// scenarioError names the file and line of a problem in a scenario file.
func scenarioError(path string, n *yaml.Node, format string, a ...any) error {
	if n == nil {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...))
	}
	return fmt.Errorf("%s:%d: %s", path, n.Line, fmt.Sprintf(format, a...))
}

// mappingKeys returns the values of a mapping by key, rejecting keys
// not in allowed.
func mappingKeys(path string, n *yaml.Node, what string, allowed ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, scenarioError(path, n, "%s: want a mapping", what)
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !slices.Contains(allowed, k.Value) {
			return nil, scenarioError(path, k, "%s: unknown key %q (want %s)", what, k.Value, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, scenarioError(path, k, "%s: key %q given twice", what, k.Value)
		}
		out[k.Value] = n.Content[i+1]
	}
	return out, nil
}

func loadScenarioFile(path string) (*scenarioFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: empty scenario file", path)
	}
	top, err := mappingKeys(path, doc.Content[0], "scenario file", "config", "scenarios")
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	lines := strings.Split(string(data), "\n")
	var fileCfg *config.Config
	if n := top["config"]; n != nil {
		if fileCfg, err = scenarioConfig(path, dir, lines, n); err != nil {
			return nil, err
		}
	}
	list := top["scenarios"]
	if list == nil || list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		return nil, scenarioError(path, doc.Content[0], "want a list of scenarios under scenarios:")
	}
	sf := &scenarioFile{path: path}
	for i, n := range list.Content {
		keys, err := mappingKeys(path, n, fmt.Sprintf("scenario %d", i+1),
			"name", "config", "input", "events", "findings", "no_other_findings")
		if err != nil {
			return nil, err
		}
		sc := &testScenario{name: fmt.Sprintf("scenario %d", i+1), line: n.Line, cfg: fileCfg}
		if v := keys["name"]; v != nil {
			sc.name = v.Value
		}
		if v := keys["config"]; v != nil {
			if sc.cfg, err = scenarioConfig(path, dir, lines, v); err != nil {
				return nil, err
			}
		}
		if sc.cfg == nil {
			sc.cfg = config.Default()
		}
		if v := keys["input"]; v != nil {
			var in []string
			if v.Kind == yaml.ScalarNode {
				in = []string{v.Value}
			} else if err := v.Decode(&in); err != nil {
				return nil, scenarioError(path, v, "input: want a file or a list of files")
			}
			for _, p := range in {
				if !filepath.IsAbs(p) {
					p = filepath.Join(dir, p)
				}
				if _, err := os.Stat(p); err != nil {
					return nil, scenarioError(path, v, "input: %v", err)
				}
				sc.inputs = append(sc.inputs, p)
			}
		}
		if v := keys["events"]; v != nil {
			if sc.events, err = inlineEvents(path, v); err != nil {
				return nil, err
			}
			sc.inline = true
		}
		if !sc.inline && len(sc.inputs) == 0 {
			return nil, scenarioError(path, n, "%s: no events: give events (inline) or input (files)", sc.name)
		}
		if v := keys["no_other_findings"]; v != nil {
			if err := v.Decode(&sc.noOthers); err != nil {
				return nil, scenarioError(path, v, "no_other_findings: want true or false")
			}
		}
		if v := keys["findings"]; v != nil {
			if sc.want, err = expectedFindings(path, v); err != nil {
				return nil, err
			}
		}
		sf.scenarios = append(sf.scenarios, sc)
	}
	return sf, nil
}

// scenarioConfig reads a scenario's configuration: a file named relative
// to the scenario file, or an inline mapping, parsed from the scenario
// file's own lines so that its errors name the scenario file's lines.
func scenarioConfig(path, dir string, lines []string, n *yaml.Node) (*config.Config, error) {
	if n.Kind == yaml.ScalarNode {
		p := n.Value
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		cfg, err := config.Load(p)
		if err != nil {
			return nil, scenarioError(path, n, "config: %v", err)
		}
		return cfg, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, scenarioError(path, n, "config: want a file name or a mapping")
	}
	// Keep the mapping's lines where they are and blank the others: the
	// mapping may be indented, YAML allows it.
	indent := n.Column - 1
	text := make([]string, len(lines))
	start := n.Line - 1
	if start >= len(lines) || indent > len(lines[start]) {
		return nil, scenarioError(path, n, "config: cannot locate the inline mapping")
	}
	text[start] = strings.Repeat(" ", indent) + lines[start][indent:]
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimLeft(l, " ")
		if trimmed != "" && !strings.HasPrefix(trimmed, "#") && len(l)-len(trimmed) < indent {
			break
		}
		text[i] = l
	}
	cfg, err := config.Parse(path, []byte(strings.Join(text, "\n")))
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// inlineEvents returns a scenario's inline events as JSON Lines: a block
// of JSON Lines as written, or a YAML list of events.
func inlineEvents(path string, n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		var b bytes.Buffer
		for _, item := range n.Content {
			if item.Kind != yaml.MappingNode {
				return "", scenarioError(path, item, "events: want a mapping per event")
			}
			v, err := yamlToJSON(item)
			if err != nil {
				return "", scenarioError(path, item, "events: %v", err)
			}
			data, err := json.Marshal(v)
			if err != nil {
				return "", scenarioError(path, item, "events: %v", err)
			}
			b.Write(data)
			b.WriteByte('\n')
		}
		return b.String(), nil
	}
	return "", scenarioError(path, n, "events: want JSON Lines (a block scalar) or a list of events")
}

// yamlToJSON converts a node to values encoding/json writes as written:
// scalars keep their text (a timestamp stays the string it was), so a
// YAML event means what the same JSON line means.
func yamlToJSON(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := yamlToJSON(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			v, err := yamlToJSON(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			return json.Number(n.Value), nil
		case "!!bool":
			return n.Value == "true", nil
		case "!!null":
			return nil, nil
		}
		return n.Value, nil
	case yaml.AliasNode:
		return yamlToJSON(n.Alias)
	}
	return nil, errors.New("unsupported YAML value")
}

// expectedFindings reads a scenario's findings list.
func expectedFindings(path string, n *yaml.Node) ([]simulate.Expected, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, scenarioError(path, n, "findings: want a list")
	}
	out := make([]simulate.Expected, 0, len(n.Content))
	for _, item := range n.Content {
		keys, err := mappingKeys(path, item, "finding", "detector", "subject", "severity", "cause", "count")
		if err != nil {
			return nil, err
		}
		var f simulate.Expected
		if err := item.Decode(&f); err != nil {
			return nil, scenarioError(path, item, "finding: %v", err)
		}
		if !slices.Contains(twicetype.DetectorIDs, f.Detector) {
			return nil, scenarioError(path, item, "finding: unknown detector %q (want one of %s)", f.Detector, strings.Join(twicetype.DetectorIDs, ", "))
		}
		if f.Subject == "" {
			return nil, scenarioError(path, item, "finding: no subject")
		}
		if f.Severity != "" {
			if s, err := twicetype.ParseSeverity(f.Severity); err != nil || s == twicetype.SeverityNone {
				return nil, scenarioError(path, keys["severity"], "finding: severity %q: want critical, high, medium or low", f.Severity)
			}
		}
		if f.Count < 0 {
			return nil, scenarioError(path, keys["count"], "finding: count must be 1 or more")
		}
		out = append(out, f)
	}
	return out, nil
}
