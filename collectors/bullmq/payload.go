package bullmq

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twicehq/twice/collectors/jobpath"
)

// newMapping compiles c's key, entity and attrs: dot paths into a job's
// payload as BullMQ stores it (spec §3.1), its hash fields with data and
// opts read as the JSON they hold — data.payment, data.order.id,
// data.items.0.sku, opts.jobId, name.
func newMapping(c *Config) (*jobpath.Mapping, error) {
	return jobpath.NewMapping(c.Key, c.Entity, c.Attrs, nil)
}

// decodeJSON parses a hash field that holds JSON, numbers kept as written.
func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// jsonNumber is s as a JSON number when it is one, else the string.
func jsonNumber(s string) any {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return json.Number(s)
	}
	return s
}
