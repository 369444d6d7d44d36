package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twicehq/twice/internal/watchtest"
)

func TestMain(m *testing.M) { os.Exit(watchtest.Main(m)) }

// promqlWords are the PromQL words that are no metric: aggregations,
// operators and modifiers.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true, "atan2": true,
}

var (
	promqlString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlGroup  = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdent  = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues  = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
)

// metricNames returns the metric names a PromQL expression reads: its
// identifiers, less strings, label matchers, ranges, grouping clauses,
// function calls and PromQL's own words. It is no parser (the Prometheus
// module is not a dependency of twice), but it errs loudly: a word it
// does not know is returned as a metric, which fails the test.
func metricNames(expr string) ([]string, error) {
	e := expr
	if m := labelValues.FindStringSubmatch(e); m != nil { // a Grafana variable's query
		e = m[1]
	}
	e = promqlString.ReplaceAllString(e, `""`)
	e = promqlGroup.ReplaceAllString(e, " ")
	if strings.ContainsAny(e, "{}[]") {
		return nil, fmt.Errorf("unbalanced braces or brackets in %q", expr)
	}
	var out []string
	for _, m := range promqlIdent.FindAllStringIndex(e, -1) {
		name := e[m[0]:m[1]]
		if m[0] > 0 && strings.ContainsAny(e[m[0]-1:m[0]], "0123456789.$") {
			continue // a number's exponent (1e5), a Grafana variable
		}
		call := strings.HasPrefix(strings.TrimLeft(e[m[1]:], " \t\n"), "(")
		if call || promqlWords[strings.ToLower(name)] {
			continue
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// TestMetricNames: the extraction finds the metrics and only them.
func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (source, kind) (rate(twice_events_total{job=~"$job", source=~"a|b"}[$__rate_interval]))`, []string{"twice_events_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(twice_checkpoint_duration_seconds_bucket[5m])))`, []string{"twice_checkpoint_duration_seconds_bucket"}},
		{`twice_store_backlog_records > 1e5 and delta(twice_store_backlog_records[15m]) > 0`, []string{"twice_store_backlog_records"}},
		{"a_total / on (job) group_left (x) b offset 5m or vector(0)", []string{"a_total", "b"}},
		{`count(up{x="twice_not_a_metric{"} == 0)`, []string{"up"}},
		{`sum(nosuch_metric)`, []string{"nosuch_metric"}},
		{`label_values(twice_source_up{job=~"$job"}, instance)`, []string{"twice_source_up"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: names %q, want %q", tc.expr, got, tc.want)
		}
	}
	if _, err := metricNames(`rate(x{a="b"[5m])`); err == nil {
		t.Error("unbalanced braces accepted")
	}
}

// declaredMetrics are the metric names twice's code declares to
// Prometheus, read from its Go source: the Name of every
// prometheus.{Counter,Gauge,Histogram,Summary}Opts literal and the first
// argument of every prometheus.NewDesc, with a histogram's and a summary's
// _bucket, _sum and _count series.
func declaredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(src), `"github.com/prometheus/client_golang/prometheus"`) {
			return err
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || !isPkg(sel.X, "prometheus") || !strings.HasSuffix(sel.Sel.Name, "Opts") {
					return true
				}
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Name") {
						if name, ok := stringLit(kv.Value); ok {
							out[name] = true
							if sel.Sel.Name == "HistogramOpts" || sel.Sel.Name == "SummaryOpts" {
								out[name+"_sum"], out[name+"_count"] = true, true
							}
							if sel.Sel.Name == "HistogramOpts" {
								out[name+"_bucket"] = true
							}
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && isPkg(sel.X, "prometheus") && sel.Sel.Name == "NewDesc" && len(n.Args) > 0 {
					if name, ok := stringLit(n.Args[0]); ok {
						out[name] = true
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatalf("reading the metrics the code declares: %v", err)
	}
	return out
}

func isPkg(e ast.Expr, name string) bool { return isIdent(e, name) }

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

var exported struct {
	sync.Once
	names  map[string]bool
	served map[string]bool
}

// exportedMetrics returns the metrics twice watch exports: those its code
// declares (families with labels appear on /metrics only once a series
// has them: a malformed message, a push request) and those a real
// `twice watch` serves on /metrics (the Go and process collectors'
// too). servedMetrics checks that the second are among the first.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	declared := declaredMetrics(t)
	served := servedMetrics(t)
	out := map[string]bool{}
	for n := range declared {
		out[n] = true
	}
	for n := range served {
		out[n] = true
	}
	return out
}

// servedMetrics starts a real twice watch on a file source with events
// (a receipt sent twice: a finding) and a malformed line and an ingest
// source, waits until it has audited
// them, and returns the metric names its /metrics serves.
func servedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	exported.Do(func() {
		bin := watchtest.Build(t)
		dir := t.TempDir()
		events := filepath.Join(dir, "events.jsonl")
		lines := `{"id": "e-1", "ts": "2026-11-24T10:00:00Z", "kind": "job.enqueued", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "key": "payment:1"}
{"id": "e-2", "ts": "2026-11-24T10:00:01Z", "kind": "job.started", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "attempt": 1}
not json at all
{"id": "e-3", "ts": "2026-11-24T10:00:02Z", "kind": "effect", "job_id": "j-1", "attempt": 1, "effect": "email.sent", "effect_key": "receipt/payment:1"}
{"id": "e-4", "ts": "2026-11-24T10:00:03Z", "kind": "effect", "job_id": "j-1", "attempt": 1, "effect": "email.sent", "effect_key": "receipt/payment:1"}
{"id": "e-5", "ts": "2026-11-24T10:00:04Z", "kind": "job.succeeded", "queue": "emails", "job_type": "SendReceipt", "job_id": "j-1", "attempt": 1}
`
		if err := os.WriteFile(events, []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "twice.yaml")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, `
sources:
  - {name: jobs, type: file, path: %s}
  - {name: api, type: ingest, listen: "127.0.0.1:0", token: s3cret}
expect:
  - {job_type: SendReceipt, effect: email.sent, effect_key: "receipt/{{key}}", within: 1m}
watch:
  state_dir: %s
  listen: "127.0.0.1:0"
  checkpoint_interval: 50ms
  findings: [{type: file, path: %s}]
`, events, filepath.Join(dir, "state"), filepath.Join(dir, "findings.jsonl")), 0o644); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, "watch.log")
		w := watchtest.Start(t, bin, cfg, logPath, 2)
		// An unauthorized request, so the push source's requests have a
		// result to count.
		addr := regexp.MustCompile(`source api: listening on https?://(\S+)`)
		var api string
		w.WaitFor(t, "the ingest source to listen", func() bool {
			raw, _ := os.ReadFile(logPath)
			if m := addr.FindStringSubmatch(string(raw)); m != nil {
				api = m[1]
			}
			return api != ""
		})
		if resp, err := http.Post("http://"+strings.TrimSuffix(api, "/")+"/v1/events", "application/json", strings.NewReader("{}")); err == nil {
			resp.Body.Close()
		}
		w.WaitFor(t, "5 events, a malformed line, a finding (a duplicate receipt) and a push request", func() bool {
			m := w.Metrics()
			return m["twice_events_total"] >= 5 && m["twice_malformed_total"] >= 1 && m["twice_findings"] >= 1 && m["twice_push_requests_total"] >= 1
		})
		exported.served = scrapeNames(t, w.Addr())
		w.Stop(t)
	})
	if exported.served == nil {
		t.Fatal("no metrics read from twice watch (an earlier test failed reading them)")
	}
	return exported.served
}

