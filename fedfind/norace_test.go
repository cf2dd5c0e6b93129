//go:build !race

package fedfind_test

const raceEnabled = false
