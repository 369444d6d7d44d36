package jsonl

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"

	"github.com/twicehq/twice/twicetype"
)

// Domain bytes prefixed to what is hashed into an event's identity, so an
// id can never collide with a canonical content on purpose.
const (
	domainID      = 'i'
	domainContent = 'c'
)

// Interning limits: at most maxInterned distinct strings of at most
// maxInternLen bytes per Parser.
const (
	maxInterned  = 4096
	maxInternLen = 64
)

const reasonUTF8 = "not valid UTF-8"

// ParseError says why a line is not a valid event.
type ParseError struct {
	// Field names the field at fault, "" when the line as a whole is.
	Field string
	// Reason is the whole message, e.g. `missing field "ts"`.
	Reason string
}

// Error returns the reason, which names the field.
func (e *ParseError) Error() string { return e.Reason }

// The top-level fields of spec §1, in the order of its table.
const (
	fID = iota
	fTS
	fKind
	fQueue
	fJobType
	fJobID
	fAttempt
	fKey
	fEffect
	fEffectKey
	fEntity
	fSeq
	fTerminal
	fRetry
	fError
	fAttrs
	numFields
)

var fieldNames = [numFields]string{
	fID: "id", fTS: "ts", fKind: "kind", fQueue: "queue", fJobType: "job_type",
	fJobID: "job_id", fAttempt: "attempt", fKey: "key", fEffect: "effect",
	fEffectKey: "effect_key", fEntity: "entity", fSeq: "seq",
	fTerminal: "terminal", fRetry: "retry", fError: "error", fAttrs: "attrs",
}

func fieldIndex(name []byte) int {
	switch string(name) {
	case "id":
		return fID
	case "ts":
		return fTS
	case "kind":
		return fKind
	case "queue":
		return fQueue
	case "job_type":
		return fJobType
	case "job_id":
		return fJobID
	case "attempt":
		return fAttempt
	case "key":
		return fKey
	case "effect":
		return fEffect
	case "effect_key":
		return fEffectKey
	case "entity":
		return fEntity
	case "seq":
		return fSeq
	case "terminal":
		return fTerminal
	case "retry":
		return fRetry
	case "error":
		return fError
	case "attrs":
		return fAttrs
	}
	return -1
}

// Fields whose strings are copied into one allocation per event.
var ownedFields = [...]int{fID, fJobID, fKey, fEffectKey, fEntity, fError}

// Parser parses event lines. The zero value is ready to use; a Parser
// keeps buffers and an intern table between calls and must not be used
// by more than one goroutine at a time.
type Parser struct {
	sc       scanner
	tmp      []byte // decoded keys and ids
	sbuf     []byte // the owned strings of one event
	cbuf     []byte // canonical content
	members  []member
	keys     []byte     // canonical forms of escaped keys
	keySpans [][2]int32 // where in keys
	interned map[string]string
	last     [numFields]string // the last interned value of each field
}

// NewParser returns a new Parser.
func NewParser() *Parser { return &Parser{} }

// Parse fills *ev from line, one JSON object without its line terminator.
// It keeps ev.Source and ev.Line, which the caller sets, and overwrites
// every other field. No string or slice in *ev aliases line, which the
// caller may reuse as soon as Parse returns. An integer ts before
// 2001-01-01 sets ev.SecondsLikeTS (see secondsLikeBefore).
//
// When the line is not a valid event, Parse returns a *ParseError whose
// Error is a short reason (`missing field "ts"`, `not valid UTF-8`); the
// other fields of *ev are then unspecified.
func (p *Parser) Parse(line []byte, ev *twicetype.Event) error {
	err := p.parse(line, ev)
	p.release()
	return err
}

// Buffers grown past these sizes by an unusual line are not kept.
const (
	maxKeptNodes = 1 << 14
	maxKeptBytes = 1 << 20
)

// release drops the reference to the caller's line and buffers that an
// unusually large line has grown.
func (p *Parser) release() {
	p.sc.b = nil
	if cap(p.sc.nodes) > maxKeptNodes {
		p.sc.nodes = nil
	}
	if cap(p.members) > maxKeptNodes {
		p.members = nil
	}
	if cap(p.keySpans) > maxKeptNodes {
		p.keySpans = nil
	}
	for _, b := range []*[]byte{&p.tmp, &p.sbuf, &p.cbuf, &p.keys} {
		if cap(*b) > maxKeptBytes {
			*b = nil
		}
	}
}

