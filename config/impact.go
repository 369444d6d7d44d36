package config

import (
	"fmt"
	"strings"

	"github.com/twicehq/twice/keytemplate"
	"go.yaml.in/yaml/v3"
)

// Impact says where an effect's amount, currency and customer are read,
// for the impact of duplicate effects (twice.yaml impact). Each is a path
// as effect_key templates read fields: attrs.NAME (attrs.a.b for nested
// objects), key, entity, job_id, job_type or queue; "" when not set. The
// effect event's own value is used first, then that of the first job the
// effect key links to.
type Impact struct {
	Amount, Currency, Customer string
	// Line is where impact is written in the file, 0 when built in code.
	Line int
}

// impactKeys are the keys of impact.
var impactKeys = []string{"amount", "currency", "customer"}

// checkImpactPath checks one impact path.
func checkImpactPath(path string) string {
	if path == "" {
		return "must not be empty"
	}
	if strings.ContainsAny(path, "{}") {
		return fmt.Sprintf("want a path such as attrs.amount, got %q", path)
	}
	if _, err := keytemplate.Parse("{{" + path + "}}"); err != nil {
		return fmt.Sprintf("%q: %v", path, err)
	}
	return ""
}

func (p *parser) impact(n *yaml.Node, path string) *Impact {
	im := &Impact{Line: resolve(n).Line}
	es, _ := p.fields(n, path, impactKeys)
	for _, e := range es {
		epath := join(path, e.name)
		s, ok := p.str(e.val, epath)
		if !ok {
			continue
		}
		p.check(resolve(e.val), epath, checkImpactPath(s))
		switch e.name {
		case "amount":
			im.Amount = s
		case "currency":
			im.Currency = s
		case "customer":
			im.Customer = s
		}
	}
	return im
}

// checkImpact checks an Impact built in code.
func checkImpact(im *Impact, add func(path, format string, args ...any)) {
	if im == nil {
		return
	}
	for _, f := range []struct{ key, path string }{{"amount", im.Amount}, {"currency", im.Currency}, {"customer", im.Customer}} {
		if f.path == "" {
			continue
		}
		if msg := checkImpactPath(f.path); msg != "" {
			add("impact."+f.key, "%s", msg)
		}
	}
}
