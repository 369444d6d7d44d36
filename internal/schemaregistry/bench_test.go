package schemaregistry_test

import (
	"context"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/internal/schemaregistry/registrytest"
)

// BenchmarkDecode measures decoding one value of a known schema id (the
// schema cached): what the registry adds to mapping a message.
func BenchmarkDecode(b *testing.B) {
	const schema = `{"type":"record","name":"P","fields":[{"name":"payment_id","type":"string"},{"name":"job_id","type":"string"},
 {"name":"attempt","type":"int"},{"name":"amount_cents","type":"long"},{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}`
	reg := registrytest.New()
	url := registrytest.Start(b, reg)
	avroID := reg.Register("p", registrytest.Schema{Schema: schema})
	jsonID := reg.Register("j", registrytest.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	c, err := schemaregistry.New(schemaregistry.Options{URL: url})
	if err != nil {
		b.Fatal(err)
	}
	payload, err := avro.Marshal(avro.MustParse(schema), map[string]any{"payment_id": "p-123456", "job_id": "j-98765", "attempt": 1,
		"amount_cents": int64(1250), "at": time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)})
	if err != nil {
		b.Fatal(err)
	}
	values := map[string][]byte{
		"avro": wire(avroID, payload),
		"json": wire(jsonID, []byte(`{"payment_id":"p-123456","job_id":"j-98765","attempt":1,"amount_cents":1250,"at":"2026-03-01T10:00:00Z"}`)),
	}
	for _, name := range []string{"avro", "json"} {
		b.Run(name, func(b *testing.B) {
			v := values[name]
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(ctx, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
