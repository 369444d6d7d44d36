package clickhouse

import (
	"github.com/valyala/fastjson"

	"github.com/twicehq/twice/keytemplate"
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
		if val.Type() == fastjson.TypeObject {
			if depth < maxAttrDepth {
				flattenInto(m, path, val, depth+1)
			}
			return
		}
		// What a template renders, and only that (keytemplate's rules).
		if b, ok := keytemplate.AppendValue(nil, val); ok {
			m[path] = string(b)
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
