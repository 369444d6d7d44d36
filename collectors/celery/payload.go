package celery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A taskPath is a dot-separated path into a task as its task-sent and
// task-received events carry it (spec §3.1): args.0 (a positional
// argument), kwargs.payment (a keyword argument), kwargs.order.id, name.
// Members by name, list and tuple elements by decimal index.
type taskPath []string

// parsePath splits p; "" is no path.
func parsePath(p string) (taskPath, error) {
	if p == "" {
		return nil, nil
	}
	segs := strings.Split(p, ".")
	for i, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("path %q: segment %d is empty", p, i+1)
		}
	}
	switch segs[0] {
	case "args", "kwargs", "name":
	default:
		return nil, fmt.Errorf("path %q: starts with args, kwargs or name (a Celery task's arguments)", p)
	}
	return segs, nil
}

// lookup follows the path; nil when it does not resolve or reaches None.
func (p taskPath) lookup(v any) any {
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

// fields are what the configured paths took from one task.
type fields struct {
	key, entity string
	// attrs is the JSON object of the attrs that resolved, nil for none.
	attrs json.RawMessage
}

// mapping holds a source's compiled paths.
type mapping struct {
	key, entity taskPath
	attrNames   []string // sorted
	attrPaths   []taskPath
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

// needsArgs reports whether a path reads args or kwargs (which must then
// be parsed).
func (m *mapping) needsArgs() bool {
	for _, p := range append([]taskPath{m.key, m.entity}, m.attrPaths...) {
		if len(p) > 0 && p[0] != "name" {
			return true
		}
	}
	return false
}

// resolve takes the fields from a task's payload: {"name", "args",
// "kwargs"}.
func (m *mapping) resolve(payload map[string]any) fields {
	var f fields
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
