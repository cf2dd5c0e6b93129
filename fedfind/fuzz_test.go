package fedfind

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedTestdata adds every testdata file whose name starts with prefix.
func seedTestdata(f *testing.F, prefix string) {
	files, _ := filepath.Glob(filepath.Join("testdata", prefix+"*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// The metadata parsers read files from the network: whatever the bytes, they
// return a value or an error, never panic, and what they accept is sane.

func FuzzParseImages(f *testing.F) {
	seedTestdata(f, "images-")
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ParseImages(bytes.NewReader(b), "images.json", "https://h/compose")
		if err != nil {
			return
		}
		for _, i := range im.Images {
			if i.Path == "" || strings.HasPrefix(i.Path, "/") || strings.Contains("/"+i.Path+"/", "/../") || i.Arch == "" || i.Type == "" || i.Size < 0 {
				t.Fatalf("accepted a bad image %+v", i)
			}
		}
	})
}

func FuzzParseComposeInfo(f *testing.F) {
	seedTestdata(f, "composeinfo-")
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, err := ParseComposeInfo(bytes.NewReader(b), "composeinfo.json")
		if err == nil && (ci.Release.Short == "" || ci.ID.IsZero()) {
			t.Fatalf("accepted composeinfo without release or ID: %+v", ci)
		}
	})
}

func FuzzStreamRPMs(f *testing.F) {
	seedTestdata(f, "rpms-")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = StreamRPMs(bytes.NewReader(b), "rpms.json", func(RPM) error { return nil })
		sp, err := ReadSourcePackages(bytes.NewReader(b), "rpms.json", SourceOptions{})
		if err != nil {
			return
		}
		for _, tr := range sp.Trees {
			for i, p := range tr.Packages {
				if p.Name == "" || p.EVR.Version == "" || (i > 0 && tr.Packages[i-1].Name >= p.Name) {
					t.Fatalf("tree %s/%s: bad or unsorted package %+v", tr.Variant, tr.Arch, p)
				}
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"FINISHED\n", "FINISHED", "", "<html>", "DOOMED \r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatus(b, "STATUS")
		if err == nil && (st == "" || strings.ContainsAny(string(st), " \n\t<")) {
			t.Fatalf("accepted %q as %q", b, st)
		}
	})
}

// FuzzRpmvercmp holds RPM's version order to what a comparison must be:
// every string equals itself, and swapping the sides flips the answer.
func FuzzRpmvercmp(f *testing.F) {
	for _, c := range rpmvercmpCases {
		f.Add(c.a, c.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := Rpmvercmp(a, b), Rpmvercmp(b, a)
		if ab != -ba || ab < -1 || ab > 1 || Rpmvercmp(a, a) != 0 {
			t.Fatalf("Rpmvercmp(%q, %q) = %d, reversed %d", a, b, ab, ba)
		}
	})
}
