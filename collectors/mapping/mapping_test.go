package mapping

import (
	"strings"
	"testing"
	"time"

	"github.com/twicehq/twice/twicetype"
)

type rowEnv struct {
	Row map[string]any `expr:"row"`
}

func TestBuilderOverAnEnvironmentOfItsOwn(t *testing.T) {
	c := NewCompiler(rowEnv{})
	compile := func(src string) *Program {
		p, err := c.Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Given out of spec order: the builder runs them in spec order.
	b, err := NewBuilder([]Field{
		{Name: "effect_key", Prog: compile(`"receipt/" + row.payment`)},
		{Name: "kind", Prog: compile(`"effect"`)},
		{Name: "ts", Prog: compile(`row.at`)},
		{Name: "effect", Prog: compile(`"email.sent"`)},
		{Name: "attempt", Prog: compile(`row.n / 2`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var ev twicetype.Event
	env := &rowEnv{Row: map[string]any{"payment": "7", "at": "2026-11-24T10:00:00Z", "n": 6}}
	if err := b.Build(env, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.EffectKey != "receipt/7" || ev.Attempt != 3 || ev.Kind.String() != "effect" {
		t.Errorf("built %+v", ev)
	}
	// A failing expression is named in the reason of the field it left out.
	env.Row = map[string]any{"at": "2026-11-24T10:00:00Z", "n": 6}
	err = b.Build(env, &ev)
	if err == nil || !strings.Contains(err.Error(), `"effect_key"`) || !strings.Contains(err.Error(), "(map.effect_key: ") {
		t.Errorf("a row without payment: %v", err)
	}
	if _, err := c.Compile(`value.x`); err == nil || !strings.Contains(err.Error(), "unknown name value") {
		t.Errorf("a name of another environment compiles: %v", err)
	}
	if _, err := c.Compile(`now()`); err == nil {
		t.Error("now() compiles")
	}
	if _, err := NewBuilder([]Field{{Name: "bogus", Prog: compile(`1`)}}); err == nil {
		t.Error("an unknown field builds")
	}
}

func TestAppendJSON(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "null"},
		{3.0, "3"},
		{2.5, "2.5"},
		{"a\"\n", `"a\"\n"`},
		{map[string]any{"b": 1, "a": []any{true}}, `{"a":[true],"b":1}`},
		{time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600)), `"2026-01-02T02:04:05.000006Z"`},
	} {
		got, ok := AppendJSON(nil, tc.in)
		if !ok || string(got) != tc.want {
			t.Errorf("AppendJSON(%#v) = %s %v, want %s", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := AppendJSON(nil, time.Second); ok {
		t.Error("a duration has a JSON form")
	}
}
