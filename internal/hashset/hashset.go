// Package hashset is a compact set of 64-bit hashes.
package hashset

// Set is a compact set of 64-bit hashes: open addressing with linear
// probing, 8 bytes a slot, at most 3/4 full. Zero marks an empty slot, so
// the hash 0 is stored as 1.
type Set struct {
	slots []uint64
	n     int
}

// Add inserts h and reports whether it was new.
func (s *Set) Add(h uint64) bool {
	h = stored(h)
	if 4*(s.n+1) > 3*len(s.slots) {
		s.grow()
	}
	i, found := s.probe(h)
	if !found {
		s.slots[i] = h
		s.n++
	}
	return !found
}

// Has reports whether h is in the set.
func (s *Set) Has(h uint64) bool {
	if len(s.slots) == 0 {
		return false
	}
	_, found := s.probe(stored(h))
	return found
}

// stored is h as a slot holds it: 0 marks an empty slot.
func stored(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// probe returns the slot holding h, or the empty slot where it would go.
// The set must have slots.
func (s *Set) probe(h uint64) (i uint64, found bool) {
	mask := uint64(len(s.slots) - 1)
	for i = h & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case h:
			return i, true
		case 0:
			return i, false
		}
	}
}

// Len returns the number of hashes in the set.
func (s *Set) Len() int { return s.n }

func (s *Set) grow() {
	old := s.slots
	size := max(1024, 2*len(old))
	s.slots = make([]uint64, size)
	s.n = 0
	mask := uint64(size - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := h & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = h
		s.n++
	}
}
