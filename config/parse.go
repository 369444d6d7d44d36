package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/twicehq/twice/collectors/kafka/mapexpr"
	"github.com/twicehq/twice/keytemplate"
	"github.com/twicehq/twice/twicetype"
)

// The keys each mapping takes.
var (
	rootKeys        = []string{"sources", "expect", "detectors", "redact", "redact_emails", "impact", "engine", "watch"}
	sourceKeys      = []string{"name", "type", "path", "paths"}
	kafkaSourceKeys = []string{"name", "type", "brokers", "topics", "group", "format", "map", "skip", "debezium", "start", "dead_letter", "tls", "sasl", "schema_registry"}
	ruleKeys        = []string{"job_type", "effect", "effect_key", "within", "count"}
	engineKeys      = []string{"lateness", "reorder_buffer", "horizon"}
	watchKeys       = []string{"state_dir", "listen", "checkpoint_interval", "snapshot_interval", "idle_timeout", "idle_advance", "findings", "store", "limits", "dead_letter_max_bytes"}
	limitKeys       = []string{"max_jobs", "max_effect_keys", "max_entities", "max_identities"}
	sinkKeys        = map[string][]string{
		SinkStdout:  {"type"},
		SinkFile:    {"type", "path"},
		SinkKafka:   {"type", "brokers", "topic", "tls", "sasl"},
		SinkWebhook: {"type", "url", "url_env", "format", "timeout"},
	}
	// sinkRequired are the keys each sink type needs.
	sinkRequired = map[string][]string{SinkFile: {"path"}, SinkKafka: {"brokers", "topic"}}
)

const (
	// maxNodes bounds the nodes of a document, counting what aliases
	// expand to, so that a few lines of aliases cannot make Parse build
	// an enormous configuration.
	maxNodes = 100000
	// maxErrors bounds the errors Parse reports.
	maxErrors = 100
)

// Load reads and parses the configuration file at path. Errors name the
// file as path. Relative paths the file gives (a file source's paths, a
// kafka source's dead_letter, watch.state_dir, a file sink's path) are
// made relative to the file's folder, so the configuration means the same
// from any working directory; defaults are left as they are.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parse(path, filepath.Dir(path), data)
}

// Parse parses a configuration. name is the file name errors start with.
// An empty document, or one of only comments, is Default(). Parse fills
// every default, so the result passes Validate. Its errors are *Error
// values joined with errors.Join, in file order. Paths are kept as
// written.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, "", data)
}

// parse parses a configuration whose relative paths are relative to dir
// ("" keeps them as written).
func parse(name, dir string, data []byte) (*Config, error) {
	return parseWith(name, dir, data, Options{})
}

// decode parses the YAML of a configuration and returns its top node, nil
// for an empty document.
func decode(name string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// The YAML parser is not ours; input must never crash the caller.
		if r := recover(); r != nil {
			root, err = nil, &Error{File: name, Msg: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(name, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(name, data, err)
	case !isEmptyDocument(&extra):
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column,
			Msg: "more than one YAML document (a configuration is one document)"}
	}
	if isEmptyDocument(&doc) {
		return nil, nil
	}
	root = doc.Content[0]
	memo := make(map[*yaml.Node]int)
	if n := expandedSize(root, memo); n < 0 {
		return nil, &Error{File: name, Msg: "an alias refers to the node that holds it"}
	} else if n > maxNodes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("more than %d values, counting what aliases expand to", maxNodes)}
	}
	return root, nil
}

func isEmptyDocument(doc *yaml.Node) bool {
	return doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0])
}