func (p *Parser) parse(line []byte, ev *twicetype.Event) error {
	*ev = twicetype.Event{Source: ev.Source, Line: ev.Line}
	if !utf8.Valid(line) {
		return &ParseError{Reason: reasonUTF8}
	}
	if !p.sc.scan(line) {
		return &ParseError{Reason: p.sc.err}
	}
	nodes := p.sc.nodes
	if nodes[0].typ != typeObject {
		return &ParseError{Reason: "not a JSON object (got " + p.got(0) + ")"}
	}

	// The value node of each known field; 0 (the root) means absent.
	var f [numFields]int32
	for c := int32(1); c < nodes[0].next; c = nodes[c].next {
		v := &nodes[c]
		name := line[v.kstart+1 : v.kend-1]
		if v.kesc {
			p.tmp = appendUnquoted(p.tmp[:0], name)
			name = p.tmp
		}
		if i := fieldIndex(name); i >= 0 && f[i] == 0 {
			f[i] = c
		}
	}

	if err := p.parseTS(f[fTS], ev); err != nil {
		return err
	}
	if err := p.parseKind(f[fKind], ev); err != nil {
		return err
	}

	// Types, in the order of the spec's table.
	for i, idx := range f {
		if idx == 0 || i == fTS || i == fKind {
			continue
		}
		n := &nodes[idx]
		switch i {
		case fAttempt:
			v, ok := p.integer(idx)
			if !ok || v < 1 {
				return p.wrongType(i, "an integer ≥ 1", idx)
			}
			ev.Attempt, ev.HasAttempt = v, true
		case fSeq:
			v, ok := p.integer(idx)
			if !ok {
				return p.wrongType(i, "an integer", idx)
			}
			ev.Seq, ev.HasSeq = v, true
		case fTerminal, fRetry:
			if n.typ != typeTrue && n.typ != typeFalse {
				return p.wrongType(i, "true or false", idx)
			}
			if i == fTerminal {
				ev.Terminal, ev.HasTerminal = n.typ == typeTrue, true
			} else {
				ev.Retry, ev.HasRetry = n.typ == typeTrue, true
			}
		case fAttrs:
			if n.typ != typeObject {
				return p.wrongType(i, "an object", idx)
			}
		default:
			if n.typ != typeString {
				return p.wrongType(i, "a string", idx)
			}
		}
	}

	// Fields the kind needs.
	switch {
	case ev.Kind.IsJob():
		if p.empty(f[fJobID]) {
			return p.missing(fJobID, ev.Kind)
		}
	case ev.Kind == twicetype.Effect:
		if p.empty(f[fEffect]) {
			return p.missing(fEffect, ev.Kind)
		}
		if p.empty(f[fEffectKey]) {
			return p.missing(fEffectKey, ev.Kind)
		}
	case ev.Kind == twicetype.State:
		if p.empty(f[fEntity]) {
			return p.missing(fEntity, ev.Kind)
		}
	}

	// Valid: copy the strings out of line.
	ev.Queue = p.internField(fQueue, f[fQueue])
	ev.JobType = p.internField(fJobType, f[fJobType])
	ev.Effect = p.internField(fEffect, f[fEffect])

	var spans [len(ownedFields)][2]int
	p.sbuf = p.sbuf[:0]
	for j, fi := range ownedFields {
		if idx := f[fi]; idx != 0 {
			spans[j][0] = len(p.sbuf)
			p.sbuf = p.appendString(p.sbuf, idx)
			spans[j][1] = len(p.sbuf)
		}
	}
	if len(p.sbuf) > 0 {
		all := string(p.sbuf)
		ev.ID = all[spans[0][0]:spans[0][1]]
		ev.JobID = all[spans[1][0]:spans[1][1]]
		ev.Key = all[spans[2][0]:spans[2][1]]
		ev.EffectKey = all[spans[3][0]:spans[3][1]]
		ev.Entity = all[spans[4][0]:spans[4][1]]
		ev.Error = all[spans[5][0]:spans[5][1]]
	}
	if idx := f[fAttrs]; idx != 0 {
		n := &nodes[idx]
		ev.Attrs = append([]byte(nil), line[n.start:n.end]...)
	}

	if ev.ID != "" {
		p.tmp = append(p.tmp[:0], domainID)
		p.tmp = append(p.tmp, ev.ID...)
		ev.Identity = xxhash.Sum64(p.tmp)
	} else {
		p.cbuf = append(p.cbuf[:0], domainContent)
		p.cbuf = p.appendCanon(p.cbuf, 0)
		ev.Identity = xxhash.Sum64(p.cbuf)
	}
	if ev.Identity == 0 {
		ev.Identity = 1
	}
	return nil
}

// secondsLikeBefore is 2001-01-01T00:00:00Z in Unix nanoseconds. An
// integer ts that, read as milliseconds, falls before it was most likely
// written in seconds (today in seconds, about 1.8e9, read as milliseconds
// is January 1970): the event is marked SecondsLikeTS so the audit can
// warn.
const secondsLikeBefore = 978_307_200 * int64(1e9)

