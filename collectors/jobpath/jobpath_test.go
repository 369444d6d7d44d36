package jobpath

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	if p, err := Parse(""); p != nil || err != nil {
		t.Errorf(`Parse("") = %v, %v; want no path`, p, err)
	}
	if p, err := Parse("args.0.payment"); err != nil || p.String() != "args.0.payment" || len(p) != 3 {
		t.Errorf("Parse = %q, %v", p, err)
	}
	for p, want := range map[string]string{
		".a":   `path ".a": segment 1 is empty`,
		"a..b": `path "a..b": segment 2 is empty`,
		"a.":   `path "a.": segment 2 is empty`,
		".":    `path ".": segment 1 is empty`,
	} {
		if _, err := Parse(p); err == nil || err.Error() != want {
			t.Errorf("Parse(%q) error %v, want %q", p, err, want)
		}
	}
}

func TestLookup(t *testing.T) {
	obj := map[string]any{"args": []any{map[string]any{"a": "x"}, "y"}, "n": nil}
	for path, want := range map[string]any{
		"args.0.a": "x", "args.1": "y", "args.2": nil, "args.-1": nil, "args.01": nil, "args.+1": nil,
		"args.x": nil, "args.1.z": nil, "nope": nil, "n": nil, "n.x": nil,
	} {
		p, err := Parse(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Lookup(obj); got != want {
			t.Errorf("lookup %s = %v, want %v", path, got, want)
		}
	}
	if got := Path(nil).Lookup(obj); got != nil {
		t.Errorf("no path resolved to %v", got)
	}
}

func TestScalar(t *testing.T) {
	for v, want := range map[any]string{"s": "s", "": "", json.Number("12.0"): "12.0", json.Number("1e3"): "1e3"} {
		if got, ok := Scalar(v); !ok || got != want {
			t.Errorf("Scalar(%#v) = %q, %v; want %q", v, got, ok, want)
		}
	}
	// Only strings and numbers as written: not objects, arrays, booleans,
	// null, nor numbers decoded to Go number types.
	for _, v := range []any{map[string]any{}, []any{"a"}, true, nil, 1.5, 7} {
		if got, ok := Scalar(v); ok {
			t.Errorf("Scalar(%#v) = %q, want none", v, got)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestResolve(t *testing.T) {
	m, err := NewMapping("data.items.1.sku", "data.n", map[string]string{
		"t": "opts.attempts", "o": "data.obj", "missing": "data.none", "null": "data.null", "q\"": "data.n",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := decode(t, `{"data":{"items":[{"sku":"x"},{"sku":"y"}],"n":12.0,"null":null,"obj":{"b":1,"a":[true,null]}},"opts":{"attempts":3}}`)
	f := m.Resolve(p)
	if f.Key != "y" || f.Entity != "12.0" || string(f.Attrs) != `{"o":{"a":[true,null],"b":1},"q\"":12.0,"t":3}` {
		t.Errorf("fields %q %q attrs %s", f.Key, f.Entity, f.Attrs)
	}
	// Objects, arrays, booleans and null are no key or entity.
	for _, path := range []string{"data.obj", "data.items", "data.obj.a.0", "data.obj.a.1", "data.missing"} {
		m, _ := NewMapping(path, path, nil, nil)
		if f := m.Resolve(p); f.Key != "" || f.Entity != "" || f.Attrs != nil {
			t.Errorf("%s: fields %+v", path, f)
		}
	}
	if f := m.Resolve(nil); f.Key != "" || f.Entity != "" || f.Attrs != nil {
		t.Errorf("an unknown payload gave %+v", f)
	}
	if f := m.Resolve(map[string]any{"data": "x"}); f.Attrs != nil {
		t.Errorf("no attr resolved, attrs %s, want nil", f.Attrs)
	}
	if (&Mapping{}).Resolve(p).Attrs != nil {
		t.Error("the zero Mapping resolved attrs")
	}
}

func TestMappingEmptyAndPaths(t *testing.T) {
	if !(&Mapping{}).Empty() {
		t.Error("zero Mapping not empty")
	}
	m, err := NewMapping("", "", nil, nil)
	if err != nil || !m.Empty() {
		t.Errorf("no paths: %v, %v", m, err)
	}
	for _, c := range [][3]string{{"a", "", ""}, {"", "a", ""}, {"", "", "a"}} {
		var attrs map[string]string
		if c[2] != "" {
			attrs = map[string]string{"x": c[2]}
		}
		m, err := NewMapping(c[0], c[1], attrs, nil)
		if err != nil || m.Empty() {
			t.Errorf("%q: empty %v, %v", c, m.Empty(), err)
		}
	}
	m, _ = NewMapping("", "e.1", map[string]string{"b": "b", "a": "a.x"}, nil)
	var got []string
	for _, p := range m.Paths() {
		got = append(got, p.String())
	}
	if fmt.Sprint(got) != "[ e.1 a.x b]" {
		t.Errorf("paths %q", got)
	}
}

// root accepts paths starting with args, as a tap's RootCheck does.
func root(p string, path Path) error {
	if path[0] != "args" {
		return fmt.Errorf("path %q: starts with args", p)
	}
	return nil
}

func TestNewMappingErrors(t *testing.T) {
	for _, c := range []struct {
		key, entity string
		attrs       map[string]string
		check       RootCheck
		want        string
	}{
		{"a..b", "", nil, nil, `key: path "a..b": segment 2 is empty`},
		{"", ".", nil, nil, `entity: path ".": segment 1 is empty`},
		{"", "", map[string]string{"z": "ok", "y": "x."}, nil, `attrs.y: path "x.": segment 2 is empty`},
		{"kwargs.a", "", nil, root, `key: path "kwargs.a": starts with args`},
		{"args.0", "name", nil, root, `entity: path "name": starts with args`},
		{"", "", map[string]string{"n": "x"}, root, `attrs.n: path "x": starts with args`},
		{"", "", map[string]string{"n": "args..x"}, root, `attrs.n: path "args..x": segment 2 is empty`},
	} {
		if _, err := NewMapping(c.key, c.entity, c.attrs, c.check); err == nil || err.Error() != c.want {
			t.Errorf("%+v: error %v, want %q", c, err, c.want)
		}
	}
	if _, err := NewMapping("args.0", "", map[string]string{"a": "args"}, root); err != nil {
		t.Errorf("paths the check accepts: %v", err)
	}
	// The check does not see unset paths.
	if _, err := NewMapping("", "", nil, func(string, Path) error { return fmt.Errorf("called") }); err != nil {
		t.Errorf("check called on no path: %v", err)
	}
}

func TestCheck(t *testing.T) {
	var got []string
	bad := func(field, format string, args ...any) {
		got = append(got, field+": "+fmt.Sprintf(format, args...))
	}
	Check("kwargs.a", "a..b", map[string]string{"z": "args.ok", "": "args.x", "e": "", "d": "y", "c": "args.", "b": "args.0"}, root, bad)
	want := []string{
		`key: path "kwargs.a": starts with args`,
		`entity: path "a..b": segment 2 is empty`,
		`attrs: an empty name`,
		`attrs.c: path "args.": segment 2 is empty`,
		`attrs.d: path "y": starts with args`,
		`attrs.e: empty path`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("reported\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = nil
	Check("", "", nil, root, bad)
	Check("a.b", "c", map[string]string{"x": "y.0"}, nil, bad)
	if got != nil {
		t.Errorf("valid paths reported %q", got)
	}
}