// expandedSize counts the nodes under n with aliases expanded, stopping
// past maxNodes. It returns -1 when an alias refers to a node holding it.
func expandedSize(n *yaml.Node, memo map[*yaml.Node]int) int {
	if v, ok := memo[n]; ok {
		return v
	}
	memo[n] = -1 // in progress: meeting n again is a cycle
	total := 1
	children := n.Content
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		children = []*yaml.Node{n.Alias}
	}
	for _, c := range children {
		s := expandedSize(c, memo)
		if s < 0 {
			return -1
		}
		if total += s; total > maxNodes {
			break
		}
	}
	memo[n] = total
	return total
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns an error of the YAML parser about data into an
// *Error on the line where the problem is (see problemLine).
func syntaxError(name string, data []byte, err error) error {
	msg := err.Error()
	e := &Error{File: name}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if line := problemLine(data, msg); line > 0 {
		e.Line = line
	}
	e.Msg = "invalid YAML: " + msg
	return e
}

// parser walks the node tree of a configuration and collects errors.
type parser struct {
	file string
	// dir is what relative paths are relative to; "" keeps them as
	// written.
	dir  string
	errs []*Error
	// types decodes sources of types other than file; nil knows kafka
	// only (sources.go).
	types SourceTypes
}

// rel returns path relative to the configuration's folder: joined to
// p.dir unless it is absolute, "-" (stdin) or empty.
func (p *parser) rel(path string) string {
	if p.dir == "" || path == "" || path == "-" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(p.dir, path)
}

// errorf records an error about node n at key path.
func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

// check records msg as an error about n unless it is empty.
func (p *parser) check(n *yaml.Node, path, msg string) {
	if msg != "" {
		p.errorf(n, path, "%s", msg)
	}
}

// err returns the errors in file order, each once, joined.
func (p *parser) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	seen := make(map[string]bool, len(p.errs))
	var errs []error
	for _, e := range p.errs {
		s := e.Error()
		if seen[s] {
			continue
		}
		seen[s] = true
		errs = append(errs, e)
	}
	if n := len(errs) - maxErrors; n > 0 {
		errs = append(errs[:maxErrors], &Error{File: p.file, Msg: fmt.Sprintf("and %d more errors", n)})
	}
	return errors.Join(errs...)
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe says what a node is, for "got ..." in errors.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "nothing"
	}
	v := n.Value
	if utf8.RuneCountInString(v) > 60 {
		v = string([]rune(v)[:57]) + "..."
	}
	switch tag := n.ShortTag(); {
	case tag == "!!null":
		if v == "" {
			return "nothing"
		}
		return v
	case tag == "!!str":
		return strconv.Quote(v)
	case strings.HasPrefix(tag, "!!"):
		return v
	default:
		return tag + " " + strconv.Quote(v)
	}
}

// entry is one key of a mapping and its value.
type entry struct {
	name     string
	key, val *yaml.Node
}

// join makes the key path of key within path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping returns the entries of a mapping in file order, with merge keys
// (<<) applied, reporting duplicate keys. A null node is an empty mapping;
// ok is false, and an error recorded, when n is not a mapping.
func (p *parser) mapping(n *yaml.Node, path string) (es []entry, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping, got %s", describe(n))
		return nil, false
	}
	first := make(map[string]*yaml.Node, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		rk := resolve(k)
		if rk.Kind == yaml.ScalarNode && rk.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if rk.Kind != yaml.ScalarNode || isNull(rk) {
			p.errorf(k, path, "want a name as key, got %s", describe(rk))
			continue
		}
		if f, dup := first[rk.Value]; dup {
			p.errorf(k, path, "duplicate key %q (first on line %d)", rk.Value, f.Line)
			continue
		}
		first[rk.Value] = k
		es = append(es, entry{name: rk.Value, key: k, val: v})
	}
	// Keys written in the mapping win over merged ones, and earlier merged
	// mappings over later ones.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if rm := resolve(m); rm.Kind == yaml.SequenceNode {
			srcs = rm.Content
		}
		for _, src := range srcs {
			if resolve(src).Kind != yaml.MappingNode {
				p.errorf(src, path, "<<: want a mapping to merge, got %s", describe(src))
				continue
			}
			merged, _ := p.mapping(src, path)
			for _, e := range merged {
				if _, dup := first[e.name]; !dup {
					first[e.name] = e.key
					es = append(es, e)
				}
			}
		}
	}
	return es, true
}

