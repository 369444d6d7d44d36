package hashset

import (
	"math/bits"

	"github.com/twicehq/twice/internal/codec"
)

// Snapshot writes the set exactly as it is laid out: the number of slots,
// the number of hashes, then per hash the run of empty slots before it
// and the hash. Restore rebuilds the same layout, so a restored set
// behaves, and snapshots, byte for byte like the original.
func (s *Set) Snapshot(w *codec.Writer) {
	w.Uvarint(uint64(len(s.slots)))
	w.Uvarint(uint64(s.n))
	gap := uint64(0)
	for _, h := range s.slots {
		if h == 0 {
			gap++
			continue
		}
		w.Uvarint(gap)
		w.Uint64(h)
		gap = 0
	}
}

// Restore replaces s with a set written by Snapshot.
func (s *Set) Restore(r *codec.Reader) {
	size := r.Uvarint()
	n := r.Uvarint()
	if r.Err() != nil {
		return
	}
	if size != 0 && (size < 1024 || bits.OnesCount64(size) != 1 || size > 1<<40) {
		r.Failf("bad hash set size %d", size)
		return
	}
	// Every hash takes at least 9 bytes; the set is at most 3/4 full, and
	// at least 3/8 full once past its first size (Add doubles it at 3/4),
	// which bounds what a damaged count can make Restore allocate.
	if 4*n > 3*size || n > uint64(r.Remaining()/9) || size > max(1024, 4*n) {
		r.Failf("bad hash set count %d of %d", n, size)
		return
	}
	slots := make([]uint64, size)
	i := uint64(0)
	for range n {
		gap := r.Uvarint()
		h := r.Uint64()
		if r.Err() != nil {
			return
		}
		if h == 0 || gap >= size-i {
			r.Failf("bad hash set entry")
			return
		}
		i += gap
		slots[i] = h
		i++
	}
	s.slots, s.n = slots, int(n)
}
