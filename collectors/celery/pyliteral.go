package celery

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLiteralDepth bounds the nesting of a Python literal.
const maxLiteralDepth = 64

// parsePyLiteral reads the repr() of a Python value, as Celery writes a
// task's args, kwargs and result into its events ("('payment:1',)",
// "{'payment': 'payment:1', 'amount': 5}"). It is strict: strings (with
// their escapes, either quote), integers and floats (kept as written, as
// json.Number), True, False, None, tuples and lists ([]any), and dicts
// whose keys are strings or integers (map[string]any; an integer key as
// written). Anything else — sets, bytes, Decimal('1'), datetime(...),
// inf, a repr Celery truncated ("...") — is an error naming the offset.
func parsePyLiteral(s string) (any, error) {
	p := &pyParser{s: s}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, p.errorf("unexpected %q after the value", p.rest())
	}
	return v, nil
}

type pyParser struct {
	s string
	i int
}

func (p *pyParser) errorf(format string, args ...any) error {
	return fmt.Errorf("python literal at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

// rest is a short excerpt of what is left, for errors.
func (p *pyParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 16 {
		r = r[:16] + "…"
	}
	return r
}

func (p *pyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *pyParser) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, p.errorf("nested deeper than %d", maxLiteralDepth)
	}
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '\'' || c == '"':
		return p.str()
	case c == '(':
		return p.seq(depth, ')', true)
	case c == '[':
		return p.seq(depth, ']', false)
	case c == '{':
		return p.dict(depth)
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, w := range []struct {
			word string
			v    any
		}{{"True", true}, {"False", false}, {"None", nil}} {
			if strings.HasPrefix(p.s[p.i:], w.word) && !identChar(p.s, p.i+len(w.word)) {
				p.i += len(w.word)
				return w.v, nil
			}
		}
		return nil, p.errorf("unsupported value %q", p.rest())
	}
}

// identChar reports whether s[i] continues an identifier.
func identChar(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	c := s[i]
	return c == '_' || c == '(' || c == '.' || c == '\'' || c == '"' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// seq reads a tuple or a list up to close. A tuple of one needs its comma.
func (p *pyParser) seq(depth int, close byte, tuple bool) (any, error) {
	p.i++ // the opening bracket
	out := []any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == close {
			p.i++
			return out, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		switch {
		case p.i < len(p.s) && p.s[p.i] == ',':
			p.i++
		case p.i < len(p.s) && p.s[p.i] == close:
			if tuple && len(out) == 1 {
				return nil, p.errorf("a parenthesized value, not a tuple")
			}
			p.i++
			return out, nil
		default:
			return nil, p.errorf("want ',' or %q, got %q", close, p.rest())
		}
	}
}

func (p *pyParser) dict(depth int) (any, error) {
	p.i++ // {
	out := map[string]any{}
	for {
		p.space()
		if p.i < len(p.s) && p.s[p.i] == '}' {
			p.i++
			return out, nil
		}
		at := p.i
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		var key string
		switch k := k.(type) {
		case string:
			key = k
		case json.Number:
			if _, err := strconv.ParseInt(string(k), 10, 64); err != nil {
				p.i = at
				return nil, p.errorf("dict key %s is not a string or an integer", k)
			}
			key = string(k)
		default:
			p.i = at
			return nil, p.errorf("dict key is not a string or an integer (a set?)")
		}
		if _, dup := out[key]; dup {
			p.i = at
			return nil, p.errorf("dict key %q twice", key)
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.errorf("want ':' after a dict key, got %q", p.rest())
		}
		p.i++
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[key] = v
		p.space()
		switch {
		case p.i < len(p.s) && p.s[p.i] == ',':
			p.i++
		case p.i < len(p.s) && p.s[p.i] == '}':
			p.i++
			return out, nil
		default:
			return nil, p.errorf("want ',' or '}', got %q", p.rest())
		}
	}
}

// number reads an int or a float as Python's repr writes them, and keeps
// its text (a json.Number, so "1.0" stays "1.0"). Underscores, hex and
// complex numbers are errors.
func (p *pyParser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' || p.s[p.i] == '+' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intDigits := digits()
	frac := -1
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		frac = digits()
	}
	if intDigits == 0 && frac <= 0 {
		return nil, p.errorf("not a number: %q", p.s[start:min(len(p.s), start+16)])
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '-' || p.s[p.i] == '+') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("a number with an empty exponent")
		}
	}
	if identChar(p.s, p.i) {
		return nil, p.errorf("unsupported number %q", p.s[start:min(len(p.s), p.i+8)])
	}
	text := p.s[start:p.i]
	if text[0] == '+' {
		text = text[1:]
	}
	if _, err := strconv.ParseFloat(text, 64); err != nil {
		return nil, p.errorf("number %q: %v", text, err)
	}
	// JSON's form: no leading '.', no trailing '.', no leading zeros.
	jsonText, ok := jsonNumberText(text)
	if !ok {
		return nil, p.errorf("unsupported number %q", text)
	}
	return json.Number(jsonText), nil
}

// jsonNumberText rewrites a Python number as a JSON number ("5." → "5.0",
// ".5" → "0.5"); false for forms JSON cannot hold (leading zeros).
func jsonNumberText(t string) (string, bool) {
	neg := strings.HasPrefix(t, "-")
	body := strings.TrimPrefix(t, "-")
	if strings.HasPrefix(body, ".") {
		body = "0" + body
	}
	mant, exp, hasExp := strings.Cut(body, "e")
	if !hasExp {
		mant, exp, hasExp = strings.Cut(body, "E")
	}
	if strings.HasSuffix(mant, ".") {
		mant += "0"
	}
	intPart, _, _ := strings.Cut(mant, ".")
	if len(intPart) > 1 && intPart[0] == '0' {
		return "", false
	}
	out := mant
	if hasExp {
		out += "e" + exp
	}
	if neg {
		out = "-" + out
	}
	return out, json.Valid([]byte(out))
}

// str reads a quoted string with Python's escapes. Prefixes (b”, r”,
// f”) are not literals Celery writes for str and are errors.
func (p *pyParser) str() (any, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return nil, p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\n':
			return nil, p.errorf("newline in a string")
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return nil, err
			}
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && size == 1 {
				return nil, p.errorf("invalid UTF-8 in a string")
			}
			b.WriteString(p.s[p.i : p.i+size])
			p.i += size
		}
	}
}

func (p *pyParser) escape(b *strings.Builder) error {
	p.i++ // the backslash
	if p.i >= len(p.s) {
		return p.errorf("unterminated escape")
	}
	c := p.s[p.i]
	p.i++
	switch c {
	case '\\', '\'', '"':
		b.WriteByte(c)
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'v':
		b.WriteByte('\v')
	case '0':
		b.WriteByte(0)
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if p.i+n > len(p.s) {
			return p.errorf("short \\%c escape", c)
		}
		v, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
		if err != nil {
			return p.errorf("bad \\%c escape %q", c, p.s[p.i:p.i+n])
		}
		p.i += n
		r := rune(v)
		if !utf8.ValidRune(r) {
			return p.errorf("\\%c escape %X is not a character", c, v)
		}
		b.WriteRune(r)
	default:
		return p.errorf("unsupported escape \\%c", c)
	}
	return nil
}