// fields is mapping, reporting keys not in known.
func (p *parser) fields(n *yaml.Node, path string, known []string) ([]entry, bool) {
	es, ok := p.mapping(n, path)
	return p.known(es, path, known), ok
}

// known returns the entries whose keys are in known, reporting the others.
func (p *parser) known(es []entry, path string, known []string) []entry {
	var out []entry
	for _, e := range es {
		if slices.Contains(known, e.name) {
			out = append(out, e)
		} else {
			p.errorf(e.key, path, "unknown key %q (known: %s)", e.name, strings.Join(known, ", "))
		}
	}
	return out
}

// sequence returns the items of a list. A null node is an empty list; ok
// is false, and an error recorded, when n is not a list.
func (p *parser) sequence(n *yaml.Node, path string) (items []*yaml.Node, ok bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "want a list, got %s", describe(n))
		return nil, false
	}
	return n.Content, true
}

func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, path, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// name is str, rejecting the empty string.
func (p *parser) name(n *yaml.Node, path string) (string, bool) {
	s, ok := p.str(n, path)
	if ok && s == "" {
		p.errorf(resolve(n), path, "must not be empty")
		return "", false
	}
	return s, ok
}

func (p *parser) integer(n *yaml.Node, path string) (int, bool) {
	n = resolve(n)
	var v int
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" && n.Decode(&v) == nil {
		return v, true
	}
	p.errorf(n, path, "want an integer, got %s", describe(n))
	return 0, false
}

func (p *parser) number(n *yaml.Node, path string) (float64, bool) {
	n = resolve(n)
	var v float64
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || n.ShortTag() == "!!float") && n.Decode(&v) == nil {
		return v, true
	}
	p.errorf(n, path, "want a number, got %s", describe(n))
	return 0, false
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	n = resolve(n)
	var v bool
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" && n.Decode(&v) == nil {
		return v, true
	}
	p.errorf(n, path, "want true or false, got %s", describe(n))
	return false, false
}

func (p *parser) duration(n *yaml.Node, path string) (time.Duration, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		if d, err := time.ParseDuration(n.Value); err == nil {
			if d > MaxDuration {
				p.errorf(n, path, "want at most %v (ten years), got %s", MaxDuration, describe(n))
				return 0, false
			}
			return d, true
		}
	}
	p.errorf(n, path, "want a Go duration like 90s or 15m, got %s", describe(n))
	return 0, false
}

// positive is a duration greater than 0.
func (p *parser) positive(n *yaml.Node, path string, dst *time.Duration) {
	if d, ok := p.duration(n, path); ok {
		*dst = d
		p.check(resolve(n), path, checkPositive(d))
	}
}

// atLeast1 is an integer of at least 1.
func (p *parser) atLeast1(n *yaml.Node, path string, dst *int) {
	if v, ok := p.integer(n, path); ok {
		*dst = v
		p.check(resolve(n), path, checkAtLeast1(v))
	}
}

func (p *parser) root(n *yaml.Node, c *Config) {
	if n == nil {
		return
	}
	es, _ := p.fields(n, "", rootKeys)
	for _, e := range es {
		switch e.name {
		case "sources":
			c.Sources = p.sources(e.val, e.name)
		case "expect":
			c.Expect = p.expect(e.val, e.name)
		case "detectors":
			p.detectors(e.val, e.name, c.Detectors)
		case "redact":
			c.Redact = p.redact(e.val, e.name)
		case "redact_emails":
			if v, ok := p.boolean(e.val, e.name); ok {
				c.KeepEmails = !v
			}
		case "impact":
			c.Impact = p.impact(e.val, e.name)
		case "engine":
			p.engine(e.val, e.name, &c.Engine)
		case "watch":
			p.watch(e.val, e.name, &c.Watch)
		}
	}
}

