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
	for _, p := range paths {
		evs, _ := File(tb, p)
		out = append(out, evs...)
	}
	return out
}

// File reads one file with the file collector: its valid events in file
// order, and its malformed lines in the order their batches were read.
func File(tb testing.TB, path string) ([]twicetype.Event, []twicetype.Malformed) {
	tb.Helper()
	var evs []twicetype.Event
	var mal []twicetype.Malformed
	ctx := context.Background()
	c := file.New(path, file.Options{})
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
		evs = append(evs, b.Events...)
		mal = append(mal, b.Malformed...)
	}
	if err := c.Shutdown(ctx); err != nil {
		tb.Fatal(err)
	}
	return evs, mal
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
