package clickhouse

import (
	"github.com/valyala/fastjson"
)

// maxAttrDepth bounds how deep flattenAttrs walks nested objects.
const maxAttrDepth = 32

// flattenAttrs maps every path a template can read in an attrs object
// ({{attrs.a.b}} reads "a.b") to the value the template renders there:
// strings unescaped, numbers exactly as written, booleans as true/false
// (keytemplate.Template.Render). Paths that cannot be rendered (null,
// arrays, empty strings, objects themselves) are left out, and so are keys
// containing a dot, which no template can name. When an object has a name
// twice the first value counts, as in Render.
//
// The audit renders effect_key templates in SQL from this map: ClickHouse's
// JSON functions re-format numbers (1.50 becomes 1.5), which would break
// "numbers exactly as written".
func flattenAttrs(p *fastjson.Parser, raw []byte) map[string]string {
	if p == nil {
		p = new(fastjson.Parser)
	}
	if len(raw) == 0 {
		return nil
	}
	v, err := p.ParseBytes(raw)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil
	}
	m := map[string]string{}
	flattenInto(m, "", v, 0)
	return m
}

func flattenInto(m map[string]string, prefix string, v *fastjson.Value, depth int) {
	o, _ := v.Object()
	seen := map[string]struct{}{}
	o.Visit(func(k []byte, val *fastjson.Value) {
		name := string(k)
		if _, dup := seen[name]; dup {
			return
		}
		seen[name] = struct{}{}
		if name == "" || containsDot(name) {
			return
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		switch val.Type() {
		case fastjson.TypeString:
			if s := val.GetStringBytes(); len(s) > 0 {
				m[path] = string(s)
			}
		case fastjson.TypeNumber:
			b := val.MarshalTo(nil)
			if isJSONNumber(b) {
				m[path] = string(b)
			}
		case fastjson.TypeTrue:
			m[path] = "true"
		case fastjson.TypeFalse:
			m[path] = "false"
		case fastjson.TypeObject:
			if depth < maxAttrDepth {
				flattenInto(m, path, val, depth+1)
			}
		}
	})
}

func containsDot(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return true
		}
	}
	return false
}

// isJSONNumber reports whether b is a JSON number (fastjson also accepts
// NaN and Inf, which templates do not render).
func isJSONNumber(b []byte) bool {
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
