package checks_test

import (
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
)

// BenchmarkRun checks a compose of 150 images and 1,500 openQA jobs against
// a previous compose of the same size (rendering is benchmarked in reports).
func BenchmarkRun(b *testing.B) {
	in := checkstest.Synthetic(150, 1500, 1)
	b.ReportAllocs()
	for b.Loop() {
		f := checks.Run(in)
		if f.OpenQA.Counts.Total == 0 {
			b.Fatal("no jobs classified")
		}
	}
}
