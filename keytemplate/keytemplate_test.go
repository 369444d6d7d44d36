package keytemplate

import (
	"errors"
	"slices"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"", `column 1 of "": empty template`},
		{"receipt/{{kee}}", `column 11 of "receipt/{{kee}}": unknown field "kee" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		{"{{ Key }}", `column 4 of "{{ Key }}": unknown field "Key" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		{"{{effect_key}}", `column 3 of "{{effect_key}}": unknown field "effect_key" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		{"a/{{key", `column 3 of "a/{{key": "{{" is not closed by "}}"`},
		{"a/{{key}", `column 3 of "a/{{key}": "{{" is not closed by "}}"`},
		{"a/{{}}", `column 3 of "a/{{}}": empty placeholder "{{}}"`},
		{"a/{{  }}", `column 3 of "a/{{  }}": empty placeholder "{{  }}"`},
		{"a}}b", `column 2 of "a}}b": "}}" without "{{"`},
		{"{{key}}}}", `column 8 of "{{key}}}}": "}}" without "{{"`},
		{"{{attrs}}", `column 3 of "{{attrs}}": "attrs" needs a name: attrs.NAME`},
		{"{{attrs.}}", `column 3 of "{{attrs.}}": empty name in "attrs."`},
		{"{{attrs.a..b}}", `column 3 of "{{attrs.a..b}}": empty name in "attrs.a..b"`},
		{"{{attrs.a b}}", `column 3 of "{{attrs.a b}}": attrs name "a b" contains a space or brace`},
		{"{{{key}}", `column 3 of "{{{key}}": unknown field "{key" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		{"{{ job id }}", `column 4 of "{{ job id }}": unknown field "job id" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
		// Columns count characters, not bytes.
		{"reçu/{{kee}}", `column 8 of "reçu/{{kee}}": unknown field "kee" (known: key, entity, job_id, job_type, queue, attrs.NAME)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			tmpl, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error", tt.in, tmpl)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *SyntaxError", err)
			}
		})
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	job := Fields{
		Key:     "payment:123",
		Entity:  "order:42",
		JobID:   "j-1",
		JobType: "SendReceipt",
		Queue:   "mail",
		Attrs: []byte(`{"payment_id": "p-9", "amount": 12.50, "big": 12345678901234567890,
			"neg": -1e-3, "ok": true, "no": false, "nil": null, "empty": "",
			"esc": "a\"b\u00e9\n", "customer": {"id": 7, "tags": ["x"]}, "list": [1],
			"dup": 1, "dup": 2, "a.b": "dotted"}`),
	}
	tests := []struct {
		tmpl string
		job  Fields
		want string // "" means Render returns false
	}{
		{"receipt/{{key}}", job, "receipt/payment:123"},
		{"{{ key }}", job, "payment:123"},
		{"{{\tkey\t}}", job, "payment:123"},
		{"{{key}}", job, "payment:123"},
		{"{{entity}}/{{job_id}}", job, "order:42/j-1"},
		{"{{job_type}}:{{queue}}", job, "SendReceipt:mail"},
		{"const", job, "const"},
		{"single {braces} stay", job, "single {braces} stay"},
		{"{{job_type}}:{{attrs.payment_id}}", job, "SendReceipt:p-9"},
		{"{{attrs.amount}}", job, "12.50"},
		{"{{attrs.big}}", job, "12345678901234567890"},
		{"{{attrs.neg}}", job, "-1e-3"},
		{"{{attrs.ok}}/{{attrs.no}}", job, "true/false"},
		{"{{attrs.esc}}", job, "a\"bé\n"},
		{"{{attrs.customer.id}}", job, "7"},
		{"{{attrs.dup}}", job, "1"},
		{"{{key}}{{key}}", job, "payment:123payment:123"},
		// Cannot render.
		{"{{attrs.nil}}", job, ""},
		{"{{attrs.empty}}", job, ""},
		{"{{attrs.customer}}", job, ""},
		{"{{attrs.list}}", job, ""},
		{"{{attrs.list.0}}", job, ""},
		{"{{attrs.customer.tags}}", job, ""},
		{"{{attrs.customer.name}}", job, ""},
		{"{{attrs.payment_id.x}}", job, ""},
		{"{{attrs.missing}}", job, ""},
		{"{{attrs.a.b}}", job, ""},
		{"x/{{key}}", Fields{}, ""},
		{"{{key}}", Fields{}, ""},
		{"{{entity}}", Fields{Key: "k"}, ""},
		{"{{key}}/{{attrs.payment_id}}", Fields{Key: "k"}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`[1]`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`null`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`{"x":1`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`{"x":NaN}`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`{"x":-Inf}`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`{"x":01}`)}, ""},
		{"{{attrs.x}}", Fields{Attrs: []byte(`{"x":0}`)}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			t.Parallel()
			tmpl := MustParse(tt.tmpl)
			got, ok := tmpl.Render(tt.job)
			if want := tt.want != ""; ok != want || got != tt.want {
				t.Errorf("Render = %q, %v; want %q, %v", got, ok, tt.want, want)
			}
			b, ok := tmpl.AppendRender([]byte("pre:"), tt.job)
			if ok != (tt.want != "") || (ok && string(b) != "pre:"+tt.want) {
				t.Errorf("AppendRender = %q, %v; want %q", b, ok, "pre:"+tt.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	t.Parallel()
	tmpl := MustParse("{{ attrs.a.b }}/{{key}}-{{attrs.a.b}}/{{queue}}{{key}}")
	if got, want := tmpl.Fields(), []string{"attrs.a.b", "key", "queue"}; !slices.Equal(got, want) {
		t.Errorf("Fields() = %q, want %q", got, want)
	}
	if !tmpl.UsesAttrs() {
		t.Error("UsesAttrs() = false")
	}
	if got := MustParse("x").Fields(); got != nil {
		t.Errorf("Fields() of a literal = %q, want none", got)
	}
	if MustParse("{{key}}").UsesAttrs() {
		t.Error("UsesAttrs() = true without attrs")
	}
	if s := "{{ key }}/x"; MustParse(s).String() != s {
		t.Errorf("String() = %q, want %q", MustParse(s).String(), s)
	}
}

func TestFieldsOf(t *testing.T) {
	t.Parallel()
	e := &twicetype.Event{Key: "k", Entity: "e", JobID: "j", JobType: "t", Queue: "q", Attrs: []byte(`{"a":1}`), Effect: "x"}
	got, ok := MustParse("{{key}}{{entity}}{{job_id}}{{job_type}}{{queue}}{{attrs.a}}").Render(FieldsOf(e))
	if !ok || got != "kejtq1" {
		t.Errorf("Render(FieldsOf) = %q, %v", got, ok)
	}
}

func TestMustParsePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("{{nope}}")
}

func TestRenderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool allocate")
	}
	job := Fields{Key: "payment:123", Attrs: []byte(`{"payment_id":"p-9","n":5}`)}
	for _, tc := range []struct {
		tmpl string
		max  float64
	}{
		{"{{key}}", 0},
		{"receipt/{{key}}", 1},
		{"receipt/{{attrs.payment_id}}/{{attrs.n}}", 1},
	} {
		tmpl := MustParse(tc.tmpl)
		tmpl.Render(job) // warm the parser pool
		if n := testing.AllocsPerRun(100, func() { tmpl.Render(job) }); n > tc.max {
			t.Errorf("Render(%q) allocates %v times, want ≤ %v", tc.tmpl, n, tc.max)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"receipt/{{key}}", "{{ attrs.a.b }}", "{{", "}}", "{{}}", "a{{key}}b{{attrs.x}}"} {
		f.Add(s, []byte(`{"a":{"b":"c"},"x":1}`))
	}
	f.Fuzz(func(t *testing.T, s string, attrs []byte) {
		tmpl, err := Parse(s)
		if err != nil {
			return
		}
		if tmpl.String() != s {
			t.Fatalf("String() = %q, want %q", tmpl.String(), s)
		}
		tmpl.Render(Fields{Key: "k", Entity: "e", JobID: "j", JobType: "t", Queue: "q", Attrs: attrs})
	})
}

func BenchmarkRender(b *testing.B) {
	job := Fields{Key: "payment:123", JobType: "SendReceipt", Attrs: []byte(`{"payment_id":"p-9","customer":{"id":7},"note":"a long note that is not read"}`)}
	for _, s := range []string{"receipt/{{key}}", "{{job_type}}:{{attrs.payment_id}}/{{attrs.customer.id}}"} {
		tmpl := MustParse(s)
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tmpl.Render(job)
			}
		})
	}
}
