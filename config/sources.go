package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// SourceSettings are the decoded settings of one source of a tap's type,
// of the type its factory defines (file and kafka sources keep theirs in
// Source.Paths and Source.Kafka).
type SourceSettings interface {
	// Validate checks settings built in code by the rules the factory
	// applies to a file. Problems are *Error values (Path relative to
	// the source) joined with errors.Join.
	Validate() error
}

// SourceTypes decodes the sources of the types config does not decode
// itself (every type but file): sources.Registry implements it.
type SourceTypes interface {
	// Types lists the types, sorted.
	Types() []string
	// DecodeSource decodes the mapping of a source of type typ; known is
	// false for a type it does not have.
	DecodeSource(typ string, m *SourceMapping) (settings SourceSettings, known bool)
}

// Options tune LoadWith and ParseWith.
type Options struct {
	// Sources decodes the sources of types other than file; nil knows
	// kafka only.
	Sources SourceTypes
}

// LoadWith is Load, with sources of the types o.Sources decodes.
func LoadWith(path string, o Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parseWith(path, filepath.Dir(path), data, o)
}

// ParseWith is Parse, with sources of the types o.Sources decodes.
func ParseWith(name string, data []byte, o Options) (*Config, error) {
	return parseWith(name, "", data, o)
}

// parseWith parses a configuration whose relative paths are relative to
// dir ("" keeps them as written), with options.
func parseWith(name, dir string, data []byte, o Options) (*Config, error) {
	c := Default()
	root, err := decode(name, data)
	if err != nil {
		return nil, err
	}
	p := &parser{file: name, dir: dir, types: o.Sources}
	p.root(root, c)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// builtinTypes decodes kafka sources when no SourceTypes is given.
type builtinTypes struct{}

func (builtinTypes) Types() []string { return []string{SourceKafka} }

func (builtinTypes) DecodeSource(typ string, m *SourceMapping) (SourceSettings, bool) {
	if typ != SourceKafka {
		return nil, false
	}
	return DecodeKafka(m), true
}

// sourceTypes returns what decodes a parser's sources of types other
// than file.
func (p *parser) sourceTypes() SourceTypes {
	if p.types == nil {
		return builtinTypes{}
	}
	return p.types
}

// knownSourceTypes lists every type a parser knows, file first.
func (p *parser) knownSourceTypes() []string {
	out := []string{SourceFile}
	for _, t := range p.sourceTypes().Types() {
		if t != SourceFile {
			out = append(out, t)
		}
	}
	return out
}

// SourceMapping is the YAML mapping of one source, handed to the factory
// of its type to decode. Its helpers read one key each: a key that is
// absent leaves the destination as it is (the default) and returns
// false; a key of the wrong type or value records an error at its
// file:line and returns false. Known reports the keys the factory does
// not take. name and type are read by config and always known.
type SourceMapping struct {
	p     *parser
	node  *yaml.Node
	path  string
	typ   string
	es    []entry
	known bool
	// nested is set for a mapping within the source's (Mapping).
	nested bool
}

// Path returns the key path of the mapping, such as "sources[2]".
func (m *SourceMapping) Path() string { return m.path }

// Type returns the source's type.
func (m *SourceMapping) Type() string { return m.typ }

// Line returns where the mapping starts in the file.
func (m *SourceMapping) Line() int { return m.node.Line }

// Known reports every key that is not name, type or one of keys, with the
// list of known keys: `unknown key "x" (known: name, type, ...)`. In a
// nested mapping (Mapping) only keys are known.
func (m *SourceMapping) Known(keys ...string) {
	m.known = true
	if m.nested {
		m.p.known(m.es, m.path, keys)
		return
	}
	m.p.known(m.es, m.path, append([]string{"name", "type"}, keys...))
}

// Has reports whether the mapping gives key.
func (m *SourceMapping) Has(key string) bool {
	_, ok := m.get(key)
	return ok
}

// Keys lists the keys the mapping gives, in file order.
func (m *SourceMapping) Keys() []string {
	var out []string
	for _, e := range m.es {
		out = append(out, e.name)
	}
	return out
}

func (m *SourceMapping) get(key string) (entry, bool) {
	for _, e := range m.es {
		if e.name == key {
			return e, true
		}
	}
	return entry{}, false
}

// Require records `missing KEY (a TYPE source needs it)` for each key the
// mapping does not give, and reports whether it gives them all.
func (m *SourceMapping) Require(keys ...string) bool {
	ok := true
	for _, k := range keys {
		if !m.Has(k) {
			m.p.errorf(m.node, m.path, "missing %s (a %s source needs it)", k, m.typ)
			ok = false
		}
	}
	return ok
}

// Errorf records an error about key's value (about the mapping when key
// is absent or "").
func (m *SourceMapping) Errorf(key, format string, args ...any) {
	if e, ok := m.get(key); ok {
		m.p.errorf(resolve(e.val), join(m.path, key), format, args...)
		return
	}
	m.p.errorf(m.node, m.path, format, args...)
}

// String reads a non-empty string.
func (m *SourceMapping) String(key string, dst *string) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	v, ok := m.p.name(e.val, join(m.path, key))
	if ok {
		*dst = v
	}
	return ok
}

