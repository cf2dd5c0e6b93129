package fedfind_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// heapSampler reads through and samples the heap every MiB: the peak of
// the heap while a reader consumes a file.
type heapSampler struct {
	r          io.Reader
	read       int64
	base, peak uint64
}

func newHeapSampler(r io.Reader) *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapSampler{r: r, base: ms.HeapAlloc, peak: ms.HeapAlloc}
}

func (h *heapSampler) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if h.read>>20 != (h.read+int64(n))>>20 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	h.read += int64(n)
	return n, err
}

func (h *heapSampler) grown() uint64 { return h.peak - min(h.peak, h.base) }

// rpmsTempFile writes a Fedora-shaped rpms.json of about size bytes to a
// temporary file, so that the reader is measured alone: neither the file
// nor its generator is in memory while it is read.
func rpmsTempFile(t *testing.T, size int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "rpms.json")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	syntheticRPMs(t, f, "Fedora-Rawhide-20261122.n.0", size)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// readHeap reads the file with read and returns how much the heap grew.
func readHeap(t *testing.T, name string, read func(io.Reader) error) (grown uint64, size int64) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := newHeapSampler(f)
	if err := read(h); err != nil {
		t.Fatal(err)
	}
	return h.grown(), h.read
}

// TestStreamRPMsMemoryBounded reads generated rpms.json files of 34 and
// 135 MB (4 and 16 MB under the race detector) from disk and checks that
// the heap grows by no more than 32 MiB. StreamRPMs holds one package at a
// time: it grows by the same few MB whatever the file's size (3.5 MiB is
// seen at 34, 135 and 540 MB). ReadSourcePackages keeps every source package
// of every tree, which for a Fedora-sized compose is a few MB.
func TestStreamRPMsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 170 MB")
	}
	small, large := 34_000_000, rpmsFileSize
	if raceEnabled {
		small, large = 4_000_000, 16_000_000
	}
	stream := func(r io.Reader) error {
		n := 0
		_, err := fedfind.StreamRPMs(r, "rpms.json", func(fedfind.RPM) error { n++; return nil })
		if err == nil && n == 0 {
			err = errors.New("no packages")
		}
		return err
	}
	smallFile, largeFile := rpmsTempFile(t, small), rpmsTempFile(t, large)
	smallGrown, smallSize := readHeap(t, smallFile, stream)
	largeGrown, largeSize := readHeap(t, largeFile, stream)
	t.Logf("StreamRPMs: the heap grew by %.1f MiB reading %.0f MB, by %.1f MiB reading %.0f MB",
		float64(smallGrown)/(1<<20), float64(smallSize)/1e6, float64(largeGrown)/(1<<20), float64(largeSize)/1e6)
	if largeGrown > 32<<20 || largeGrown > smallGrown+8<<20 {
		t.Errorf("StreamRPMs: the heap grew by %.1f MiB reading %.0f MB (%.1f MiB reading %.0f MB): not flat",
			float64(largeGrown)/(1<<20), float64(largeSize)/1e6, float64(smallGrown)/(1<<20), float64(smallSize)/1e6)
	}

	grown, size := readHeap(t, largeFile, func(r io.Reader) error {
		sp, err := fedfind.ReadSourcePackages(r, "rpms.json", fedfind.SourceOptions{})
		if err == nil && len(sp.Trees) == 0 {
			err = errors.New("no trees")
		}
		return err
	})
	t.Logf("ReadSourcePackages: the heap grew by %.1f MiB reading %.0f MB", float64(grown)/(1<<20), float64(size)/1e6)
	if grown > 32<<20 {
		t.Errorf("ReadSourcePackages: the heap grew by %.1f MiB reading %.0f MB", float64(grown)/(1<<20), float64(size)/1e6)
	}
}