func (p *parser) sources(n *yaml.Node, path string) []Source {
	var out []Source
	names := map[string]int{}
	items, _ := p.sequence(n, path)
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		s, nameNode, ok := p.source(item, ipath)
		if !ok {
			continue
		}
		if j, dup := names[s.Name]; dup {
			p.errorf(nameNode, ipath+".name", "%s", duplicateSource(s.Name, j))
		} else {
			names[s.Name] = i
		}
		out = append(out, s)
	}
	return out
}

// source parses one source; nameNode is where its name is written (the
// first path when it has no name).
func (p *parser) source(item *yaml.Node, path string) (s Source, nameNode *yaml.Node, ok bool) {
	s = Source{Type: "file", Line: item.Line}
	es, ok := p.mapping(item, path)
	if !ok {
		return s, nil, false
	}
	for _, e := range es {
		if e.name != "type" {
			continue
		}
		if s.Type, ok = p.name(e.val, path+".type"); !ok {
			return s, nil, false
		}
		if known := p.knownSourceTypes(); !slices.Contains(known, s.Type) {
			p.errorf(resolve(e.val), path+".type", "unknown source type %q (known: %s)", s.Type, strings.Join(known, ", "))
			return s, nil, false
		}
	}
	if s.Type != SourceFile {
		return p.tapSource(item, es, path, s)
	}
	ok = true
	var pathsKey *yaml.Node
	for _, e := range p.known(es, path, sourceKeys) {
		epath := join(path, e.name)
		switch e.name {
		case "name":
			var good bool
			s.Name, good = p.name(e.val, epath)
			ok = ok && good
			nameNode = resolve(e.val)
		case "path", "paths":
			if pathsKey != nil {
				p.errorf(e.key, path, "give path or paths, not both")
				ok = false
				continue
			}
			pathsKey = e.key
			if e.name == "path" {
				if v, good := p.name(e.val, epath); good {
					s.Paths = []string{v}
				} else {
					ok = false
				}
				continue
			}
			items, good := p.sequence(e.val, epath)
			if good && len(items) == 0 {
				p.errorf(resolve(e.val), epath, "no paths")
			}
			ok = ok && good && len(items) > 0
			for j, it := range items {
				if v, good := p.name(it, fmt.Sprintf("%s[%d]", epath, j)); good {
					s.Paths = append(s.Paths, v)
				} else {
					ok = false
				}
			}
			if nameNode == nil && len(items) > 0 {
				nameNode = resolve(items[0])
			}
		}
	}
	if pathsKey == nil {
		p.errorf(item, path, "missing path or paths")
		return s, nil, false
	}
	if s.Name == "" && len(s.Paths) > 0 {
		s.Name = s.Paths[0]
	}
	for i := range s.Paths {
		s.Paths[i] = p.rel(s.Paths[i])
	}
	if nameNode == nil {
		nameNode = item
	}
	return s, nameNode, ok
}

func (p *parser) expect(n *yaml.Node, path string) []Rule {
	var out []Rule
	items, _ := p.sequence(n, path)
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		r := Rule{Within: DefaultWithin, Count: 1, Line: item.Line}
		es, ok := p.fields(item, ipath, ruleKeys)
		if !ok {
			continue
		}
		have := map[string]bool{}
		for _, e := range es {
			have[e.name] = true
			epath := join(ipath, e.name)
			switch e.name {
			case "job_type":
				r.JobType, _ = p.name(e.val, epath)
			case "effect":
				r.Effect, _ = p.name(e.val, epath)
			case "effect_key":
				if s, ok := p.str(e.val, epath); ok {
					t, err := keytemplate.Parse(s)
					if err != nil {
						p.errorf(resolve(e.val), epath, "%v", err)
					}
					r.EffectKey = t
				}
			case "within":
				p.positive(e.val, epath, &r.Within)
			case "count":
				p.atLeast1(e.val, epath, &r.Count)
			}
		}
		for _, k := range []string{"job_type", "effect", "effect_key"} {
			if !have[k] {
				p.errorf(item, ipath, "missing %s", k)
			}
		}
		out = append(out, r)
	}
	return out
}

