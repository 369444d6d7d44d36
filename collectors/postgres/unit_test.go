package postgres

import (
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestHoles(t *testing.T) {
	r := &reader{kind: cursorInteger}
	t0 := time.UnixMilli(1000)
	var pos position
	r.advance(&pos, []string{"10"}, t0) // the first row: nothing below it is known
	r.advance(&pos, []string{"15"}, t0) // 11..14 skipped
	r.advance(&pos, []string{"16"}, t0.Add(time.Second))
	r.advance(&pos, []string{"18"}, t0.Add(time.Second)) // 17 skipped
	if got := pos.encode(); got != `{"after":["18"],"holes":[[11,14,1000],[17,17,2000]]}` {
		t.Fatalf("after gaps: %s", got)
	}
	r.advance(&pos, []string{"12"}, t0.Add(2*time.Second)) // a late commit splits its range
	r.advance(&pos, []string{"17"}, t0.Add(2*time.Second))
	if got := pos.encode(); got != `{"after":["18"],"holes":[[11,11,1000],[13,14,1000]]}` {
		t.Fatalf("after late commits: %s", got)
	}
	if ids := holeIDs(pos.Holes); !reflect.DeepEqual(ids, []int64{11, 13, 14}) {
		t.Errorf("ids %v", ids)
	}
	p2, err := parsePosition(pos.encode(), 1)
	if err != nil || !reflect.DeepEqual(p2, pos) {
		t.Errorf("round trip: %+v %v", p2, err)
	}
	expire(&pos, t0.Add(5*time.Second), 4*time.Second)
	if pos.Holes != nil {
		t.Errorf("holes older than settle kept: %v", pos.Holes)
	}
	// A jump far ahead keeps the newest maxHoles ids.
	r.advance(&pos, []string{"5000"}, t0)
	r.advance(&pos, []string{"5003"}, t0)
	if n := holeCount(pos.Holes); n != maxHoles || pos.Holes[len(pos.Holes)-1] != (hole{5001, 5002, 1000}) || pos.Holes[0][0] != 5000-maxHoles+2 {
		t.Errorf("capped holes: %d %v…", n, pos.Holes[0])
	}
	for _, bad := range []string{"17", `{"after":["1","2"]}`} {
		if _, err := parsePosition(bad, 1); err == nil {
			t.Errorf("position %s: no error", bad)
		}
	}
}

func TestValues(t *testing.T) {
	var c converter
	for _, tc := range []struct {
		oid  uint32
		text string
		want any
	}{
		{pgtype.TextOID, "a\nb", "a\nb"},
		{pgtype.Int8OID, "-9007199254740993", -9007199254740993},
		{pgtype.Int2OID, "7", 7},
		{pgtype.NumericOID, "12.50", 12.5},
		{pgtype.NumericOID, "12.00", 12},
		{pgtype.NumericOID, "NaN", "NaN"},
		{pgtype.Float8OID, "0.1", 0.1},
		{pgtype.Float4OID, "Infinity", "Infinity"},
		{pgtype.BoolOID, "t", true},
		{pgtype.BoolOID, "f", false},
		{pgtype.JSONBOID, `{"a": [1, 2.5, null], "b": {"c": "d"}}`, map[string]any{"a": []any{1, 2.5, nil}, "b": map[string]any{"c": "d"}}},
		{pgtype.JSONOID, `"s"`, "s"},
		{pgtype.TimestamptzOID, "2026-11-24 10:00:00.123456+00", "2026-11-24T10:00:00.123456Z"},
		{pgtype.TimestamptzOID, "2026-11-24 10:00:00+00", "2026-11-24T10:00:00Z"},
		{pgtype.TimestampOID, "2026-11-24 10:00:00.5", "2026-11-24T10:00:00.5Z"},
		{pgtype.TimestampOID, "infinity", "infinity"},
		{pgtype.UUIDOID, "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{pgtype.DateOID, "2026-11-24", "2026-11-24"},
	} {
		got, err := c.value(tc.oid, []byte(tc.text))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("value(%d, %q) = %#v, %v; want %#v", tc.oid, tc.text, got, err, tc.want)
		}
	}
	if v, err := c.value(pgtype.TextOID, nil); v != nil || err != nil {
		t.Errorf("NULL: %v %v", v, err)
	}
	if _, err := c.value(pgtype.JSONBOID, []byte("{")); err == nil {
		t.Error("bad json: no error")
	}
}

func TestRowIdentity(t *testing.T) {
	a := rowIdentity("ledger", "public.ledger", []string{"1"})
	for _, other := range []uint64{
		rowIdentity("ledger", "public.ledger", []string{"2"}),
		rowIdentity("state", "public.ledger", []string{"1"}),
		rowIdentity("ledger", "ledger", []string{"1"}),
		rowIdentity("ledger", "public.ledger", []string{"1", ""}),
	} {
		if other == a {
			t.Error("two rows or sources, one identity")
		}
	}
	if rowIdentity("ledger", "public.ledger", []string{"1"}) != a {
		t.Error("one row, two identities")
	}
}
