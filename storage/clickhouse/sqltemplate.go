package clickhouse

import (
	"fmt"
	"strings"

	"github.com/twicehq/twice/keytemplate"
)

// quote writes s as a ClickHouse string literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// templateSQL translates an effect_key template into SQL over the columns
// of the jf CTE (a job's first values): the rendered key, the condition
// under which it renders, and the order (o) at which the job had every
// field it needs: render() in the engine renders a job's keys when one of
// its fields gets its first value, and since fields never change once set,
// a key renders at the event that set the last field it reads.
func templateSQL(t *keytemplate.Template) (value, cond, at string, err error) {
	src := t.String()
	var vals, conds []string
	ats := []string{"jtype_o"}
	for i := 0; i < len(src); {
		open := strings.Index(src[i:], "{{")
		if open < 0 {
			vals = append(vals, quote(src[i:]))
			break
		}
		if open > 0 {
			vals = append(vals, quote(src[i:i+open]))
		}
		open += i
		end := strings.Index(src[open+2:], "}}")
		if end < 0 {
			return "", "", "", fmt.Errorf("template %q: unclosed placeholder", src)
		}
		name := strings.Trim(src[open+2:open+2+end], " \t")
		i = open + 2 + end + 2
		var col, colAt string
		switch name {
		case "key":
			col, colAt = "jkey", "jkey_o"
		case "entity":
			col, colAt = "jentity", "jentity_o"
		case "queue":
			col, colAt = "jqueue", "jqueue_o"
		case "job_type":
			col, colAt = "jtype", "jtype_o"
		case "job_id":
			col, colAt = "job_id", "first_o"
		default:
			path, ok := strings.CutPrefix(name, "attrs.")
			if !ok {
				return "", "", "", fmt.Errorf("template %q: unknown field %q", src, name)
			}
			col, colAt = "jattrs["+quote(path)+"]", "jattrs_o"
		}
		vals = append(vals, col)
		conds = append(conds, col+" != ''")
		ats = append(ats, colAt)
	}
	if len(vals) == 1 {
		value = vals[0]
	} else {
		value = "concat(" + strings.Join(vals, ", ") + ")"
	}
	if len(conds) == 0 {
		conds = append(conds, "1")
	}
	at = ats[0]
	if len(ats) > 1 {
		at = "greatest(" + strings.Join(ats, ", ") + ")"
	}
	return value, strings.Join(conds, " AND "), at, nil
}
