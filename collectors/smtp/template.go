package smtp

import (
	"fmt"
	"net/mail"
	"strings"
)

// keyTemplate is a key_template: literal text with {{Header-Name}}
// placeholders, each replaced by that header's value.
type keyTemplate struct {
	parts []string // literal, header, literal, header, …, literal
}

// parseKeyTemplate parses s; an error names the column.
func parseKeyTemplate(s string) (*keyTemplate, error) {
	t := &keyTemplate{}
	rest, col := s, 1
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if j := strings.Index(rest, "}}"); j >= 0 {
				return nil, fmt.Errorf("column %d of %q: }} without {{", col+j, s)
			}
			t.parts = append(t.parts, rest)
			break
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("column %d of %q: {{ without }}", col+i, s)
		}
		name := strings.TrimSpace(rest[i+2 : i+2+j])
		if !validHeaderName(name) {
			return nil, fmt.Errorf("column %d of %q: %q is not a header name", col+i+2, s, name)
		}
		t.parts = append(t.parts, rest[:i], name)
		col += i + 2 + j + 2
		rest = rest[i+2+j+2:]
	}
	if len(t.parts) == 1 {
		return nil, fmt.Errorf("%q has no {{Header-Name}}: every message would have the same key", s)
	}
	return t, nil
}

// render returns the key of a message's headers; false when a header it
// names is missing or empty.
func (t *keyTemplate) render(h mail.Header) (string, bool) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v := strings.TrimSpace(h.Get(p))
		if v == "" {
			return "", false
		}
		b.WriteString(v)
	}
	return b.String(), true
}
