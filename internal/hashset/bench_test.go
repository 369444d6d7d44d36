package hashset

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkAdd inserts b.N random hashes into one growing set.
func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, b.N)
	for i := range hs {
		hs[i] = r.Uint64()
	}
	var s Set
	b.ResetTimer()
	for _, h := range hs {
		s.Add(h)
	}
}
