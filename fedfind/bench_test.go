package fedfind_test

import (
	"bytes"
	"fmt"
	"io"
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

// BenchmarkStreamRPMs100MB streams a 100 MB rpms.json; allocated bytes per
// op show the memory stays bounded by one entry, not the file.
func BenchmarkStreamRPMs100MB(b *testing.B) {
	var buf bytes.Buffer
	// about 330 bytes an entry
	if err := fakefedora.WriteRPMs(&buf, "Fedora-Rawhide-20261122.n.0", "1.2", 100<<20/330); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		n := 0
		if _, err := fedfind.StreamRPMs(bytes.NewReader(data), "rpms.json", func(fedfind.RPM) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatal("no packages")
		}
	}
	b.ReportMetric(float64(len(data))/(1<<20), "file-MB")
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

// TestStreamRPMsMemoryBounded streams a 64 MB rpms.json (16 MB under the
// race detector) produced on the fly, never held whole in memory, and checks
// the heap grows by less than 12 MB (about 3 MB is seen): memory is bounded
// by one entry, not by the file.
func TestStreamRPMsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 64 MB")
	}
	size := 64 << 20
	if raceEnabled {
		size = 16 << 20
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(fakefedora.WriteRPMs(pw, "Fedora-Rawhide-20261122.n.0", "1.2", size/330))
	}()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	n := 0
	_, err := fedfind.StreamRPMs(pr, "rpms.json", func(fedfind.RPM) error {
		if n++; n%5000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < size/400 {
		t.Fatalf("only %d packages", n)
	}
	t.Logf("heap grew by %.1f MB streaming %d packages", float64(peak-min(peak, base))/(1<<20), n)
	if grown := peak - min(peak, base); grown > 12<<20 {
		t.Errorf("heap grew by %d MB while streaming %d packages", grown>>20, n)
	}
}
