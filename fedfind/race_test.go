//go:build race

package fedfind_test

// raceEnabled: the race detector slows JSON decoding about tenfold, so the
// memory test streams less.
const raceEnabled = true
