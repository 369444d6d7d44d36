package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrSnapshotFormat is wrapped by CheckSnapshotFormat's error when a
// snapshot was written in a format this build does not read (by another
// version of twice).
var ErrSnapshotFormat = errors.New("snapshot format of another twice version")

// CheckSnapshotFormat reads only the head of a snapshot and says whether
// this build can restore it, so that a sidecar can refuse before it
// starts anything: nil when the format is this build's, an error
// wrapping ErrSnapshotFormat when it is another's, and another error when
// r is not a snapshot. Damage further in is found by Restore.
func CheckSnapshotFormat(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		return fmt.Errorf("snapshot: not a twice snapshot: %w", ErrCorruptSnapshot)
	}
	v, err := binary.ReadUvarint(br)
	if err != nil {
		return fmt.Errorf("snapshot: format version: %w", ErrCorruptSnapshot)
	}
	if v != snapshotVersion {
		return fmt.Errorf("%w: format version %d, this build reads %d", ErrSnapshotFormat, v, snapshotVersion)
	}
	return nil
}
