package mapping

import (
	"strconv"

	"github.com/valyala/fastjson"
)

// FromJSON converts a parsed JSON value into what expressions see:
// objects as map[string]any (the first of duplicate keys wins, as in a
// file), arrays as []any, integers that fit int as int, other numbers as
// float64.
func FromJSON(v *fastjson.Value) any {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		out := make(map[string]any, o.Len())
		o.Visit(func(k []byte, v *fastjson.Value) {
			if _, dup := out[string(k)]; !dup { // first of duplicate keys wins, as in jsonl
				out[string(k)] = FromJSON(v)
			}
		})
		return out
	case fastjson.TypeArray:
		a, _ := v.Array()
		out := make([]any, len(a))
		for i, e := range a {
			out[i] = FromJSON(e)
		}
		return out
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		return string(s)
	case fastjson.TypeNumber:
		raw := v.MarshalTo(nil)
		if n, err := strconv.ParseInt(string(raw), 10, 0); err == nil {
			return int(n)
		}
		f, _ := v.Float64()
		return f
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	}
	return nil
}