func (p *parser) detectors(n *yaml.Node, path string, dets map[string]Detector) {
	es, _ := p.mapping(n, path)
	for _, e := range es {
		d, ok := dets[e.name]
		if !ok {
			p.errorf(e.key, path, "%s", unknownDetector(e.name))
			continue
		}
		p.detector(e.val, join(path, e.name), e.name, &d)
		dets[e.name] = d
	}
}

func (p *parser) detector(n *yaml.Node, path, id string, d *Detector) {
	if rn := resolve(n); rn.Kind == yaml.ScalarNode && !isNull(rn) {
		p.errorf(rn, path, "want a mapping such as {enabled: false}, got %s", describe(rn))
		return
	}
	known := append(append([]string{"enabled", "severity"}, thresholdKeys[id]...), "budget")
	es, _ := p.fields(n, path, known)
	for _, e := range es {
		epath := join(path, e.name)
		switch e.name {
		case "enabled":
			if v, ok := p.boolean(e.val, epath); ok {
				d.Enabled = v
			}
		case "severity":
			if s, ok := p.str(e.val, epath); ok {
				sev, err := twicetype.ParseSeverity(s)
				if err != nil || sev == twicetype.SeverityNone {
					p.errorf(resolve(e.val), epath, "%s", unknownSeverity(s))
				} else {
					d.Severity = sev
				}
			}
		case "budget":
			d.Budget = p.budget(e.val, epath, id)
		case "max_per_key":
			p.atLeast1(e.val, epath, &d.MaxPerKey)
		case "max_start_delay":
			p.positive(e.val, epath, &d.MaxStartDelay)
		case "lost_after":
			p.positive(e.val, epath, &d.LostAfter)
		case "window":
			p.positive(e.val, epath, &d.Window)
		case "min_attempts":
			p.atLeast1(e.val, epath, &d.MinAttempts)
		case "amplification":
			if v, ok := p.number(e.val, epath); ok {
				d.Amplification = v
				p.check(resolve(e.val), epath, checkAmplification(v))
			}
		}
	}
}