// File reads a file path: non-empty, relative to the configuration
// file's folder when Load read it (as a file source's paths).
func (m *SourceMapping) File(key string, dst *string) bool {
	var v string
	if !m.String(key, &v) {
		return false
	}
	*dst = m.p.rel(v)
	return true
}

// OneOf reads a string that must be one of values.
func (m *SourceMapping) OneOf(key string, dst *string, values ...string) bool {
	var v string
	if !m.String(key, &v) {
		return false
	}
	if !slices.Contains(values, v) {
		m.Errorf(key, "want one of %s, got %q", strings.Join(values, ", "), v)
		return false
	}
	*dst = v
	return true
}

// Strings reads a non-empty list of non-empty strings.
func (m *SourceMapping) Strings(key string, dst *[]string) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	path := join(m.path, key)
	items, ok := m.p.sequence(e.val, path)
	if ok && len(items) == 0 {
		m.p.errorf(resolve(e.val), path, "must not be empty")
		return false
	}
	var out []string
	for i, it := range items {
		v, good := m.p.name(it, fmt.Sprintf("%s[%d]", path, i))
		ok = ok && good
		out = append(out, v)
	}
	if ok {
		*dst = out
	}
	return ok
}

// Int reads an integer of at least min.
func (m *SourceMapping) Int(key string, dst *int, min int) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	v, ok := m.p.integer(e.val, join(m.path, key))
	if !ok {
		return false
	}
	if v < min {
		m.p.errorf(resolve(e.val), join(m.path, key), "must be at least %d, got %d", min, v)
		return false
	}
	*dst = v
	return true
}

// Bool reads true or false.
func (m *SourceMapping) Bool(key string, dst *bool) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	v, ok := m.p.boolean(e.val, join(m.path, key))
	if ok {
		*dst = v
	}
	return ok
}

// Duration reads a Go duration greater than 0.
func (m *SourceMapping) Duration(key string, dst *time.Duration) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	path := join(m.path, key)
	d, ok := m.p.duration(e.val, path)
	if !ok {
		return false
	}
	if msg := checkPositive(d); msg != "" {
		m.p.errorf(resolve(e.val), path, "%s", msg)
		return false
	}
	*dst = d
	return true
}

// URL reads a URL whose scheme is one of schemes and that names a host.
func (m *SourceMapping) URL(key string, dst *string, schemes ...string) bool {
	var v string
	if !m.String(key, &v) {
		return false
	}
	u, err := url.Parse(v)
	if err != nil || !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		m.Errorf(key, "want a URL like %s://host:port, got %q", schemes[0], redactURL(v))
		return false
	}
	*dst = v
	return true
}

// redactURL hides the password of a URL written in an error.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return v
	}
	return u.Redacted()
}