func (p *Parser) parseTS(idx int32, ev *twicetype.Event) error {
	if idx == 0 || p.empty(idx) {
		return &ParseError{Field: "ts", Reason: `missing field "ts"`}
	}
	n := &p.sc.nodes[idx]
	raw := p.sc.b[n.start:n.end]
	switch {
	case n.typ == typeString:
		s := raw[1 : len(raw)-1]
		if n.esc {
			p.tmp = appendUnquoted(p.tmp[:0], s)
			s = p.tmp
		}
		ns, err := parseTime(s)
		if err != nil {
			return &ParseError{Field: "ts", Reason: `field "ts": ` + quote(s) + " is " + err.Error()}
		}
		ev.Time = ns
	case n.typ == typeNumber && n.integer:
		ns, ok := unixMillis(raw)
		if !ok {
			return &ParseError{Field: "ts", Reason: `field "ts": ` + truncate(raw) + " Unix milliseconds is " + errTimeRange.Error()}
		}
		ev.Time = ns
		ev.SecondsLikeTS = ns < secondsLikeBefore
	default:
		return p.wrongType(fTS, "an RFC 3339 string or integer Unix milliseconds", idx)
	}
	return nil
}

func (p *Parser) parseKind(idx int32, ev *twicetype.Event) error {
	if idx == 0 || p.empty(idx) {
		return &ParseError{Field: "kind", Reason: `missing field "kind"`}
	}
	n := &p.sc.nodes[idx]
	if n.typ != typeString {
		return p.wrongType(fKind, "a string", idx)
	}
	s := p.sc.b[n.start+1 : n.end-1]
	if n.esc {
		p.tmp = appendUnquoted(p.tmp[:0], s)
		s = p.tmp
	}
	k, ok := twicetype.ParseKind(string(s))
	if !ok {
		return &ParseError{Field: "kind", Reason: "unknown kind " + quote(s)}
	}
	ev.Kind = k
	return nil
}

// empty reports whether the node at idx is absent or the empty string.
func (p *Parser) empty(idx int32) bool {
	if idx == 0 {
		return true
	}
	n := &p.sc.nodes[idx]
	return n.typ == typeString && n.end-n.start == 2
}

func (p *Parser) missing(field int, k twicetype.Kind) error {
	name := fieldNames[field]
	return &ParseError{Field: name, Reason: `missing field "` + name + `" (needed by ` + k.String() + ")"}
}

func (p *Parser) wrongType(field int, want string, idx int32) error {
	name := fieldNames[field]
	return &ParseError{Field: name, Reason: `field "` + name + `": want ` + want + ", got " + p.got(idx)}
}

// got describes the value at idx for an error message.
func (p *Parser) got(idx int32) string {
	n := &p.sc.nodes[idx]
	switch n.typ {
	case typeNull:
		return "null"
	case typeTrue:
		return "true"
	case typeFalse:
		return "false"
	case typeNumber:
		return truncate(p.sc.b[n.start:n.end])
	case typeString:
		return "a string"
	case typeObject:
		return "an object"
	}
	return "an array"
}

// integer returns the value of an integer node that fits int64.
func (p *Parser) integer(idx int32) (int64, bool) {
	n := &p.sc.nodes[idx]
	if n.typ != typeNumber || !n.integer {
		return 0, false
	}
	b := p.sc.b[n.start:n.end]
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// appendString appends the value of the string node at idx.
func (p *Parser) appendString(dst []byte, idx int32) []byte {
	n := &p.sc.nodes[idx]
	raw := p.sc.b[n.start+1 : n.end-1]
	if !n.esc {
		return append(dst, raw...)
	}
	return appendUnquoted(dst, raw)
}

// internField returns the value of the string node at idx (absent: ""),
// interned when short.
func (p *Parser) internField(field int, idx int32) string {
	if idx == 0 || p.empty(idx) {
		return ""
	}
	n := &p.sc.nodes[idx]
	b := p.sc.b[n.start+1 : n.end-1]
	if n.esc {
		p.tmp = appendUnquoted(p.tmp[:0], b)
		b = p.tmp
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	// Neighbouring events often share these values: try the last one
	// returned for the field before the table.
	if last := p.last[field]; string(b) == last {
		return last
	}
	s, ok := p.interned[string(b)]
	if !ok {
		s = string(b)
		if p.interned == nil {
			p.interned = make(map[string]string)
		}
		if len(p.interned) < maxInterned {
			p.interned[s] = s
		}
	}
	p.last[field] = s
	return s
}

// quote quotes b for an error message, shortened when long.
func quote(b []byte) string {
	const max = 64
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "…"
}

// truncate shortens a number for an error message.
func truncate(b []byte) string {
	const max = 32
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + "…"
}