func (p *parser) redact(n *yaml.Node, path string) []string {
	var out []string
	seen := map[string]bool{}
	items, _ := p.sequence(n, path)
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		if s, ok := p.str(item, ipath); ok {
			p.check(resolve(item), ipath, checkRedact(s, seen))
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) engine(n *yaml.Node, path string, eng *Engine) {
	es, _ := p.fields(n, path, engineKeys)
	for _, e := range es {
		epath := join(path, e.name)
		switch e.name {
		case "lateness":
			if d, ok := p.duration(e.val, epath); ok {
				eng.Lateness = d
				if d < 0 {
					p.errorf(resolve(e.val), epath, "must not be negative, got %v", d)
				}
			}
		case "reorder_buffer":
			p.atLeast1(e.val, epath, &eng.ReorderBuffer)
		case "horizon":
			p.positive(e.val, epath, &eng.Horizon)
		}
	}
}

// kafkaSource parses the entries es of a source of type kafka.
func (p *parser) kafkaSource(item *yaml.Node, es []entry, path string, s Source) (_ Source, nameNode *yaml.Node, ok bool) {
	k := &KafkaSource{Group: DefaultGroup, Format: FormatTwice, Start: StartEarliest}
	s.Kafka = k
	ok = true
	have := map[string]bool{}
	var mapNode, formatNode, skipNode, debeziumNode, registryNode *yaml.Node
	for _, e := range p.known(es, path, kafkaSourceKeys) {
		epath := join(path, e.name)
		have[e.name] = true
		good := true
		switch e.name {
		case "name":
			s.Name, good = p.name(e.val, epath)
			nameNode = resolve(e.val)
		case "brokers":
			k.Brokers, good = p.brokers(e.val, epath)
		case "topics":
			k.Topics, good = p.topics(e.val, epath)
		case "group":
			k.Group, good = p.name(e.val, epath)
		case "format":
			formatNode = resolve(e.val)
			if k.Format, good = p.name(e.val, epath); good && !slices.Contains(formats, k.Format) {
				p.errorf(formatNode, epath, "%s", unknownFormat(k.Format))
				good = false
			}
		case "map":
			mapNode = e.key
			if resolve(e.val).Kind == yaml.SequenceNode {
				k.Outputs, good = p.mapOutputs(e.val, epath)
			} else {
				k.Map, good = p.mapFields(e.val, epath)
			}
		case "skip":
			skipNode = e.key
			k.Skip, good = p.expression(e.val, epath, mapexpr.Compile)
		case "debezium":
			debeziumNode = e.key
			k.Debezium, good = p.debezium(e.val, epath)
		case "start":
			good = p.start(e.val, epath, k)
		case "dead_letter":
			k.DeadLetter, good = p.name(e.val, epath)
			k.DeadLetter = p.rel(k.DeadLetter)
		case "tls":
			k.TLS, good = p.kafkaTLS(e.val, epath)
		case "sasl":
			k.SASL, good = p.kafkaSASL(e.val, epath)
		case "schema_registry":
			registryNode = e.key
			k.SchemaRegistry, good = p.kafkaSchemaRegistry(e.val, epath)
		}
		ok = ok && good
	}
	for _, key := range []string{"name", "brokers", "topics"} {
		if !have[key] {
			p.errorf(item, path, "missing %s (a kafka source needs it)", key)
			ok = false
		}
	}
	switch {
	case !ok:
	case k.Format == FormatTwice && mapNode != nil:
		p.errorf(mapNode, path+".map", "%s", msgMapNeedsFormat)
		ok = false
	case k.Format == FormatMap && mapNode == nil:
		p.errorf(formatNode, path+".format", "format map needs a map")
		ok = false
	case k.Format != FormatMap && registryNode != nil:
		p.errorf(registryNode, path+".schema_registry", "%s", msgRegistryNeedsMap)
		ok = false
	case k.Format != FormatMap && skipNode != nil:
		p.errorf(skipNode, path+".skip", "skip needs format: map (format: debezium takes debezium.when)")
		ok = false
	case k.Format != FormatDebezium && debeziumNode != nil:
		p.errorf(debeziumNode, path+".debezium", "debezium needs format: debezium")
		ok = false
	case k.Format == FormatDebezium && mapNode != nil:
		p.errorf(mapNode, path+".map", "format debezium takes a debezium block, not a map")
		ok = false
	case k.Format == FormatDebezium && debeziumNode == nil:
		p.errorf(formatNode, path+".format", "format debezium needs a debezium block (effect, effect_key, entity, state…)")
		ok = false
	case k.Format == FormatMap && k.Outputs != nil:
	case k.Format == FormatMap:
		set := map[string]bool{}
		for _, f := range k.Map {
			set[f.Field] = true
		}
		for _, f := range requiredMapFields {
			if !set[f] {
				p.errorf(mapNode, path+".map", "missing %s (every event needs it)", f)
				ok = false
			}
		}
	}
	if nameNode == nil {
		nameNode = item
	}
	return s, nameNode, ok
}

// brokers parses a non-empty list of host:port.
func (p *parser) brokers(n *yaml.Node, path string) ([]string, bool) {
	items, ok := p.sequence(n, path)
	if ok && len(items) == 0 {
		p.errorf(resolve(n), path, "no brokers")
		return nil, false
	}
	var out []string
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		v, good := p.str(it, ipath)
		if good {
			if msg := checkBroker(v); msg != "" {
				p.errorf(resolve(it), ipath, "%s", msg)
				good = false
			}
		}
		ok = ok && good
		out = append(out, v)
	}
	return out, ok
}

