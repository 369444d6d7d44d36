package detectors

import (
	"strconv"

	"github.com/twicehq/twice/twicetype"
)

// ImpactValues reads what an effect puts at stake: its amount (a number,
// as written), currency and customer. ok is false for a value the event
// or job does not carry. Package audit builds it from twice.yaml impact.
type ImpactValues struct {
	// Event reads the values from an effect event.
	Event func(ev *twicetype.Event) (amount, currency, customer string)
	// Job reads them from a job, for the values an effect lacks: the
	// first job its key links to.
	Job func(j *Job) (amount, currency, customer string)
	// CurrencyPath and CustomerPath are the configured paths
	// ("attrs.customer"): the field names Options.Redact is asked about.
	CurrencyPath, CustomerPath string
}

// keyImpact is what an effect key's effects put at stake: the first
// value seen of each. An EffectKey holds one only when impact is
// configured.
type keyImpact struct {
	amount, currency, customer string
}

// noteImpact keeps the impact values of an effect on its key, the first
// seen of each.
func (s *Set) noteImpact(k *EffectKey, ev *twicetype.Event) {
	iv := s.opts.Impact
	if iv == nil || iv.Event == nil {
		return
	}
	a, c, u := iv.Event(ev)
	if a == "" && c == "" && u == "" {
		return
	}
	if k.impact == nil {
		k.impact = &keyImpact{}
	}
	m := k.impact
	if m.amount == "" {
		m.amount = a
	}
	if m.currency == "" {
		m.currency = c
	}
	if m.customer == "" {
		m.customer = u
	}
}

// impactDetails adds details amount (n-1 times the effect's amount),
// currency and customers (the distinct customers, redacted like the
// customer path when configured) to a duplicate-effect finding of key k
// seen n times; jobs are its linked jobs in order, for the values the
// effects lack.
func (s *Set) impactDetails(f *twicetype.Finding, k *EffectKey, n int, jobs []*Job) {
	iv := s.opts.Impact
	if iv == nil {
		return
	}
	var a, c string
	var customers []any
	seen := map[string]bool{}
	addCustomer := func(u string) {
		if u == "" {
			return
		}
		u = s.show(iv.CustomerPath, u)
		if !seen[u] {
			seen[u] = true
			customers = append(customers, u)
		}
	}
	if m := k.impact; m != nil {
		a, c = m.amount, m.currency
		addCustomer(m.customer)
	}
	if iv.Job != nil {
		for _, j := range jobs {
			if j == nil {
				continue
			}
			ja, jc, ju := iv.Job(j)
			if a == "" {
				a = ja
			}
			if c == "" {
				c = jc
			}
			addCustomer(ju)
		}
	}
	if v, err := strconv.ParseFloat(a, 64); err == nil && a != "" {
		f.Details["amount"] = float64(n-1) * v
	}
	if c != "" {
		f.Details["currency"] = s.show(iv.CurrencyPath, c)
	}
	if customers == nil {
		customers = []any{}
	}
	f.Details["customers"] = customers
}

// ImpactOf adds up what findings put at stake (twicetype.Impact): the
// amounts and customers of duplicate-effect findings (details amount,
// currency and customers) and the out-of-order findings whose entity was
// left stale (details final_stale). The SQL audit of storage/clickhouse
// uses it too.
func ImpactOf(findings []twicetype.Finding) *twicetype.Impact {
	im := &twicetype.Impact{DuplicatedAmount: map[string]float64{}}
	customers := map[string]bool{}
	for i := range findings {
		f := &findings[i]
		switch f.Detector {
		case twicetype.DuplicateEffect:
			if a, ok := f.Details["amount"].(float64); ok {
				c, _ := f.Details["currency"].(string)
				im.DuplicatedAmount[c] += a
			}
			if l, ok := f.Details["customers"].([]any); ok {
				for _, u := range l {
					if u, ok := u.(string); ok {
						customers[u] = true
					}
				}
			}
		case twicetype.OutOfOrder:
			if stale, _ := f.Details["final_stale"].(bool); stale {
				im.StaleEntities++
			}
		}
	}
	im.Customers = int64(len(customers))
	return im
}
