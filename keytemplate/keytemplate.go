// Package keytemplate parses and renders effect-key templates such as
// "receipt/{{key}}" or "{{job_type}}:{{attrs.payment_id}}" (spec §1, §3).
//
// A template is literal text with {{field}} placeholders. The fields are a
// job's key, entity, job_id, job_type and queue, and attrs.NAME, where NAME
// is a dotted path into the job's attrs object (attrs.customer.id).
// Rendering a template for a job yields the effect_key the job is expected
// to produce; effects link to jobs through it.
package keytemplate

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/twicetype"
)

// Fields are the fields of a job a template can read. An empty string
// means the field is absent; Attrs is the raw JSON of the job's attrs
// object, nil when absent.
type Fields struct {
	Key     string
	Entity  string
	JobID   string
	JobType string
	Queue   string
	Attrs   []byte
}

// FieldsOf returns the template fields carried by one event.
func FieldsOf(e *twicetype.Event) Fields {
	return Fields{
		Key:     e.Key,
		Entity:  e.Entity,
		JobID:   e.JobID,
		JobType: e.JobType,
		Queue:   e.Queue,
		Attrs:   e.Attrs,
	}
}

// field identifies what a placeholder reads.
type field uint8

const (
	fieldLiteral field = iota
	fieldKey
	fieldEntity
	fieldJobID
	fieldJobType
	fieldQueue
	fieldAttr
)

// knownFields is the list of fields in error messages.
const knownFields = "key, entity, job_id, job_type, queue, attrs.NAME"

// part is one piece of a template: literal text or a placeholder.
type part struct {
	field field
	// text is the literal text, or the field's name as written in
	// Fields() ("key", "attrs.customer.id").
	text string
	// path is the attrs path of a fieldAttr placeholder.
	path []string
}

// Template is a parsed effect-key template. It is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []part
	// attrs reports whether any placeholder reads attrs.
	attrs bool
	// size is the length of the literal text, a hint for rendering.
	size int
}

// SyntaxError is a template that could not be parsed. Column counts
// characters of Template from 1.
type SyntaxError struct {
	Template string
	Column   int
	Msg      string
}

// Error formats the error as `column 11 of "receipt/{{kee}}": msg`.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("column %d of %q: %s", e.Column, e.Template, e.Msg)
}

// Parse parses a template. Placeholders are written {{field}}, with
// optional spaces or tabs inside the braces ({{ key }}). Single braces are
// literal text; there is no way to write a literal "{{" or "}}".
func Parse(s string) (*Template, error) {
	fail := func(offset int, format string, args ...any) (*Template, error) {
		return nil, &SyntaxError{
			Template: s,
			Column:   utf8.RuneCountInString(s[:offset]) + 1,
			Msg:      fmt.Sprintf(format, args...),
		}
	}
	if s == "" {
		return nil, &SyntaxError{Template: s, Column: 1, Msg: "empty template"}
	}
	t := &Template{src: s}
	i := 0
	for i < len(s) {
		open := strings.Index(s[i:], "{{")
		closing := strings.Index(s[i:], "}}")
		if closing >= 0 && (open < 0 || closing < open) {
			return fail(i+closing, `"}}" without "{{"`)
		}
		if open < 0 {
			t.literal(s[i:])
			break
		}
		t.literal(s[i : i+open])
		open += i
		end := strings.Index(s[open+2:], "}}")
		if end < 0 {
			return fail(open, `"{{" is not closed by "}}"`)
		}
		inner := s[open+2 : open+2+end]
		name := strings.Trim(inner, " \t")
		if name == "" {
			return fail(open, "empty placeholder %q", s[open:open+2+end+2])
		}
		nameAt := open + 2 + strings.Index(inner, name)
		p, msg := parseField(name)
		if msg != "" {
			return fail(nameAt, "%s", msg)
		}
		t.parts = append(t.parts, p)
		if p.field == fieldAttr {
			t.attrs = true
		}
		i = open + 2 + end + 2
	}
	return t, nil
}

// MustParse is like Parse but panics when s is not a valid template. It is
// meant for templates written in code and tests.
func MustParse(s string) *Template {
	t, err := Parse(s)
	if err != nil {
		panic("keytemplate: " + err.Error())
	}
	return t
}

func (t *Template) literal(s string) {
	if s == "" {
		return
	}
	t.parts = append(t.parts, part{field: fieldLiteral, text: s})
	t.size += len(s)
}

// parseField parses the name inside a placeholder; msg is non-empty when
// the name is not a field.
func parseField(name string) (p part, msg string) {
	p.text = name
	switch name {
	case "key":
		p.field = fieldKey
	case "entity":
		p.field = fieldEntity
	case "job_id":
		p.field = fieldJobID
	case "job_type":
		p.field = fieldJobType
	case "queue":
		p.field = fieldQueue
	case "attrs":
		return p, `"attrs" needs a name: attrs.NAME`
	default:
		rest, ok := strings.CutPrefix(name, "attrs.")
		if !ok {
			return p, fmt.Sprintf("unknown field %q (known: %s)", name, knownFields)
		}
		p.field = fieldAttr
		p.path = strings.Split(rest, ".")
		for _, seg := range p.path {
			if seg == "" {
				return p, fmt.Sprintf("empty name in %q", name)
			}
			if strings.ContainsAny(seg, " \t\r\n{}") {
				return p, fmt.Sprintf("attrs name %q contains a space or brace", seg)
			}
		}
	}
	return p, ""
}

