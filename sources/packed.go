package sources

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
)

// maxPacked bounds what UnpackJSON decompresses.
const maxPacked = 1 << 30

// PackJSON writes v as JSON, gzipped, in base64 without padding: the form
// a polling stream keeps its tracker's state in, as the text of a
// Position.
func PackJSON(v any) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(v); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.RawStdEncoding.EncodeToString(buf.Bytes()), nil
}

// UnpackJSON reads text written by PackJSON into v; at most 1 GiB is
// decompressed.
func UnpackJSON(text string, v any) error {
	raw, err := base64.RawStdEncoding.DecodeString(text)
	if err != nil {
		return fmt.Errorf("not base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxPacked))
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
