package codec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// fullEvent sets every field of an event to a non-zero value.
func fullEvent() twicetype.Event {
	return twicetype.Event{
		ID: "e-1", Identity: 0xdeadbeefcafef00d, Time: 1_795_000_000_000_000_000, Kind: twicetype.Effect, SecondsLikeTS: true,
		Queue: "emails", JobType: "SendReceipt", JobID: "j-1", Key: "payment:123",
		Effect: "email.sent", EffectKey: "receipt/payment:123", Entity: "order:42", Error: "boom",
		Attempt: 3, HasAttempt: true, Seq: -7, HasSeq: true, Terminal: true, HasTerminal: true,
		Retry: true, HasRetry: true, Attrs: []byte(`{"a":1}`), Source: "events.jsonl", Line: 12345,
	}
}

// TestEventFieldsAreCovered fails when twicetype.Event gains a field that
// AppendEvent does not know: update the presence bits and this list.
func TestEventFieldsAreCovered(t *testing.T) {
	want := []string{"ID", "Identity", "Time", "Kind", "SecondsLikeTS", "Queue", "JobType", "JobID", "Key", "Effect",
		"EffectKey", "Entity", "Error", "Attempt", "HasAttempt", "Seq", "HasSeq", "Terminal",
		"HasTerminal", "Retry", "HasRetry", "Attrs", "Source", "Line"}
	typ := reflect.TypeFor[twicetype.Event]()
	var got []string
	for i := range typ.NumField() {
		got = append(got, typ.Field(i).Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("twicetype.Event fields changed:\n got %v\nwant %v\nencode the new field in AppendEvent/ReadEvent", got, want)
	}
	// Every field set: each must survive the round trip on its own.
	full := fullEvent()
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		var ev twicetype.Event
		reflect.ValueOf(&ev).Elem().Field(i).Set(v.Field(i))
		roundTrip(t, &ev)
	}
	roundTrip(t, &full)
}

func roundTrip(t *testing.T, ev *twicetype.Event) {
	t.Helper()
	b := AppendEvent([]byte{0xff}, ev)
	r := NewReader("journal", b[1:])
	var got twicetype.Event
	if err := ReadEvent(r, &got); err != nil {
		t.Fatalf("ReadEvent: %v", err)
	}
	if err := r.End(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, ev) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, *ev)
	}
}

func TestEventRoundTripEdges(t *testing.T) {
	for _, ev := range []twicetype.Event{
		{},
		{Attrs: []byte{}}, // empty, not nil
		{Time: math.MinInt64, Attempt: math.MaxInt64, Seq: math.MinInt64, Line: -1, Kind: 255},
		{ID: strings.Repeat("x", 70000), Identity: 1},
		{HasAttempt: true, HasSeq: true}, // zero values that are present
	} {
		roundTrip(t, &ev)
	}
}

func TestReadEventErrors(t *testing.T) {
	ev := fullEvent()
	b := AppendEvent(nil, &ev)
	for n := range len(b) {
		var got twicetype.Event
		err := ReadEvent(NewReader("journal", b[:n]), &got)
		if err == nil {
			t.Fatalf("truncated at %d: no error", n)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "journal: truncated at byte") {
			t.Fatalf("truncated at %d: %v", n, err)
		}
		if !reflect.DeepEqual(got, twicetype.Event{}) {
			t.Fatalf("event not zeroed on error: %+v", got)
		}
	}
	err := ReadEvent(NewReader("journal", []byte{0x80, 0x80, 0x80, 0x08}), new(twicetype.Event))
	if err == nil || !strings.Contains(err.Error(), "bad tag") {
		t.Fatalf("unknown bits: %v", err)
	}
}