// String returns the template as it was written.
func (t *Template) String() string { return t.src }

// Fields returns the fields the template reads, each once, in order of
// first use: "key", "entity", "job_id", "job_type", "queue" or
// "attrs.NAME".
func (t *Template) Fields() []string {
	var out []string
	for _, p := range t.parts {
		if p.field == fieldLiteral {
			continue
		}
		seen := false
		for _, f := range out {
			if f == p.text {
				seen = true
				break
			}
		}
		if !seen {
			out = append(out, p.text)
		}
	}
	return out
}

// UsesAttrs reports whether the template reads attrs.
func (t *Template) UsesAttrs() bool { return t.attrs }

// Render renders the template for a job. It returns false when a
// placeholder cannot be rendered: its field is absent or empty, its attrs
// path is missing, or the value there is null, an object, an array or an
// empty string. Strings render unescaped, numbers exactly as written in the
// JSON, booleans as true or false. When an object has a name twice, the
// first value counts.
func (t *Template) Render(job Fields) (string, bool) {
	if !t.attrs {
		// A template that is one field needs no copy.
		if len(t.parts) == 1 {
			s := job.field(t.parts[0].field, t.parts[0].text)
			return s, s != ""
		}
		var stack [128]byte
		b, ok := t.appendPlain(stack[:0], &job)
		if !ok {
			return "", false
		}
		return string(b), true
	}
	r := renderers.Get().(*renderer)
	defer renderers.Put(r)
	b, ok := t.appendAttrs(r, r.buf[:0], &job)
	if cap(b) <= maxKeptBuffer {
		r.buf = b[:0]
	}
	if !ok {
		return "", false
	}
	return string(b), true
}

// AppendRender appends the rendered template to dst, as Render renders it.
// On false, the returned slice holds dst with unspecified bytes appended.
func (t *Template) AppendRender(dst []byte, job Fields) ([]byte, bool) {
	if !t.attrs {
		return t.appendPlain(dst, &job)
	}
	r := renderers.Get().(*renderer)
	defer renderers.Put(r)
	return t.appendAttrs(r, dst, &job)
}

// renderer holds what rendering a template that reads attrs reuses.
type renderer struct {
	p   fastjson.Parser
	buf []byte
}

var renderers = sync.Pool{New: func() any { return new(renderer) }}

// maxKeptBuffer bounds the buffer a pooled renderer keeps.
const maxKeptBuffer = 4 << 10

// appendPlain renders a template that does not read attrs. It is separate
// from appendAttrs so that dst does not escape: Render passes a buffer on
// its stack.
func (t *Template) appendPlain(dst []byte, job *Fields) ([]byte, bool) {
	for _, p := range t.parts {
		s := job.field(p.field, p.text)
		if s == "" {
			return dst, false
		}
		dst = append(dst, s...)
	}
	return dst, true
}

// appendAttrs renders a template that reads attrs, parsing them with r.
func (t *Template) appendAttrs(r *renderer, dst []byte, job *Fields) ([]byte, bool) {
	if len(job.Attrs) == 0 {
		return dst, false
	}
	attrs, err := r.p.ParseBytes(job.Attrs)
	if err != nil || attrs.Type() != fastjson.TypeObject {
		return dst, false
	}
	for _, p := range t.parts {
		ok := true
		if p.field == fieldAttr {
			dst, ok = appendAttr(dst, attrs, p.path)
		} else {
			s := job.field(p.field, p.text)
			dst, ok = append(dst, s...), s != ""
		}
		if !ok {
			return dst, false
		}
	}
	return dst, true
}

// field returns a job field other than attrs, or lit for literal text.
func (f *Fields) field(k field, lit string) string {
	switch k {
	case fieldKey:
		return f.Key
	case fieldEntity:
		return f.Entity
	case fieldJobID:
		return f.JobID
	case fieldJobType:
		return f.JobType
	case fieldQueue:
		return f.Queue
	}
	return lit
}

// appendAttr appends the value at path within the attrs object.
func appendAttr(dst []byte, v *fastjson.Value, path []string) ([]byte, bool) {
	for _, name := range path {
		o, err := v.Object()
		if err != nil {
			return dst, false
		}
		if v = o.Get(name); v == nil {
			return dst, false
		}
	}
	return AppendValue(dst, v)
}

// AppendValue appends an attribute value as a template renders it:
// strings as their value, numbers exactly as written, booleans as true or
// false. It reports false for what cannot be rendered: an empty string,
// null, an object, an array, or a number that is not JSON (NaN, Inf).
func AppendValue(dst []byte, v *fastjson.Value) ([]byte, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		s := v.GetStringBytes()
		return append(dst, s...), len(s) > 0
	case fastjson.TypeNumber:
		n := len(dst)
		dst = v.MarshalTo(dst)
		return dst, isNumber(dst[n:])
	case fastjson.TypeTrue:
		return append(dst, "true"...), true
	case fastjson.TypeFalse:
		return append(dst, "false"...), true
	}
	return dst, false
}

// isNumber reports whether b is a JSON number; fastjson also accepts NaN
// and Inf, which are not JSON.
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && b[start] == '0') {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}
