package reports

import (
	"testing"

	"github.com/twicehq/twice/twicetype"
)

func TestImpactLine(t *testing.T) {
	for _, c := range []struct {
		im   twicetype.Impact
		want string
	}{
		{twicetype.Impact{}, "0 duplicated, 0 customers got a duplicate, 0 entities left stale"},
		{twicetype.Impact{DuplicatedAmount: map[string]float64{"USD": 12.5, "EUR": 10, "": 3}, Customers: 1, StaleEntities: 1},
			"3, EUR 10, USD 12.5 duplicated, 1 customer got a duplicate, 1 entity left stale"},
		{twicetype.Impact{DuplicatedAmount: map[string]float64{"JPY": 1e9}, Customers: 2, StaleEntities: 3},
			"JPY 1000000000 duplicated, 2 customers got a duplicate, 3 entities left stale"},
	} {
		if got := ImpactLine(&c.im); got != c.want {
			t.Errorf("ImpactLine(%+v) = %q, want %q", c.im, got, c.want)
		}
	}
	if ImpactRows(nil) != nil {
		t.Error("ImpactRows(nil) != nil")
	}
}
