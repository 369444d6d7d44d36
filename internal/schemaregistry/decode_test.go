package schemaregistry_test

import (
	"context"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/twicehq/twice/config"
	"github.com/twicehq/twice/internal/schemaregistry"
	"github.com/twicehq/twice/internal/schemaregistry/registrytest"
)

// wire frames a payload as the wire format does.
func wire(id int, payload ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(id))
	for _, p := range payload {
		b = append(b, p...)
	}
	return b
}

func newClient(t *testing.T, url string, opts ...func(*schemaregistry.Options)) *schemaregistry.Client {
	t.Helper()
	o := schemaregistry.Options{URL: url, Timeout: 2 * time.Second, MinBackoff: time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	c, err := schemaregistry.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const customerAvro = `{"type":"record","name":"Customer","namespace":"shop","fields":[{"name":"id","type":"string"}]}`

const paymentAvro = `{"type":"record","name":"Payment","namespace":"shop","fields":[
 {"name":"payment_id","type":"string"},
 {"name":"amount","type":"long"},
 {"name":"ratio","type":"double"},
 {"name":"note","type":["null","string"],"default":null},
 {"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"raw","type":"bytes"},
 {"name":"tags","type":{"type":"array","items":"string"}},
 {"name":"customer","type":"shop.Customer"}]}`

func TestDecodeAvroWithReference(t *testing.T) {
	reg := registrytest.New()
	url := registrytest.Start(t, reg)
	reg.Register("customer", registrytest.Schema{Schema: customerAvro})
	id := reg.Register("payments-value", registrytest.Schema{Schema: paymentAvro,
		References: []registrytest.Reference{{Name: "shop.Customer", Subject: "customer", Version: 1}}})

	cache := &avro.SchemaCache{}
	if _, err := avro.ParseWithCache(customerAvro, "", cache); err != nil {
		t.Fatal(err)
	}
	s, err := avro.ParseWithCache(paymentAvro, "", cache)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := avro.Marshal(s, map[string]any{
		"payment_id": "p-1", "amount": int64(1250), "ratio": 0.5, "note": "hi",
		"at": time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), "raw": []byte{1, 2},
		"tags": []any{"a", "b"}, "customer": map[string]any{"id": "c-9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, url)
	for range 3 {
		got, err := c.Decode(context.Background(), wire(id, payload))
		if err != nil {
			t.Fatal(err)
		}
		want := `{"amount":1250,"at":"2026-03-01T10:00:00Z","customer":{"id":"c-9"},"note":"hi","payment_id":"p-1","ratio":0.5,"raw":"AQI=","tags":["a","b"]}`
		if string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
	if n := reg.Lookups(); n != 1 {
		t.Errorf("the registry was asked for the schema %d times, want 1 (cached per id)", n)
	}
}

const commonProto = `syntax = "proto3";
package shop;
message Money { string currency = 1; int64 cents = 2; }
`

const orderProto = `syntax = "proto3";
package shop;
import "shop/common.proto";
message Envelope { string note = 1; }
message Order {
  string order_id = 1;
  Money total = 2;
  int32 attempt = 3;
  message Line { string sku = 1; }
  repeated Line lines = 4;
}
`

func TestDecodeProtobufMessageIndexes(t *testing.T) {
	reg := registrytest.New()
	url := registrytest.Start(t, reg)
	reg.Register("shop/common.proto", registrytest.Schema{Schema: commonProto, SchemaType: "PROTOBUF"})
	id := reg.Register("orders-value", registrytest.Schema{Schema: orderProto, SchemaType: "PROTOBUF",
		References: []registrytest.Reference{{Name: "shop/common.proto", Subject: "shop/common.proto", Version: 1}}})
	c := newClient(t, url)

	order := encodeOrder(t, c, id)
	cases := []struct {
		name    string
		indexes []byte
		want    string
	}{
		// Order is the file's second message: indexes [1].
		{"second message", []byte{2, 2}, `{"order_id":"o-1","total":{"currency":"EUR","cents":"1999"},"attempt":2,"lines":[{"sku":"s-1"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Decode(context.Background(), wire(id, tc.indexes, order))
			if err != nil {
				t.Fatal(err)
			}
			if compact(string(got)) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	t.Run("first message shortcut", func(t *testing.T) {
		env := []byte{0x0a, 2, 'h', 'i'} // Envelope{note: "hi"}
		got, err := c.Decode(context.Background(), wire(id, []byte{0}, env))
		if err != nil {
			t.Fatal(err)
		}
		if compact(string(got)) != `{"note":"hi"}` {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("nested message", func(t *testing.T) {
		line := []byte{0x0a, 1, 'x'} // Order.Line{sku: "x"}
		got, err := c.Decode(context.Background(), wire(id, []byte{4, 2, 0}, line))
		if err != nil {
			t.Fatal(err)
		}
		if compact(string(got)) != `{"sku":"x"}` {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("no such message", func(t *testing.T) {
		_, err := c.Decode(context.Background(), wire(id, []byte{2, 10}, order))
		if err == nil || !strings.Contains(err.Error(), "no such message") || !strings.Contains(err.Error(), "schema id 2") {
			t.Fatalf("err = %v", err)
		}
	})
}

// encodeOrder encodes an Order of the registered schema (id). The
// descriptor is the one Decode compiles; the other subtests' payloads are
// written byte by byte, so a wrong descriptor would not go unnoticed.
func encodeOrder(t *testing.T, c *schemaregistry.Client, id int) []byte {
	t.Helper()
	md := schemaregistry.MessageDescriptorForTest(t, c, id, 1)
	m := dynamicpb.NewMessage(md)
	fields := md.Fields()
	m.Set(fields.ByName("order_id"), protoreflect.ValueOfString("o-1"))
	money := dynamicpb.NewMessage(fields.ByName("total").Message())
	money.Set(money.Descriptor().Fields().ByName("currency"), protoreflect.ValueOfString("EUR"))
	money.Set(money.Descriptor().Fields().ByName("cents"), protoreflect.ValueOfInt64(1999))
	m.Set(fields.ByName("total"), protoreflect.ValueOfMessage(money))
	m.Set(fields.ByName("attempt"), protoreflect.ValueOfInt32(2))
	lines := m.Mutable(fields.ByName("lines")).List()
	line := dynamicpb.NewMessage(fields.ByName("lines").Message())
	line.Set(line.Descriptor().Fields().ByName("sku"), protoreflect.ValueOfString("s-1"))
	lines.Append(protoreflect.ValueOfMessage(line))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compact(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "\n", "") }

func TestDecodeJSONSchema(t *testing.T) {
	reg := registrytest.New()
	url := registrytest.Start(t, reg)
	id := reg.Register("events-value", registrytest.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	c := newClient(t, url)
	got, err := c.Decode(context.Background(), wire(id, []byte(`{"a":1}`)))
	if err != nil || string(got) != `{"a":1}` {
		t.Fatalf("got %s, %v", got, err)
	}
	_, err = c.Decode(context.Background(), wire(id, []byte(`{"a":`)))
	if err == nil || !strings.Contains(err.Error(), "schema id 1 (JSON)") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownIDIsNotFound(t *testing.T) {
	reg := registrytest.New()
	c := newClient(t, registrytest.Start(t, reg))
	_, err := c.Decode(context.Background(), wire(404, []byte("x")))
	var nf *schemaregistry.NotFoundError
	if !errors.As(err, &nf) || nf.ID != 404 || errors.Is(err, schemaregistry.ErrUnavailable) {
		t.Fatalf("err = %v, want a NotFoundError of id 404", err)
	}
	if !strings.Contains(err.Error(), "schema id 404") {
		t.Errorf("err = %v does not name the id", err)
	}
}

func TestRegistryDownIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newClient(t, "http://"+addr)
	_, err = c.Decode(context.Background(), wire(1, []byte("x")))
	if !errors.Is(err, schemaregistry.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestBasicAuth(t *testing.T) {
	reg := registrytest.New()
	reg.Username, reg.Password = "twice", "s3cret-pw"
	url := registrytest.Start(t, reg)
	id := reg.Register("x", registrytest.Schema{Schema: `{}`, SchemaType: "JSON"})
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	good, err := schemaregistry.Load(&config.KafkaSchemaRegistry{URL: url, Username: "twice", Password: config.Secret{File: pwFile}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.Decode(context.Background(), wire(id, []byte(`1`))); err != nil {
		t.Fatal(err)
	}
	bad := newClient(t, url, func(o *schemaregistry.Options) {
		o.Username, o.Password = "twice", config.Secret{Value: "wrong-pw"}
	})
	_, err = bad.Decode(context.Background(), wire(id, []byte(`1`)))
	if !errors.Is(err, schemaregistry.ErrUnavailable) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want unavailable naming 401", err)
	}
	if strings.Contains(err.Error(), "wrong-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestSchemaID(t *testing.T) {
	if id, ok := schemaregistry.SchemaID(wire(7)); !ok || id != 7 {
		t.Errorf("SchemaID = %d, %v", id, ok)
	}
	for _, v := range [][]byte{nil, []byte(`{"a":1}`), {0, 0, 1}} {
		if _, ok := schemaregistry.SchemaID(v); ok {
			t.Errorf("SchemaID(%q) ok", v)
		}
	}
}

func TestNotFoundRemembered(t *testing.T) {
	reg := registrytest.New()
	url := registrytest.Start(t, reg)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c := newClient(t, url, func(o *schemaregistry.Options) {
		o.NotFoundTTL = time.Minute
		o.Now = func() time.Time { return now }
	})
	for range 3 {
		var nf *schemaregistry.NotFoundError
		if _, err := c.Decode(context.Background(), wire(9, []byte("{}"))); !errors.As(err, &nf) || nf.ID != 9 {
			t.Fatalf("err = %v", err)
		}
	}
	if n := reg.Lookups(); n != 1 {
		t.Errorf("lookups within the TTL = %d, want 1", n)
	}
	// Registered meanwhile (another registry behind the same URL, say):
	// found once the TTL has passed.
	id := reg.Register("late", registrytest.Schema{Schema: `{}`, SchemaType: "JSON"})
	for id < 9 {
		id = reg.Register("late", registrytest.Schema{Schema: `{"n":` + strconv.Itoa(id) + `}`, SchemaType: "JSON"})
	}
	now = now.Add(time.Minute)
	if got, err := c.Decode(context.Background(), wire(9, []byte("{}"))); err != nil || string(got) != "{}" {
		t.Fatalf("after the TTL: %s, %v", got, err)
	}
}

func TestTLSWithCAFile(t *testing.T) {
	reg := registrytest.New()
	id := reg.Register("x", registrytest.Schema{Schema: `{}`, SchemaType: "JSON"})
	srv := httptest.NewUnstartedServer(reg)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := schemaregistry.Load(&config.KafkaSchemaRegistry{URL: srv.URL, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decode(context.Background(), wire(id, []byte("1"))); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
	c, err = schemaregistry.Load(&config.KafkaSchemaRegistry{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Decode(context.Background(), wire(id, []byte("1")))
	if !errors.Is(err, schemaregistry.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: %v, want an unavailable registry naming the certificate", err)
	}
	if _, err := schemaregistry.Load(&config.KafkaSchemaRegistry{URL: srv.URL, CAFile: filepath.Join(t.TempDir(), "missing.pem")}); err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Fatalf("missing ca_file: %v", err)
	}
}

func TestAvroTypes(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[
 {"name":"day","type":{"type":"int","logicalType":"date"}},
 {"name":"us","type":{"type":"long","logicalType":"timestamp-micros"}},
 {"name":"price","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
 {"name":"state","type":{"type":"enum","name":"State","symbols":["NEW","PAID"]}},
 {"name":"hash","type":{"type":"fixed","name":"H","size":4}},
 {"name":"either","type":["null","int","string"]},
 {"name":"rec","type":["null",{"type":"record","name":"A","fields":[{"name":"a","type":"int"}]},{"type":"record","name":"B","fields":[{"name":"b","type":"int"}]}]},
 {"name":"opt","type":["null",{"type":"record","name":"C","namespace":"x","fields":[{"name":"at","type":{"type":"long","logicalType":"timestamp-millis"}}]}]},
 {"name":"opts","type":{"type":"array","items":["null","x.C"]}},
 {"name":"none","type":["null","string"]},
 {"name":"labels","type":{"type":"map","values":"long"}},
 {"name":"f","type":"float"}]}`
	reg := registrytest.New()
	id := reg.Register("r", registrytest.Schema{Schema: schema})
	c := newClient(t, registrytest.Start(t, reg))
	s := avro.MustParse(schema)
	payload, err := avro.Marshal(s, map[string]any{
		"day": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "us": time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC),
		"price": big.NewRat(1999, 100), "state": "PAID", "hash": [4]byte{1, 2, 3, 4},
		"either": map[string]any{"string": "s"}, "rec": map[string]any{"B": map[string]any{"b": 2}}, "none": nil,
		"opt":  map[string]any{"x.C": map[string]any{"at": time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}},
		"opts": []any{nil, map[string]any{"x.C": map[string]any{"at": time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)}}}, "labels": map[string]any{"a": int64(1)}, "f": float32(0.5),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Decode(context.Background(), wire(id, payload))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"day":"2026-03-01T00:00:00Z","either":"s","f":0.5,"hash":"AQIDBA==","labels":{"a":1},"none":null,"opt":{"at":"2026-03-01T10:00:00Z"},"opts":[null,{"at":"2026-03-01T11:00:00Z"}],"price":"19.99","rec":{"B":{"b":2}},"state":"PAID","us":"2026-03-01T10:00:00.123456Z"}`
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if _, err := c.Decode(context.Background(), wire(id, payload[:3])); err == nil || !strings.Contains(err.Error(), "schema id 1 (AVRO): avro payload") {
		t.Fatalf("a cut payload: %v", err)
	}
}
