//go:build !race

package keytemplate

const raceEnabled = false
