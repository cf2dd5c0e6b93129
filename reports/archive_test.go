package reports

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
)

func TestReleaseOf(t *testing.T) {
	for id, want := range map[string]string{
		"Fedora-Rawhide-20261122.n.0":          "rawhide",
		"Fedora-eln-20261122.n.1":              "eln",
		"Fedora-44-20260301.n.0":               "44",
		"Fedora-44-20260415.0":                 "44",
		"Fedora-44-updates-20260601.0":         "44-updates",
		"Fedora-44-updates-testing-20260601.0": "44-updates-testing",
		"Fedora-Cloud-44-20260601.0":           "cloud-44",
		"Fedora-IoT-Rawhide-20260601.0":        "iot-rawhide",
		"Fedora-Container-Rawhide-20260601.0":  "container-rawhide",
		"Test-20151203.t.0":                    "other-test",
		"Fedora-Rawhide-20261122.0":            "other-fedora-rawhide", // production Rawhide is no stream
	} {
		got, err := ReleaseOf(id)
		if err != nil || got != want {
			t.Errorf("ReleaseOf(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
}

func reportOf(t testing.TB, id string, at time.Time) Report {
	t.Helper()
	in := checkstest.Example()
	in.Compose = fedfind.MustParseComposeID(id)
	return Build(checks.Run(in), Meta{Status: "FINISHED", GeneratedAt: at})
}

// TestValidReleaseMatchesRegexp holds the hand-written release name check
// to the regexp it replaces (plus the ".." rule), on names around its
// edges: lengths 0 to 130, and the bytes just outside its classes.
func TestValidReleaseMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]{0,127}$`)
	for _, tc := range []struct {
		rel  string
		want bool
	}{
		{"rawhide", true}, {"44-updates-testing", true}, {"other-fedora-eln+x", true},
		{"", false}, {"-44", false}, {".hidden", false}, {"a..b", false}, {"Rawhide", false},
		{"a/b", false}, {strings.Repeat("a", 128), true}, {strings.Repeat("a", 129), false},
	} {
		if got := ValidRelease(tc.rel); got != tc.want {
			t.Errorf("ValidRelease(%q) = %v, want %v", tc.rel, got, tc.want)
		}
	}
	alphabet := []byte("az09._+-/A`{ \xc3")
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := make([]byte, rng.IntN(131))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(3) > 0 {
				b[i] = 'a' + byte(rng.IntN(26))
			}
		}
		want := re.Match(b) && !strings.Contains(string(b), "..")
		if got := ValidRelease(string(b)); got != want {
			t.Fatalf("ValidRelease(%q) = %v, the regexp says %v", b, got, want)
		}
	}
}

