package reports

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twicehq/twice/twicetype"
)

// ImpactRows returns the lines a report shows for Report.Impact, as
// label and value, in order; nil when im is nil (no impact paths
// configured). The text, markdown and html formats show them with the
// summary.
func ImpactRows(im *twicetype.Impact) [][2]string {
	if im == nil {
		return nil
	}
	return [][2]string{
		{"duplicated amount", ImpactAmounts(im.DuplicatedAmount)},
		{"customers with a duplicate", strconv.FormatInt(im.Customers, 10)},
		{"entities left stale", strconv.FormatInt(im.StaleEntities, 10)},
	}
}

// ImpactLine says Report.Impact in one line, as the text and markdown
// summaries show it: "USD 12.5 duplicated, 3 customers got a duplicate,
// 1 entity left stale".
func ImpactLine(im *twicetype.Impact) string {
	customers, entities := "customers", "entities"
	if im.Customers == 1 {
		customers = "customer"
	}
	if im.StaleEntities == 1 {
		entities = "entity"
	}
	return ImpactAmounts(im.DuplicatedAmount) + " duplicated, " +
		strconv.FormatInt(im.Customers, 10) + " " + customers + " got a duplicate, " +
		strconv.FormatInt(im.StaleEntities, 10) + " " + entities + " left stale"
}

// ImpactAmounts writes amounts per currency, sorted by currency: "EUR 10,
// USD 12.5"; an amount without a currency is written alone, "0" when
// there is none.
func ImpactAmounts(m map[string]float64) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		v := strconv.FormatFloat(m[c], 'f', -1, 64)
		if c != "" {
			v = c + " " + v
		}
		parts = append(parts, v)
	}
	return strings.Join(parts, ", ")
}
