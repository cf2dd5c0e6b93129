package fedfind_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
)

// BenchmarkParseImages200 parses images.json of a 200-image compose.
func BenchmarkParseImages200(b *testing.B) {
	m := fakefedora.NewMirror()
	var specs []fakefedora.ImageSpec
	for i := 0; len(specs) < 200; i++ {
		for _, s := range fakefedora.StandardImages("") {
			s.Subvariant = fmt.Sprintf("%s%d", s.Subvariant, i)
			specs = append(specs, s)
		}
	}
	id := "Fedora-Rawhide-20261122.n.0"
	m.MustAddCompose(fakefedora.ComposeSpec{ID: id, Status: "FINISHED", Images: specs[:200]})
	root := m.Start()
	defer m.Close()
	data := fetch(b, root+"/rawhide/"+id+"/compose/metadata/images.json")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f, err := fedfind.ParseImages(bytes.NewReader(data), "images.json", root)
		if err != nil || len(f.Images) != 200 {
			b.Fatal(err, len(f.Images))
		}
	}
}

// rpmsFileSize is the size of the generated rpms.json of the benchmarks,
// that of a full Fedora compose (100–150 MB).
const rpmsFileSize = 135_000_000

// syntheticPackages are the source packages of a Fedora-shaped rpms.json
// of about size bytes (fakefedora.SyntheticPackages: about 8 KB a source
// package, each built for up to four arches with its debuginfo and source
// RPM).
func syntheticPackages(size int) []fakefedora.PackageSpec {
	return fakefedora.SyntheticPackages(size/8000, "fc44")
}

// syntheticRPMs writes a Fedora-shaped rpms.json of about size bytes for
// compose id and returns the packages it lists.
func syntheticRPMs(tb testing.TB, w io.Writer, id string, size int) []fakefedora.PackageSpec {
	tb.Helper()
	pkgs := syntheticPackages(size)
	if err := fakefedora.WriteRPMsOf(w, id, "1.2", pkgs); err != nil {
		tb.Fatal(err)
	}
	return pkgs
}

// BenchmarkStreamRPMs reads a generated 135 MB productmd 1.2 rpms.json
// three ways in one run, so that their ratios hold however busy the
// machine: StreamRPMs on encoding/json as it was (the reference), on
// jsontext as it is, and ReadSourcePackages, the path of a package diff.
func BenchmarkStreamRPMs(b *testing.B) {
	var buf bytes.Buffer
	buf.Grow(rpmsFileSize * 11 / 10)
	syntheticRPMs(b, &buf, "Fedora-Rawhide-20261122.n.0", rpmsFileSize)
	data := buf.Bytes()
	count := func(stream func(io.Reader, string, func(fedfind.RPM) error) (fedfind.RPMsHeader, error)) func(*testing.B) {
		return func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n = 0
				if _, err := stream(bytes.NewReader(data), "rpms.json", func(fedfind.RPM) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data))/1e6, "file-MB")
			b.ReportMetric(float64(n), "packages")
		}
	}
	b.Run("encoding-json", count(fedfind.StreamRPMsEncodingJSON))
	b.Run("jsontext", count(fedfind.StreamRPMs))
	b.Run("sources", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := fedfind.ReadSourcePackages(bytes.NewReader(data), "rpms.json", fedfind.SourceOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data))/1e6, "file-MB")
	})
}

// newerPackages is pkgs a day later: one package in 40 rebuilt, one in 97
// with an older version, one in 150 gone, 100 new ones.
func newerPackages(pkgs []fakefedora.PackageSpec) []fakefedora.PackageSpec {
	var out []fakefedora.PackageSpec
	for i, p := range pkgs {
		switch {
		case i%150 == 0:
			continue
		case i%40 == 0:
			p.Release = "9." + p.Release
		case i%97 == 0:
			p.Version = "0." + p.Version
		}
		out = append(out, p)
	}
	for i := range 100 {
		out = append(out, fakefedora.Packages(fmt.Sprintf("newpkg%d-1.0-1.fc44", i))...)
	}
	return out
}