func TestArchiveWriteReadIndex(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := DataArchive(dir)
	// Written out of order, one twice: the index is in compose order, once each.
	ids := []string{"Fedora-Rawhide-20261122.n.10", "Fedora-Rawhide-20261122.n.2", "Fedora-Rawhide-20261121.n.0", "Fedora-Rawhide-20261122.n.2"}
	for i, id := range ids {
		w, err := a.Write(ctx, reportOf(t, id, generatedAt.Add(time.Duration(i)*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(dir, "reports", "rawhide", id, "report.json"); w.JSON != want {
			t.Errorf("JSON at %s, want %s", w.JSON, want)
		}
		for _, p := range []string{w.JSON, w.Text, w.HTML, w.Index} {
			if _, err := os.Stat(p); err != nil {
				t.Error(err)
			}
		}
	}
	ix, err := a.Index(ctx, "rawhide")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ix.Reports {
		got = append(got, e.ComposeID)
	}
	want := []string{"Fedora-Rawhide-20261121.n.0", "Fedora-Rawhide-20261122.n.2", "Fedora-Rawhide-20261122.n.10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("index = %v, want %v", got, want)
	}
	if e := ix.Reports[1]; !e.GeneratedAt.Equal(generatedAt.Add(3*time.Hour)) || e.Summary.NewFailures != 4 || !e.Problem {
		t.Errorf("rewritten entry = %+v", e)
	}
	r, err := a.Read(ctx, "Fedora-Rawhide-20261122.n.10")
	if err != nil || r.ComposeID != "Fedora-Rawhide-20261122.n.10" {
		t.Errorf("Read = %v, %v", r.ComposeID, err)
	}
	if _, err := a.Read(ctx, "Fedora-Rawhide-20261120.n.0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("reading a missing report: %v", err)
	}
	rels, err := a.Releases(ctx)
	if err != nil || fmt.Sprint(rels) != "[rawhide]" {
		t.Errorf("Releases = %v, %v", rels, err)
	}
	// No temporary file is left behind.
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

// TestArchiveRejectsHostileIDs feeds compose IDs that try to leave the
// archive; none may write anything, anywhere.
func TestArchiveRejectsHostileIDs(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	a := DataArchive(dir)
	good := reportOf(t, "Fedora-Rawhide-20261122.n.0", generatedAt)
	for _, id := range []string{
		"../../etc/passwd",
		"../Fedora-Rawhide-20261122.n.0",
		"Fedora-Rawhide-20261122.n.0/../../x",
		"Fedora-Rawhide-20261122.n.0/..",
		"..",
		".",
		"",
		"/etc/Fedora-Rawhide-20261122.n.0",
		`..\..\Fedora-Rawhide-20261122.n.0`,
		"Fedora..Rawhide-20261122.n.0",
		"Fedora-Rawhide-20261122.n.0\x00",
		"Fedora-Rawhide-20261122.n.0\n",
		"Fedora Rawhide-20261122.n.0",
		"Fedora-Rawhide-20261122.nightly.0", // valid, but not canonical: one compose, one directory
		strings.Repeat("A", 200) + "-20261122.n.0",
	} {
		r := good
		r.ComposeID = id
		if _, err := a.Write(ctx, r); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Write(%q) = %v, want ErrInvalidInput", id, err)
		}
		if _, err := a.Read(ctx, id); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Read(%q) = %v, want ErrInvalidInput", id, err)
		}
	}
	// A report claiming another release is refused too.
	r := good
	r.Release = "../../evil"
	if _, err := a.Write(ctx, r); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("Write with release %q = %v", r.Release, err)
	}
	for _, rel := range []string{"..", "../x", "a/b", "", "Rawhide"} {
		if _, err := a.Index(ctx, rel); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("Index(%q) = %v, want ErrInvalidInput", rel, err)
		}
	}
	entries, _ := os.ReadDir(base)
	for _, e := range entries {
		if e.Name() != "data" {
			t.Errorf("something was written outside the archive: %s", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "reports")); err == nil {
		filepath.WalkDir(filepath.Join(dir, "reports"), func(p string, d os.DirEntry, err error) error {
			if p != filepath.Join(dir, "reports") {
				t.Errorf("hostile writes left %s", p)
			}
			return nil
		})
	}
}

// TestArchiveRefusesSymlinkEscape plants a symlink where a release
// directory goes; the write must not follow it out of the archive.
func TestArchiveRefusesSymlinkEscape(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	a := Archive{Dir: filepath.Join(base, "archive")}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(a.Dir, "rawhide")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(ctx, reportOf(t, "Fedora-Rawhide-20261122.n.0", generatedAt)); err == nil {
		t.Error("Write followed a symlink out of the archive")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files written outside the archive: %v", entries)
	}
}

// TestArchiveConcurrentWrites writes many reports of one release at once;
// the index must list every one (the lock serialises its updates).
func TestArchiveConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	a := Archive{Dir: t.TempDir()}
	rd, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	a.Renderer = rd
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := a.Write(ctx, reportOf(t, fmt.Sprintf("Fedora-Rawhide-20261122.n.%d", i), generatedAt))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ix, err := a.Index(ctx, "rawhide")
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Reports) != n {
		t.Fatalf("index lists %d reports, want %d", len(ix.Reports), n)
	}
	for i, e := range ix.Reports {
		if want := fmt.Sprintf("Fedora-Rawhide-20261122.n.%d", i); e.ComposeID != want {
			t.Errorf("index[%d] = %s, want %s", i, e.ComposeID, want)
		}
	}
}

// TestArchiveRebuildsBrokenIndex corrupts index.json; Index rebuilds it from
// the reports on disk.
func TestArchiveRebuildsBrokenIndex(t *testing.T) {
	ctx := context.Background()
	a := Archive{Dir: t.TempDir()}
	for _, id := range []string{"Fedora-44-20260301.n.0", "Fedora-44-20260415.0"} {
		if _, err := a.Write(ctx, reportOf(t, id, generatedAt)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a.Dir, "44", FileIndex), []byte(`{"schema_version": 1, "rel`), 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := a.Index(ctx, "44")
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Reports) != 2 || ix.Reports[0].ComposeID != "Fedora-44-20260301.n.0" {
		t.Errorf("rebuilt index = %+v", ix.Reports)
	}
	if _, err := a.Index(ctx, "45"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Index of an unknown release: %v", err)
	}
}

func TestArchiveHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := Archive{Dir: t.TempDir()}
	if _, err := a.Write(ctx, reportOf(t, "Fedora-Rawhide-20261122.n.0", generatedAt)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
}
