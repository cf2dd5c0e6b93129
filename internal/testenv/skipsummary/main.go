// Command skipsummary prints, for make test, one line per service that was
// down during the tests, naming the tests it skipped and how to start it,
// from the skips file the tests recorded (testenv.SkipsFileEnv).
//
//	skipsummary FILE
package main

import (
	"fmt"
	"os"

	"github.com/composeci/composeci/internal/testenv"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: skipsummary FILE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipsummary:", err)
		os.Exit(2)
	}
	defer f.Close()
	lines, err := testenv.Summary(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipsummary:", err)
		os.Exit(2)
	}
	for _, l := range lines {
		fmt.Fprintln(os.Stderr, l)
	}
}