func TestPrimitives(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Byte(7)
	w.Bool(true)
	w.Uvarint(math.MaxUint64)
	w.Varint(math.MinInt64)
	w.Int(-3)
	w.Uint64(42)
	w.Float64(math.Inf(-1))
	w.String("héllo")
	w.Bytes0(nil)
	w.Bytes0([]byte{})
	w.Strings(nil)
	w.Strings([]string{})
	w.Strings([]string{"a", ""})
	w.Sym("emails")
	w.Sym("webhooks")
	w.Sym("emails")
	big := strings.Repeat("z", 3<<20) // crosses flushes
	w.String(big)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if int64(buf.Len()) != w.Len() {
		t.Fatalf("Len = %d, wrote %d", w.Len(), buf.Len())
	}
	body, err := Verify("snapshot", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader("snapshot", body)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("byte", r.Byte(), byte(7))
	check("bool", r.Bool(), true)
	check("uvarint", r.Uvarint(), uint64(math.MaxUint64))
	check("varint", r.Varint(), int64(math.MinInt64))
	check("int", r.Int(), -3)
	check("uint64", r.Uint64(), uint64(42))
	check("float", r.Float64(), math.Inf(-1))
	check("string", r.String(), "héllo")
	check("nil bytes", r.Bytes0(), []byte(nil))
	check("empty bytes", r.Bytes0(), []byte{})
	check("nil strings", r.Strings(), []string(nil))
	check("empty strings", r.Strings(), []string{})
	check("strings", r.Strings(), []string{"a", ""})
	check("sym", r.Sym(), "emails")
	check("sym", r.Sym(), "webhooks")
	check("sym", r.Sym(), "emails")
	check("big", r.String() == big, true)
	if err := r.End(); err != nil {
		t.Fatal(err)
	}

	// A reset Writer writes what a new one does.
	w.Reset(nil)
	w.Sym("emails")
	w.String("x")
	fresh := NewWriter(nil)
	fresh.Sym("emails")
	fresh.String("x")
	if w.Close() != nil || fresh.Close() != nil || !bytes.Equal(w.Bytes(), fresh.Bytes()) {
		t.Fatalf("after Reset: %x, want %x", w.Bytes(), fresh.Bytes())
	}

	// A flipped byte fails the checksum.
	data := bytes.Clone(buf.Bytes())
	data[5] ^= 1
	if _, err := Verify("snapshot", data); err == nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped byte: %v", err)
	}
	// Sticky errors.
	r = NewReader("snapshot", []byte{2})
	if r.Bool(); r.Err() == nil || !strings.Contains(r.Err().Error(), "snapshot: bad bool 0x2 at byte 0") {
		t.Fatalf("bad bool: %v", r.Err())
	}
	r = NewReader("snapshot", []byte{5, 'a'})
	if s := r.String(); s != "" || r.Err().Error() != "snapshot: truncated at byte 2" {
		t.Fatalf("truncated string: %q %v", s, r.Err())
	}
	if r.Uvarint() != 0 || r.Uint64() != 0 {
		t.Fatal("reads after an error are not zero")
	}
	r = NewReader("snapshot", []byte{200, 1})
	if n := r.Count(1); n != 0 || r.Err() == nil {
		t.Fatalf("huge count accepted: %d", n)
	}
}

// FuzzReadEvent: any input either fails cleanly or decodes to an event
// that encodes and decodes to itself.
func FuzzReadEvent(f *testing.F) {
	ev := fullEvent()
	f.Add(AppendEvent(nil, &ev))
	f.Add(AppendEvent(nil, &twicetype.Event{}))
	f.Add(AppendEvent(nil, &twicetype.Event{Attrs: []byte{}, Kind: twicetype.State, Entity: "o"}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader("journal", data)
		for r.Remaining() > 0 {
			var got twicetype.Event
			if err := ReadEvent(r, &got); err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error does not wrap ErrCorrupt: %v", err)
				}
				return
			}
			b := AppendEvent(nil, &got)
			var again twicetype.Event
			if err := ReadEvent(NewReader("journal", b), &again); err != nil {
				t.Fatalf("re-read: %v", err)
			}
			if !reflect.DeepEqual(got, again) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", again, got)
			}
		}
	})
}

func BenchmarkAppendEvent(b *testing.B) {
	ev := fullEvent()
	ev.Attrs, ev.Error, ev.Terminal = nil, "", false
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEvent(buf[:0], &ev)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkReadEvent(b *testing.B) {
	ev := fullEvent()
	ev.Attrs, ev.Error, ev.Terminal = nil, "", false
	data := AppendEvent(nil, &ev)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var got twicetype.Event
	for b.Loop() {
		if err := ReadEvent(NewReader("journal", data), &got); err != nil {
			b.Fatal(err)
		}
	}
}
