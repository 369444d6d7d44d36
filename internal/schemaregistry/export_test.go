package schemaregistry

import (
	"context"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// MessageDescriptorForTest returns message i of the Protobuf schema id,
// compiled as Decode compiles it.
func MessageDescriptorForTest(tb testing.TB, c *Client, id, i int) protoreflect.MessageDescriptor {
	tb.Helper()
	s, err := c.schemaByID(context.Background(), id)
	if err != nil || s.err != nil {
		tb.Fatalf("schema %d: %v %v", id, err, s.err)
	}
	return s.proto.Messages().Get(i)
}
