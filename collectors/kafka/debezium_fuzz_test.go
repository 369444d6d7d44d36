package kafka

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twicehq/twice/twicetype"
)

// FuzzDebezium feeds any key and value to a source with format debezium
// (an effect and a state): a message never panics, and is skipped, malformed
// with a reason, or one event of each output at most, of its kind.
func FuzzDebezium(f *testing.F) {
	for _, name := range []string{"recorded.jsonl", "recorded-schemas.jsonl"} {
		b, err := os.ReadFile(filepath.Join("testdata", "debezium", name))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			// The whole line is no change event; its value is one.
			if i := strings.Index(line, `,"value":`); i >= 0 {
				f.Add([]byte(`{"id":1}`), []byte(line[i+len(`,"value":`):len(line)-1]))
			}
		}
	}
	f.Add([]byte(nil), []byte(nil))
	m := mapper(f, `    format: debezium
    debezium:
      effect: ledger.insert
      effect_ops: [c, u]
      effect_key: '"charge/" + string(row.payment_id ?? key?.id)'
      entity: '"order:" + string(row.order_id ?? row.id)'
      attrs: '{"tx": transaction?.id, "pos": position}'
      state: {ops: [c, u, d, r], terminal: 'row.status == "refunded" || op == "d"'}
`, MapperOptions{})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		msg := &Message{Topic: "t", Offset: 7, Key: key, Value: value}
		evs, err := m.MapAll(msg, nil)
		if err != nil {
			var mal twicetype.Malformed
			if !errors.As(err, &mal) || mal.Reason == "" || len(evs) != 0 {
				t.Fatalf("error %v (%T) with %d events", err, err, len(evs))
			}
			return
		}
		if len(evs) > 2 {
			t.Fatalf("%d events", len(evs))
		}
		for _, ev := range evs {
			if ev.Kind != twicetype.Effect && ev.Kind != twicetype.State {
				t.Fatalf("kind %v", ev.Kind)
			}
			if ev.ID == "" && ev.Identity == 0 {
				t.Fatal("an event without identity")
			}
		}
		if len(evs) == 2 && evs[0].Ref() == evs[1].Ref() && evs[0].Identity == evs[1].Identity {
			t.Fatal("two events of one message with one identity")
		}
	})
}
