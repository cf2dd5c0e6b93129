package fedfind

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
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

// FuzzParseReleaseData reads arbitrary release.json files: what it accepts
// has at least one stable release, only release numbers, a Rawhide above
// every release it names, and written back as release.json reads the same.
func FuzzParseReleaseData(f *testing.F) {
	for _, s := range []string{
		`{"fedora": {"stable": [42, 43], "branched": [44]}}`,
		`{"fedora": {"stable": [43], "branched": []}, "epel": {"stable": [9, 10]}}`,
		`{"fedora": {"stable": [43]}}`,
		`{"fedora": {"stable": [43], "branched": null}}`,
		`{"fedora": {"stable": []}}`,
		`{"fedora": {"stable": [0]}}`,
		`{"fedora": {"stable": [43.5]}}`,
		`{"fedora": {"stable": [43]}} {}`,
		`{"fedora": null}`,
		`<html><body>Not Found</body></html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseReleaseData(bytes.NewReader(b), "release.json")
		if err != nil {
			var me *MetadataError
			if !errors.As(err, &me) {
				t.Fatalf("error %v is not a MetadataError", err)
			}
			return
		}
		if len(d.Stable) == 0 || d.Branched == nil {
			t.Fatalf("accepted %+v", d)
		}
		cur, raw := d.Current(), d.Rawhide()
		for _, n := range append(slices.Clone(d.Stable), d.Branched...) {
			if n < 1 || n > 9999 || n >= raw {
				t.Fatalf("release %d in %+v (Rawhide %d)", n, d, raw)
			}
		}
		if !slices.Contains(d.Stable, cur) {
			t.Fatalf("current %d is not a stable release of %+v", cur, d)
		}
		out, err := json.Marshal(map[string]ReleaseData{"fedora": d})
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseReleaseData(bytes.NewReader(out), "release.json")
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("%+v written as %s reads as %+v, %v", d, out, again, err)
		}
	})
}

// FuzzParseNEVRA reads arbitrary package names as rpms.json names them: a
// NEVRA it accepts has a name, a version, a release and an arch, and
// written back — as RPM prints it, and with the epoch spelled out in the
// productmd form or first as yum wrote it — reads the same.
func FuzzParseNEVRA(f *testing.F) {
	for _, s := range []string{"bash-0:4.3.30-2.fc21.x86_64", "0:bash-4.3.30-2.fc21.x86_64", "perl-Foo-4:1.0-1.fc44.noarch",
		"kernel-6.12.0-0.rc1.20261122git1a2b3c.1.fc45.src", "a-1-1.", "-1-1.x", "a-:1-1.x", "a-99999999999:1-1.x", "a-1:-1.x", ".x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNEVRA(s)
		if err != nil {
			return
		}
		if n.Name == "" || n.Version == "" || n.Release == "" || n.Arch == "" || n.Epoch < 0 {
			t.Fatalf("%q accepted as %+v", s, n)
		}
		forms := []string{
			n.NEVR().String() + "." + n.Arch,
			n.Name + "-" + strconv.Itoa(n.Epoch) + ":" + n.Version + "-" + n.Release + "." + n.Arch,
			strconv.Itoa(n.Epoch) + ":" + n.Name + "-" + n.Version + "-" + n.Release + "." + n.Arch,
		}
		for _, form := range forms {
			if again, err := ParseNEVRA(form); err != nil || again != n {
				t.Fatalf("%q is %+v; written as %q it reads as %+v, %v", s, n, form, again, err)
			}
		}
		if nevr, err := ParseNEVR(n.NEVR().String()); err != nil || nevr != n.NEVR() {
			t.Fatalf("%+v: NEVR %q reads as %+v, %v", n, n.NEVR(), nevr, err)
		}
	})
}

// FuzzParseLabel reads arbitrary compose labels (composeinfo.json's
// label): an accepted label formats back to a label that reads the same.
func FuzzParseLabel(f *testing.F) {
	for _, s := range []string{"Beta-1.2", "RC-1.5", "Alpha-0.1", "Beta-1", "rc-1.2", "RC-01.2", "RC-99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLabel(s)
		if err != nil {
			return
		}
		if l.Milestone == "" || l.Major < 0 || l.Minor < 0 {
			t.Fatalf("%q accepted as %+v", s, l)
		}
		if again, err := ParseLabel(l.String()); err != nil || again != l {
			t.Fatalf("%q is %+v; written as %q it reads as %+v, %v", s, l, l.String(), again, err)
		}
	})
}