// topics parses a non-empty list of unique topic names.
func (p *parser) topics(n *yaml.Node, path string) ([]string, bool) {
	items, ok := p.sequence(n, path)
	if ok && len(items) == 0 {
		p.errorf(resolve(n), path, "no topics")
		return nil, false
	}
	var out []string
	seen := map[string]bool{}
	for i, it := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		v, good := p.str(it, ipath)
		if good {
			if msg := checkTopic(v, seen); msg != "" {
				p.errorf(resolve(it), ipath, "%s", msg)
				good = false
			}
		}
		ok = ok && good
		out = append(out, v)
	}
	return out, ok
}

// mapFields parses a map: field name to expression, each compiled.
func (p *parser) mapFields(n *yaml.Node, path string) ([]MapField, bool) {
	es, ok := p.mapping(n, path)
	if !ok {
		return nil, false
	}
	var out []MapField
	for _, e := range es {
		if !slices.Contains(mapexpr.Fields, e.name) {
			p.errorf(e.key, path, "%s", unknownMapField(e.name))
			ok = false
			continue
		}
		epath := join(path, e.name)
		v := resolve(e.val)
		switch v.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool":
		default:
			p.errorf(v, epath, "want an expression, got %s", describe(v))
			ok = false
			continue
		}
		if v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
			p.errorf(v, epath, "want an expression, got %s", describe(v))
			ok = false
			continue
		}
		prog, err := mapexpr.Compile(v.Value)
		if err != nil {
			p.errorf(v, epath, "%v", err)
			ok = false
			continue
		}
		out = append(out, MapField{Field: e.name, Expr: prog, Line: v.Line, Column: v.Column})
	}
	return out, ok
}

// start parses where a new consumer starts.
func (p *parser) start(n *yaml.Node, path string, k *KafkaSource) bool {
	v := resolve(n)
	if v.Kind == yaml.ScalarNode && (v.ShortTag() == "!!str" || v.ShortTag() == "!!timestamp") {
		if slices.Contains(startWords, v.Value) {
			k.Start = v.Value
			return true
		}
		if t, err := time.Parse(time.RFC3339Nano, v.Value); err == nil {
			k.Start, k.StartTime = StartTime, t
			return true
		}
	}
	p.errorf(v, path, "%s", badStart(describe(v)))
	return false
}

func (p *parser) watch(n *yaml.Node, path string, w *Watch) {
	es, _ := p.fields(n, path, watchKeys)
	for _, e := range es {
		epath := join(path, e.name)
		switch e.name {
		case "state_dir":
			if v, ok := p.name(e.val, epath); ok {
				w.StateDir = p.rel(v)
			}
		case "listen":
			if v, ok := p.str(e.val, epath); ok {
				w.Listen = v
				if v != "" {
					p.check(resolve(e.val), epath, checkListen(v))
				}
			}
		case "checkpoint_interval":
			p.positive(e.val, epath, &w.CheckpointInterval)
		case "snapshot_interval":
			p.positive(e.val, epath, &w.SnapshotInterval)
		case "idle_timeout":
			p.positive(e.val, epath, &w.IdleTimeout)
		case "idle_advance":
			if v, ok := p.boolean(e.val, epath); ok {
				w.IdleAdvance = v
			}
		case "findings":
			w.Findings = p.sinks(e.val, epath)
		case "store":
			if v, ok := p.str(e.val, epath); ok {
				w.Store = v
				if v != "" && !strings.HasPrefix(v, "clickhouse://") && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
					p.errorf(e.val, epath, "want a ClickHouse DSN (clickhouse://host:9000/db or http://host:8123/db), got %q", v)
				}
			}
		case "limits":
			p.limits(e.val, epath, &w.Limits)
		case "dead_letter_max_bytes":
			if v, ok := p.size(e.val, epath); ok {
				w.DeadLetterMaxBytes = v
			}
		}
	}
}