// scrapeNames returns the names of the samples GET /metrics at addr
// serves, every family's.
func scrapeNames(t *testing.T, addr string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %s", err, resp.Status)
	}
	out := map[string]bool{}
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			out[line[:i]] = true
		}
	}
	return out
}

// TestDeclaredMetricsAreServed: the names read from the code are those a
// real watch serves: every twice_ metric a watch serves is declared, and
// the sidecar's own are served.
func TestDeclaredMetricsAreServed(t *testing.T) {
	declared, served := declaredMetrics(t), servedMetrics(t)
	for name := range served {
		if strings.HasPrefix(name, "twice_") && !declared[name] {
			t.Errorf("twice watch serves %s, which the code scan did not find", name)
		}
	}
	for _, name := range []string{"twice_events_total", "twice_malformed_total", "twice_findings", "twice_source_up",
		"twice_checkpoint_duration_seconds_bucket", "twice_push_requests_total", "twice_store_backlog_records", "process_start_time_seconds"} {
		if !served[name] {
			t.Errorf("twice watch does not serve %s", name)
		}
	}
	if len(declared) < 30 {
		t.Errorf("the code scan found %d metrics, want 30 or more", len(declared))
	}
}

// grafanaDashboard is the part of a Grafana dashboard the tests read.
type grafanaDashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *grafanaDS      `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string     `json:"name"`
			Expr       string     `json:"expr"`
			Datasource *grafanaDS `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *grafanaDS     `json:"datasource"`
	Panels     []grafanaPanel `json:"panels"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID      string     `json:"refId"`
		Expr       string     `json:"expr"`
		Datasource *grafanaDS `json:"datasource"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "twice-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var d grafanaDashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/twice-dashboard.json: %v", err)
	}
	return d
}

