package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/twicehq/twice/internal/servicetest"
)

// promtool returns the path of promtool (scripts/deps.d/prometheus.sh
// installs it); without it the test skips, or fails with
// TWICE_REQUIRE_SERVICES=1.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool is not on the PATH: install it with scripts/deps.d/prometheus.sh"
		if os.Getenv(servicetest.EnvRequire) == "1" {
			t.Fatalf("%s (%s=1 requires it)", msg, servicetest.EnvRequire)
		}
		t.Skipf("skipped: %s", msg)
	}
	return p
}

// TestAlertRulesCheck: promtool accepts the alerting rules (syntax,
// PromQL, templates) and finds all of them.
func TestAlertRulesCheck(t *testing.T) {
	bin := promtool(t)
	out, err := exec.Command(bin, "check", "rules", filepath.Join("prometheus", "twice-alerts.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 12 rules found") {
		t.Errorf("promtool check rules: want 12 rules found:\n%s", out)
	}
}

// TestAlertRulesUnit runs the rules' unit tests (twice-alerts.test.yml):
// series as twice watch exports them, and the alerts that must fire and
// must not.
func TestAlertRulesUnit(t *testing.T) {
	bin := promtool(t)
	cmd := exec.Command(bin, "test", "rules", "twice-alerts.test.yml")
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules: no SUCCESS:\n%s", out)
	}
}

// TestAlertRulesNameExportedMetrics: every metric an alert reads is one
// twice watch exports.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("prometheus", "twice-alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	exported := exportedMetrics(t)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yamlv3.Unmarshal(raw, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
			}
			for _, name := range names {
				if !exported[name] {
					t.Errorf("alert %s reads %s, which twice watch does not export", r.Alert, name)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no rules read")
	}
}

// TestDashboardQueriesParse: every query of the Grafana dashboard is
// PromQL that Prometheus parses, once Grafana's variables are replaced by
// values: each is put in a recording rule and checked by promtool.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	d := readDashboard(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$job", ".*", "$instance", ".*", "$source", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			walk(p.Panels)
			for _, q := range p.Targets {
				rules = append(rules, rule{Record: fmt.Sprintf("dashboard:panel%d_%s", p.ID, strings.ToLower(q.RefID)), Expr: vars.Replace(q.Expr)})
			}
		}
	}
	walk(d.Panels)
	for i, a := range d.Annotations.List {
		if a.Expr != "" {
			rules = append(rules, rule{Record: fmt.Sprintf("dashboard:annotation%d", i), Expr: vars.Replace(a.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			rules = append(rules, rule{Record: "dashboard:variable_" + v.Name, Expr: vars.Replace(m[1])})
		}
	}
	if len(rules) < 20 {
		t.Fatalf("%d queries read from the dashboard", len(rules))
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}}
	raw, err := yamlv3.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "check", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules over the dashboard's queries: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(string(out), want) {
		t.Errorf("promtool: want %q:\n%s", want, out)
	}
}
