package engine

import (
	"bytes"
	"errors"
	"testing"
)

// TestCheckSnapshotFormat: the head of a snapshot says whether this build
// reads it, without reading the rest.
func TestCheckSnapshotFormat(t *testing.T) {
	var b bytes.Buffer
	if err := New(Options{ConfigHash: "x"}).Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	snap := b.Bytes()
	if err := CheckSnapshotFormat(bytes.NewReader(snap)); err != nil {
		t.Fatalf("this build's snapshot: %v", err)
	}
	other := append([]byte(nil), snap...)
	other[len(snapshotMagic)] = snapshotVersion + 1
	if err := CheckSnapshotFormat(bytes.NewReader(other)); !errors.Is(err, ErrSnapshotFormat) {
		t.Fatalf("another version's snapshot: %v, want ErrSnapshotFormat", err)
	}
	if err := CheckSnapshotFormat(bytes.NewReader([]byte("not a snapshot"))); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("not a snapshot: %v, want ErrCorruptSnapshot", err)
	}
	// Only the head is read: a snapshot cut after it passes.
	if err := CheckSnapshotFormat(bytes.NewReader(snap[:len(snapshotMagic)+1])); err != nil {
		t.Fatalf("a cut snapshot's head: %v", err)
	}
}