// StringMap reads a mapping of names to non-empty strings (attrs: name →
// path), in file order of keys; dst gets the names and values.
func (m *SourceMapping) StringMap(key string, dst *map[string]string) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	path := join(m.path, key)
	es, ok := m.p.mapping(e.val, path)
	if !ok {
		return false
	}
	out := make(map[string]string, len(es))
	for _, x := range es {
		v, good := m.p.name(x.val, join(path, x.name))
		ok = ok && good
		out[x.name] = v
	}
	if ok {
		*dst = out
	}
	return ok
}

// IsSequence reports whether key's value is a list (as `cursor: [updated_at,
// id]` against `cursor: id`).
func (m *SourceMapping) IsSequence(key string) bool {
	e, ok := m.get(key)
	return ok && resolve(e.val).Kind == yaml.SequenceNode
}

// Scalar reads a non-empty string, number or boolean as written (the
// source text of an expression: `attempt: 1` is the expression 1).
func (m *SourceMapping) Scalar(key string, dst *string) bool {
	e, ok := m.get(key)
	if !ok {
		return false
	}
	v := resolve(e.val)
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool":
		if v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) != "" {
			*dst = v.Value
			return true
		}
	}
	m.p.errorf(v, join(m.path, key), "want an expression, got %s", describe(v))
	return false
}

// IsMapping reports whether key's value is a mapping (as `tls: {ca_file:
// ...}` against `tls: true`).
func (m *SourceMapping) IsMapping(key string) bool {
	e, ok := m.get(key)
	return ok && resolve(e.val).Kind == yaml.MappingNode
}

// Mapping returns key's value as a mapping to read with the same helpers
// (its Known lists only its own keys); ok is false, with an error
// recorded, when it is not one.
func (m *SourceMapping) Mapping(key string) (*SourceMapping, bool) {
	e, ok := m.get(key)
	if !ok {
		return nil, false
	}
	path := join(m.path, key)
	es, ok := m.p.mapping(e.val, path)
	if !ok {
		return nil, false
	}
	return &SourceMapping{p: m.p, node: resolve(e.val), path: path, typ: m.typ, es: es, nested: true}, true
}

// DecodeKafka decodes the mapping of a kafka source: the kafka factory's
// DecodeConfig.
func DecodeKafka(m *SourceMapping) *KafkaSource {
	m.known = true // kafkaSource reports unknown keys itself
	s, _, _ := m.p.kafkaSource(m.node, m.es, m.path, Source{Type: SourceKafka})
	return s.Kafka
}

// Validate checks a kafka source built in code; each *Error's Path is
// relative to the source.
func (k *KafkaSource) Validate() error {
	var errs []error
	for _, e := range k.validate() {
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// tapSource parses a source of a type other than file: name here, the
// rest by the type's decoder.
func (p *parser) tapSource(item *yaml.Node, es []entry, path string, s Source) (_ Source, nameNode *yaml.Node, ok bool) {
	before := len(p.errs)
	hasName := false
	for _, e := range es {
		if e.name == "name" {
			hasName = true
			s.Name, _ = p.name(e.val, join(path, "name"))
			nameNode = resolve(e.val)
		}
	}
	if !hasName {
		p.errorf(item, path, "missing name (a %s source needs it)", s.Type)
	}
	m := &SourceMapping{p: p, node: item, path: path, typ: s.Type, es: es}
	settings, _ := p.sourceTypes().DecodeSource(s.Type, m)
	if !m.known {
		// A decoder that lists no keys takes none.
		m.Known()
	}
	if k, isKafka := settings.(*KafkaSource); isKafka {
		s.Kafka = k
	} else {
		s.Settings = settings
	}
	if nameNode == nil {
		nameNode = item
	}
	return s, nameNode, len(p.errs) == before
}

// settingsErrors flattens what SourceSettings.Validate returned into
// *Error values (an error of another type becomes the Msg of one).
func settingsErrors(err error) []*Error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, settingsErrors(e)...)
		}
		return out
	}
	var ce *Error
	if errors.As(err, &ce) {
		return []*Error{ce}
	}
	return []*Error{{Msg: err.Error()}}
}
