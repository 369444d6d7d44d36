//go:build race

package keytemplate

// raceEnabled is set when the race detector, which makes sync.Pool drop
// items at random, is on.
const raceEnabled = true