func (p *parser) sinks(n *yaml.Node, path string) []Sink {
	out := []Sink{}
	items, _ := p.sequence(n, path)
	for i, item := range items {
		ipath := fmt.Sprintf("%s[%d]", path, i)
		es, ok := p.mapping(item, ipath)
		if !ok {
			continue
		}
		s := Sink{Line: item.Line}
		for _, e := range es {
			if e.name == "type" {
				s.Type, ok = p.name(e.val, ipath+".type")
				if ok && sinkKeys[s.Type] == nil {
					p.errorf(resolve(e.val), ipath+".type", "%s", unknownSinkType(s.Type))
					ok = false
				}
			}
		}
		if s.Type == "" {
			if ok {
				p.errorf(item, ipath, "missing type (%s)", strings.Join(sinkTypes, ", "))
			}
			continue
		}
		if !ok {
			continue
		}
		have := map[string]bool{}
		for _, e := range p.known(es, ipath, sinkKeys[s.Type]) {
			epath := join(ipath, e.name)
			have[e.name] = true
			switch e.name {
			case "path":
				s.Path, _ = p.name(e.val, epath)
				s.Path = p.rel(s.Path)
			case "brokers":
				s.Brokers, _ = p.brokers(e.val, epath)
			case "topic":
				if v, good := p.str(e.val, epath); good {
					s.Topic = v
					p.check(resolve(e.val), epath, checkTopic(v, nil))
				}
			case "tls":
				s.TLS, _ = p.kafkaTLS(e.val, epath)
			case "sasl":
				s.SASL, _ = p.kafkaSASL(e.val, epath)
			case "url":
				s.URL, _ = p.name(e.val, epath)
			case "url_env":
				s.URLEnv, _ = p.name(e.val, epath)
			case "format":
				if v, good := p.name(e.val, epath); good {
					s.Format = v
					if v != "json" && v != "slack" {
						p.errorf(resolve(e.val), epath, "unknown format %q (json, slack)", v)
					}
				}
			case "timeout":
				s.Timeout, _ = p.duration(e.val, epath)
			}
		}
		if s.Type == SinkWebhook && have["url"] == have["url_env"] {
			p.errorf(item, ipath, "give one of url and url_env")
		}
		for _, key := range sinkRequired[s.Type] {
			if !have[key] {
				p.errorf(item, ipath, "missing %s (a %s sink needs it)", key, s.Type)
			}
		}
		out = append(out, s)
	}
	return out
}

func (p *parser) limits(n *yaml.Node, path string, l *Limits) {
	es, _ := p.fields(n, path, limitKeys)
	for _, e := range es {
		epath := join(path, e.name)
		var dst *int
		switch e.name {
		case "max_jobs":
			dst = &l.MaxJobs
		case "max_effect_keys":
			dst = &l.MaxEffectKeys
		case "max_entities":
			dst = &l.MaxEntities
		case "max_identities":
			dst = &l.MaxIdentities
		}
		if v, ok := p.integer(e.val, epath); ok {
			*dst = v
			p.check(resolve(e.val), epath, checkAtLeast0(v))
		}
	}
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// size parses a byte count of at least 1: an integer, or a string such as
// 64MiB or 500KB.
func (p *parser) size(n *yaml.Node, path string) (int64, bool) {
	v := resolve(n)
	var out int64
	good := false
	if v.Kind == yaml.ScalarNode {
		switch v.ShortTag() {
		case "!!int":
			good = v.Decode(&out) == nil
		case "!!str":
			s := strings.TrimSpace(v.Value)
			for _, u := range sizeUnits {
				if num, found := strings.CutSuffix(s, u.suffix); found {
					n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
					if err == nil && n >= 0 && n <= math.MaxInt64/u.mult {
						out, good = n*u.mult, true
					}
					break
				}
			}
		}
	}
	if !good {
		p.errorf(v, path, "want a size in bytes like 67108864 or 64MiB, got %s", describe(v))
		return 0, false
	}
	if out < 1 {
		p.errorf(v, path, "must be at least 1, got %s", describe(v))
		return 0, false
	}
	return out, true
}
