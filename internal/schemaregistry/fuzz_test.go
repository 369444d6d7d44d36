package schemaregistry_test

import (
	"context"
	"testing"

	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/internal/schemaregistry/registrytest"
)

// FuzzDecode decodes arbitrary values of an Avro, a Protobuf and a JSON
// Schema id: a value off a topic is untrusted, and Decode must return an
// error for one that does not decode, never panic or hang.
func FuzzDecode(f *testing.F) {
	reg := registrytest.New()
	url := registrytest.Start(f, reg)
	reg.Register("c", registrytest.Schema{Schema: customerAvro})
	avroID := reg.Register("p", registrytest.Schema{Schema: paymentAvro,
		References: []registrytest.Reference{{Name: "shop.Customer", Subject: "c", Version: 1}}})
	reg.Register("shop/common.proto", registrytest.Schema{Schema: commonProto, SchemaType: "PROTOBUF"})
	protoID := reg.Register("o", registrytest.Schema{Schema: orderProto, SchemaType: "PROTOBUF",
		References: []registrytest.Reference{{Name: "shop/common.proto", Subject: "shop/common.proto", Version: 1}}})
	jsonID := reg.Register("j", registrytest.Schema{Schema: `{}`, SchemaType: "JSON"})
	c, err := schemaregistry.New(schemaregistry.Options{URL: url})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), []byte{0x02, 0x61, 0x02, 0x61, 0xe2, 0x13, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0x02, 0x68, 0x69})
	f.Add(uint8(1), []byte{2, 2, 0x0a, 3, 'o', '-', '1', 0x12, 2, 0x10, 1})
	f.Add(uint8(1), []byte{0, 0x0a, 2, 'h', 'i'})
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(uint8(2), []byte(`{"a":[1,2,{"b":null}]}`))
	f.Add(uint8(0), []byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	ids := []int{avroID, protoID, jsonID}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		v := wire(ids[int(which)%len(ids)], payload)
		_, _ = c.Decode(context.Background(), v)
	})
}
