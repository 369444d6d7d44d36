package bullmq

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A jobPath is a dot-separated path into a job's payload as BullMQ stores it
// (spec §3.1): its hash fields, with data and opts read as the JSON they
// hold — data.payment, data.order.id, data.items.0.sku, opts.jobId, name.
// Members by name, array elements by decimal index.
type jobPath []string

// parsePath splits p; "" is no path.
func parsePath(p string) (jobPath, error) {
	if p == "" {
		return nil, nil
	}
	segs := strings.Split(p, ".")
	for i, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("path %q: segment %d is empty", p, i+1)
		}
	}
	return segs, nil
}

// lookup follows the path; nil when it does not resolve or reaches null.
func (p jobPath) lookup(v any) any {
	if len(p) == 0 {
		return nil
	}
	for _, seg := range p {
		switch c := v.(type) {
		case map[string]any:
			v = c[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != seg {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// scalar renders a string or a number as written (spec §1: the values a
// key or entity can take); false for anything else.
func scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// fields are what the configured paths took from one job's payload.
type fields struct {
	key, entity string
	// attrs is the JSON object of the attrs that resolved, nil for none.
	attrs json.RawMessage
}

// mapping holds a source's compiled paths.
type mapping struct {
	key, entity jobPath
	attrNames   []string // sorted
	attrPaths   []jobPath
}

func newMapping(c *Config) (*mapping, error) {
	m := &mapping{}
	var err error
	if m.key, err = parsePath(c.Key); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if m.entity, err = parsePath(c.Entity); err != nil {
		return nil, fmt.Errorf("entity: %w", err)
	}
	for name := range c.Attrs {
		m.attrNames = append(m.attrNames, name)
	}
	slices.Sort(m.attrNames)
	for _, name := range m.attrNames {
		p, err := parsePath(c.Attrs[name])
		if err != nil {
			return nil, fmt.Errorf("attrs.%s: %w", name, err)
		}
		m.attrPaths = append(m.attrPaths, p)
	}
	return m, nil
}

// empty reports whether no path is configured: the payload need not be
// read for the fields.
func (m *mapping) empty() bool {
	return len(m.key) == 0 && len(m.entity) == 0 && len(m.attrPaths) == 0
}

// resolve takes the fields from a payload (nil: unknown).
func (m *mapping) resolve(payload map[string]any) fields {
	var f fields
	if payload == nil {
		return f
	}
	f.key, _ = scalar(m.key.lookup(payload))
	f.entity, _ = scalar(m.entity.lookup(payload))
	var b bytes.Buffer
	for i, name := range m.attrNames {
		v := m.attrPaths[i].lookup(payload)
		if v == nil {
			continue
		}
		enc, err := json.Marshal(v)
		if err != nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		n, _ := json.Marshal(name)
		b.Write(n)
		b.WriteByte(':')
		b.Write(enc)
	}
	if b.Len() > 0 {
		b.WriteByte('}')
		f.attrs = b.Bytes()
	}
	return f
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