// BenchmarkPackageDiff is the package diff of two composes with 135 MB
// rpms.json files each: read one after the other from memory and
// compared ("read-both-and-diff"), and as composeci pkgdiff does it, through
// Client.PackageDiff from a compose tree on the loopback, both files read at
// once ("client").
func BenchmarkPackageDiff(b *testing.B) {
	oldID, newID := "Fedora-Rawhide-20261121.n.0", "Fedora-Rawhide-20261122.n.0"
	var oldBuf, newBuf bytes.Buffer
	oldBuf.Grow(rpmsFileSize * 11 / 10)
	newBuf.Grow(rpmsFileSize * 11 / 10)
	pkgs := syntheticRPMs(b, &oldBuf, oldID, rpmsFileSize)
	if err := fakefedora.WriteRPMsOf(&newBuf, newID, "1.2", newerPackages(pkgs)); err != nil {
		b.Fatal(err)
	}
	oldData, newData := oldBuf.Bytes(), newBuf.Bytes()
	check := func(b *testing.B, d fedfind.PackageChanges) {
		if len(d.Added) != 100 || len(d.Removed) == 0 || len(d.Upgraded) == 0 || len(d.Downgraded) == 0 {
			b.Fatalf("diff: %d added, %d removed, %d upgraded, %d downgraded", len(d.Added), len(d.Removed), len(d.Upgraded), len(d.Downgraded))
		}
	}
	b.Run("read-both-and-diff", func(b *testing.B) {
		b.SetBytes(int64(len(oldData) + len(newData)))
		b.ReportAllocs()
		for b.Loop() {
			o, err := fedfind.ReadSourcePackages(bytes.NewReader(oldData), "old", fedfind.SourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			n, err := fedfind.ReadSourcePackages(bytes.NewReader(newData), "new", fedfind.SourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			check(b, fedfind.PackageDiff(o, n))
		}
	})
	b.Run("client", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/compose/rawhide/" + oldID + "/compose/metadata/rpms.json":
				w.Write(oldData)
			case "/compose/rawhide/" + newID + "/compose/metadata/rpms.json":
				w.Write(newData)
			default:
				http.NotFound(w, r)
			}
		}))
		defer srv.Close()
		c, err := fedfind.NewClient(fedfind.ClientOptions{Root: srv.URL + "/compose"})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		oldC, _ := c.Resolve(ctx, oldID)
		newC, _ := c.Resolve(ctx, newID)
		b.SetBytes(int64(len(oldData) + len(newData)))
		b.ReportAllocs()
		for b.Loop() {
			d, err := c.PackageDiff(ctx, oldC, newC, fedfind.SourceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			check(b, d)
		}
	})
}

func fetch(b *testing.B, u string) []byte {
	resp, err := httpGet(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// heapSampler passes writes through and samples the heap every 4 MB: the
// peak of a reader that consumes a pipe it feeds, whatever that reader is.
type heapSampler struct {
	w          io.Writer
	written    int64
	base, peak uint64
}

func newHeapSampler(w io.Writer) *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapSampler{w: w, base: ms.HeapAlloc, peak: ms.HeapAlloc}
}

func (h *heapSampler) Write(p []byte) (int, error) {
	if h.written>>22 != (h.written+int64(len(p)))>>22 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	h.written += int64(len(p))
	return h.w.Write(p)
}

func (h *heapSampler) grown() uint64 { return h.peak - min(h.peak, h.base) }

// TestStreamRPMsMemoryBounded streams a generated 135 MB rpms.json (16 MB
// under the race detector) through a pipe, never held whole in memory, and
// checks that the heap grows by no more than 32 MiB while StreamRPMs or
// ReadSourcePackages reads it. StreamRPMs holds one package at a time (a
// few MB are seen, whatever the size); ReadSourcePackages keeps every source
// package of every tree, which for a Fedora-sized compose is about 10 MB.
func TestStreamRPMsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 135 MB twice")
	}
	size := rpmsFileSize
	if raceEnabled {
		size = 16 << 20
	}
	for _, tt := range []struct {
		name string
		read func(io.Reader) (int, error)
	}{
		{"StreamRPMs", func(r io.Reader) (int, error) {
			n := 0
			_, err := fedfind.StreamRPMs(r, "rpms.json", func(fedfind.RPM) error { n++; return nil })
			return n, err
		}},
		{"ReadSourcePackages", func(r io.Reader) (int, error) {
			sp, err := fedfind.ReadSourcePackages(r, "rpms.json", fedfind.SourceOptions{})
			if err != nil {
				return 0, err
			}
			n := 0
			for _, t := range sp.Trees {
				n += len(t.Packages)
			}
			return n, nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pkgs := syntheticPackages(size)
			pr, pw := io.Pipe()
			h := newHeapSampler(pw)
			go func() {
				pw.CloseWithError(fakefedora.WriteRPMsOf(h, "Fedora-Rawhide-20261122.n.0", "1.2", pkgs))
			}()
			n, err := tt.read(pr)
			pr.Close()
			if err != nil {
				t.Fatal(err)
			}
			if h.written < int64(size)*9/10 || n == 0 {
				t.Fatalf("only %d bytes, %d packages read", h.written, n)
			}
			t.Logf("heap grew by %.1f MiB reading %.0f MB (%d packages)", float64(h.grown())/(1<<20), float64(h.written)/1e6, n)
			if h.grown() > 32<<20 {
				t.Errorf("heap grew by %.1f MiB reading %.0f MB", float64(h.grown())/(1<<20), float64(h.written)/1e6)
			}
		})
	}
}
