package reports

import (
	"bytes"
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
)

// BenchmarkCheckAndRender is the work of one compose check on a big
// nightly: 150 images and 1,500 openQA jobs checked against the previous
// compose, the report built and rendered as JSON, text and HTML.
func BenchmarkCheckAndRender(b *testing.B) {
	in := checkstest.Synthetic(150, 1500, 1)
	rd, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		r := Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: generatedAt})
		out, err := rd.Render(r)
		if err != nil {
			b.Fatal(err)
		}
		size = len(out.JSON) + len(out.Text) + len(out.HTML)
	}
	b.ReportMetric(float64(size), "bytes/report")
}

// BenchmarkRender renders an already built report of the same size.
func BenchmarkRender(b *testing.B) {
	r := Build(checks.Run(checkstest.Synthetic(150, 1500, 1)), Meta{Status: "FINISHED", GeneratedAt: generatedAt})
	rd, err := NewRenderer()
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := rd.Text(&buf, r); err != nil {
			b.Fatal(err)
		}
		if err := rd.HTML(&buf, r); err != nil {
			b.Fatal(err)
		}
		if _, err := r.JSON(); err != nil {
			b.Fatal(err)
		}
	}
}
