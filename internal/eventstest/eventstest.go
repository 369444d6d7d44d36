// Package eventstest reads event files and JSON Lines outputs for tests.
package eventstest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/twicehq/twice/collectors/file"
	"github.com/twicehq/twice/twicetype"
)

// Events reads every valid event of the files, one file after the other,
// each in file order.
func Events(tb testing.TB, paths ...string) []twicetype.Event {
	tb.Helper()
	var out []twicetype.Event
	ctx := context.Background()
	for _, p := range paths {
		c := file.New(p, file.Options{})
		if err := c.Start(ctx); err != nil {
			tb.Fatal(err)
		}
		for {
			b, err := c.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b.Events...)
		}
		if err := c.Shutdown(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// JSONLines reads a file of JSON objects, one a line, in order.
func JSONLines(tb testing.TB, path string) []map[string]any {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("%s line %d: %v", path, len(out)+1, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}