// TestDashboardQueriesNameExportedMetrics: the dashboard parses, every
// query (panels, variables, annotations) reads only metrics twice watch
// exports, and the dashboard shows what an operator needs.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	d := readDashboard(t)
	exported := exportedMetrics(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		t.Helper()
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty query", where)
			return
		}
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		if len(names) == 0 {
			t.Errorf("%s: %q reads no metric", where, expr)
		}
		for _, n := range names {
			used[n] = true
			if !exported[n] {
				t.Errorf("%s: %q reads %s, which twice watch does not export", where, expr, n)
			}
		}
	}
	ids := map[int]bool{}
	var panels int
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			panels++
			if len(p.Targets) == 0 {
				t.Errorf("panel %q: no queries", p.Title)
			}
			for _, q := range p.Targets {
				check(fmt.Sprintf("panel %q query %s", p.Title, q.RefID), q.Expr)
			}
		}
	}
	walk(d.Panels)
	if panels < 10 {
		t.Errorf("%d panels, want 10 or more", panels)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			check("variable "+v.Name, v.Definition)
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil || q.Query != v.Definition {
				t.Errorf("variable %s: query %s is not its definition %q", v.Name, v.Query, v.Definition)
			}
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			check("annotation "+a.Name, a.Expr)
		}
	}
	// What the dashboard is for: findings, events per source, lag,
	// malformed and skipped messages, readiness, the store's backlog and
	// the push endpoints' refused requests.
	for _, n := range []string{"twice_findings", "twice_events_total", "twice_consumer_lag", "twice_watermark_delay_seconds",
		"twice_malformed_total", "twice_skipped_total", "twice_source_up", "twice_store_backlog_records",
		"twice_push_requests_total", "twice_publish_errors_total", "twice_coverage_lost_total", "twice_state_evicted",
		"twice_checkpoint_duration_seconds_bucket", "twice_webhook_requests_total"} {
		if !used[n] {
			t.Errorf("no panel shows %s", n)
		}
	}
}

// TestDashboardDatasourceIsAVariable: every panel, query, variable and
// annotation reads the Prometheus the user picks in the ${datasource}
// variable, so the dashboard imports into any Grafana unchanged.
func TestDashboardDatasourceIsAVariable(t *testing.T) {
	d := readDashboard(t)
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" {
			dsVar = v.Type == "datasource" && string(v.Query) == `"prometheus"`
		}
	}
	if !dsVar {
		t.Fatal(`no variable "datasource" of type datasource querying prometheus`)
	}
	isVar := func(where string, ds *grafanaDS) {
		t.Helper()
		if ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v, want {prometheus ${datasource}}", where, ds)
		}
	}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			isVar(fmt.Sprintf("panel %q", p.Title), p.Datasource)
			for _, q := range p.Targets {
				isVar(fmt.Sprintf("panel %q query %s", p.Title, q.RefID), q.Datasource)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			isVar("variable "+v.Name, v.Datasource)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			isVar("annotation "+a.Name, a.Datasource)
		}
	}
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard without uid or title")
	}
}
