// Package jobpath is the dot path a job tap's key, entity and attrs use to
// take event fields from a job's payload (spec §3.1, job taps): members by
// name, array elements by decimal index. BullMQ, Celery and Sidekiq share
// it; each tap says what its payload is and may restrict where a path
// starts.
package jobpath

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A Path is a parsed dot path: its segments, nil for no path.
type Path []string

// Parse splits p at its dots; "" is no path (nil). A segment may not be
// empty.
func Parse(p string) (Path, error) {
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

// String is the path as written.
func (p Path) String() string { return strings.Join(p, ".") }

// Lookup follows the path through v: an object (map[string]any) member by
// name, an array ([]any) element by a decimal index written without sign
// or leading zeros. It returns nil when the path is empty, does not
// resolve, or resolves to null.
func (p Path) Lookup(v any) any {
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

// Scalar renders a string or a number (a json.Number, as every tap
// decodes numbers) as written, the values a key or entity can take (spec
// §1); false for anything else.
func Scalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// A RootCheck says what is wrong with a parsed, non-empty path for a tap
// that restricts where paths start; nil when nothing. It receives the path
// as written too, for its message.
type RootCheck func(p string, path Path) error

// parse is Parse followed by check (when set) on a non-empty path.
func parse(p string, check RootCheck) (Path, error) {
	path, err := Parse(p)
	if err != nil || path == nil || check == nil {
		return path, err
	}
	if err := check(p, path); err != nil {
		return nil, err
	}
	return path, nil
}

// Check validates a source's key, entity and attrs as configured, calling
// bad with the config key at fault and the reason, in this order: key,
// entity, then attrs by name. An attr needs a name and a path. check may
// be nil.
func Check(key, entity string, attrs map[string]string, check RootCheck, bad func(field, format string, args ...any)) {
	if _, err := parse(key, check); err != nil {
		bad("key", "%v", err)
	}
	if _, err := parse(entity, check); err != nil {
		bad("entity", "%v", err)
	}
	for _, n := range sortedNames(attrs) {
		switch p := attrs[n]; {
		case n == "":
			bad("attrs", "an empty name")
		case p == "":
			bad("attrs."+n, "empty path")
		default:
			if _, err := parse(p, check); err != nil {
				bad("attrs."+n, "%v", err)
			}
		}
	}
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Fields are what a Mapping took from one payload.
type Fields struct {
	// Key and Entity are strings or numbers as written; "" when the path
	// is unset or resolves to anything else.
	Key, Entity string
	// Attrs is the JSON object of the attrs that resolved (to any value
	// but null), members sorted by name; nil for none.
	Attrs json.RawMessage
}

// A Mapping holds a source's compiled key, entity and attrs paths. The
// zero Mapping has no paths.
type Mapping struct {
	Key, Entity Path
	attrNames   []string // sorted
	attrPaths   []Path
}

// NewMapping compiles a source's paths, with check (may be nil) on each;
// errors name the config key (key, entity, attrs.NAME).
func NewMapping(key, entity string, attrs map[string]string, check RootCheck) (*Mapping, error) {
	m := &Mapping{}
	var err error
	if m.Key, err = parse(key, check); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if m.Entity, err = parse(entity, check); err != nil {
		return nil, fmt.Errorf("entity: %w", err)
	}
	m.attrNames = sortedNames(attrs)
	for _, name := range m.attrNames {
		p, err := parse(attrs[name], check)
		if err != nil {
			return nil, fmt.Errorf("attrs.%s: %w", name, err)
		}
		m.attrPaths = append(m.attrPaths, p)
	}
	return m, nil
}

// Empty reports whether no path is configured: the payload need not be
// read for the fields.
func (m *Mapping) Empty() bool {
	return len(m.Key) == 0 && len(m.Entity) == 0 && len(m.attrPaths) == 0
}

// Paths are the configured paths, key and entity first (each nil when
// unset), then the attrs' by name.
func (m *Mapping) Paths() []Path {
	return append([]Path{m.Key, m.Entity}, m.attrPaths...)
}

// Resolve takes the fields from a payload (nil: unknown, no fields). An
// attr whose value does not encode as JSON is left out.
func (m *Mapping) Resolve(payload map[string]any) Fields {
	var f Fields
	if payload == nil {
		return f
	}
	f.Key, _ = Scalar(m.Key.Lookup(payload))
	f.Entity, _ = Scalar(m.Entity.Lookup(payload))
	var b []byte
	for i, name := range m.attrNames {
		v := m.attrPaths[i].Lookup(payload)
		if v == nil {
			continue
		}
		enc, err := json.Marshal(v)
		if err != nil {
			continue
		}
		if b == nil {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		n, _ := json.Marshal(name)
		b = append(b, n...)
		b = append(b, ':')
		b = append(b, enc...)
	}
	if b != nil {
		f.Attrs = append(b, '}')
	}
	return f
}
