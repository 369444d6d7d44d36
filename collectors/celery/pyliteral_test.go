package celery

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParsePyLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"()":                                    `[]`,
		"('payment:1',)":                        `["payment:1"]`,
		"('a', 2, -3.5, 1e-05, True, None)":     `["a",2,-3.5,1e-05,true,null]`,
		"{'payment': 'payment:1', 'amount': 5}": `{"amount":5,"payment":"payment:1"}`,
		"{}":                                    `{}`,
		`{"it's": 'say "hi"'}`:                  `{"it's":"say \"hi\""}`,
		`'caf\xe9 \u20ac \U0001f600 \\ \n'`:     `"café € 😀 \\ \n"`,
		"[1, [2, (3, 4)], {'k': [None]}]":       `[1,[2,[3,4]],{"k":[null]}]`,
		"{1: 'one', -2: 'minus two'}":           `{"-2":"minus two","1":"one"}`,
		"'ünïcode'":                             `"ünïcode"`,
		" 5. ":                                  `5.0`,
		".5":                                    `0.5`,
		"{'order': {'id': 42}}":                 `{"order":{"id":42}}`,
	} {
		v, err := parsePyLiteral(in)
		if err != nil {
			t.Errorf("parsePyLiteral(%s): %v", in, err)
			continue
		}
		got, _ := json.Marshal(v)
		if string(got) != want {
			t.Errorf("parsePyLiteral(%s) = %s, want %s", in, got, want)
		}
	}
	// Numbers keep their text.
	v, _ := parsePyLiteral("(1.50, 10)")
	if !reflect.DeepEqual(v, []any{json.Number("1.50"), json.Number("10")}) {
		t.Errorf("numbers %#v", v)
	}
}

func TestParsePyLiteralErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                           "unexpected end",
		"('a')":                      "a parenthesized value, not a tuple",
		"{1, 2}":                     "want ':' after a dict key",
		"{'a': 1, 'a': 2}":           `dict key "a" twice`,
		"{(1,): 2}":                  "dict key is not a string or an integer",
		"{1.5: 2}":                   "dict key 1.5 is not a string or an integer",
		"b'bytes'":                   "unsupported value",
		"Decimal('1.0')":             "unsupported value",
		"datetime.datetime(2026, 1)": "unsupported value",
		"inf":                        "unsupported value",
		"('a', 'b'...":               "want ',' or ')'",
		"'unterminated":              "unterminated string",
		`'\q'`:                       `unsupported escape \q`,
		`'\x4'`:                      `bad \x escape`,
		`'\ud800'`:                   "is not a character",
		"0x10":                       "unsupported number",
		"1_000":                      "unsupported number",
		"007":                        "unsupported number",
		"1e":                         "empty exponent",
		"[1] [2]":                    "after the value",
		"Truely":                     "unsupported value",
		"'a\nb'":                     "newline in a string",
		strings.Repeat("[", 100):     "nested deeper than 64",
		"{'k' 1}":                    "want ':' after a dict key",
	} {
		_, err := parsePyLiteral(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parsePyLiteral(%q): error %v, want it to contain %q", in, err, want)
		}
	}
}

// FuzzParsePyLiteral checks that the parser never panics, that what it
// accepts becomes valid JSON, and that the JSON of what it accepts, read
// back as a literal (JSON's lists, strings and numbers are Python's),
// gives the same value.
func FuzzParsePyLiteral(f *testing.F) {
	for _, s := range []string{"()", "('payment:1',)", "{'payment': 'payment:1', 'amount': 5}", `'\xe9\u20ac'`,
		"[1, [2, (3, 4)], {'k': None}]", "{1: -2.5e3}", "True", "'a\\'b'", `"x"`, "Decimal('1')"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parsePyLiteral(s)
		if err != nil {
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q parsed to %#v, which is not JSON: %v", s, v, err)
		}
		if !json.Valid(b) {
			t.Fatalf("%q: invalid JSON %s", s, b)
		}
		py := strings.NewReplacer("true", "True", "false", "False", "null", "None").Replace(string(b))
		if strings.ContainsAny(string(b), `\`) || strings.Contains(string(b), "true") || strings.Contains(string(b), "false") || strings.Contains(string(b), "null") {
			return // escapes and words inside strings differ between the two languages
		}
		v2, err := parsePyLiteral(py)
		if err != nil {
			t.Fatalf("%q → %s → %q: %v", s, b, py, err)
		}
		b2, _ := json.Marshal(v2)
		if string(b2) != string(b) {
			t.Fatalf("%q → %s → %s", s, b, b2)
		}
	})
}
