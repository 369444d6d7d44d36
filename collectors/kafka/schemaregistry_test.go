package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/internal/schemaregistry/registrytest"
	"github.com/twicehq/twice/twicetype"
)

const registryMap = `    format: map
    schema_registry: %s
    map: {kind: '"effect"', ts: value.at, effect: '"x"', effect_key: value.id}
`

func wireValue(id int, payload string) string {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	return string(b) + payload
}

// TestMapSchemaRegistry maps wire-format values through a registry: a
// known id decodes, a plain JSON value is read as JSON, an unknown id is
// malformed naming it, and a registry that cannot be reached leaves the
// message unmapped and uncounted, to be tried again.
func TestMapSchemaRegistry(t *testing.T) {
	reg := registrytest.New()
	url := registrytest.Start(t, reg)
	id := reg.Register("t-value", registrytest.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	m := mapper(t, strings.Replace(registryMap, "%s", url, 1), MapperOptions{})
	ctx := context.Background()

	for _, v := range []string{wireValue(id, `{"id":"a","at":"2026-03-01T10:00:00Z"}`), `{"id":"a","at":"2026-03-01T10:00:00Z"}`} {
		evs, err := m.MapAllContext(ctx, msg(v), nil)
		if err != nil || len(evs) != 1 || evs[0].EffectKey != "a" || evs[0].Kind != twicetype.Effect {
			t.Fatalf("MapAllContext(%q) = %+v, %v", v, evs, err)
		}
	}
	var ev twicetype.Event
	if err := m.Map(msg(wireValue(id, `{"id":"b","at":"2026-03-01T10:00:00Z"}`)), &ev); err != nil || ev.EffectKey != "b" {
		t.Fatalf("Map = %+v, %v", ev, err)
	}

	_, err := m.MapAllContext(ctx, msg(wireValue(77, `{}`)), nil)
	var mal twicetype.Malformed
	if !errors.As(err, &mal) || mal.Error() != "src t[3]:1234: value: schema id 77 is not in the schema registry (404)" {
		t.Fatalf("unknown id: %v", err)
	}
	if n := m.Stats().Counts().Malformed; n != 1 {
		t.Errorf("malformed = %d, want 1", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	client, err := schemaregistry.New(schemaregistry.Options{URL: down, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	m = mapper(t, strings.Replace(registryMap, "%s", down, 1), MapperOptions{Registry: client})
	evs, err := m.MapAllContext(ctx, msg(wireValue(id, `{"id":"c","at":"2026-03-01T10:00:00Z"}`)), nil)
	if !IsRetryable(err) || len(evs) != 0 || errors.As(err, &mal) {
		t.Fatalf("registry down: %+v, %v; want a retryable error", evs, err)
	}
	if !strings.Contains(err.Error(), "t[3] offset 1234") {
		t.Errorf("error %v does not say which message waits", err)
	}
	if c := m.Stats().Counts(); c.Malformed != 0 || c.Skipped != 0 {
		t.Errorf("counts while the registry is down: %+v", c)
	}
}
