package reports_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/composeci/composeci/reports"
)

// FuzzParseReport reads arbitrary report JSON, as the archive, the
// dashboard and the API read reports back (written by this or another
// version, or damaged): it gives a report or an error, never both; it
// refuses a schema version it does not know; and a report it accepts is
// stored (JSON) and read again without change — the archive's form is a
// fixed point.
func FuzzParseReport(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{`{"schema_version": 1, "compose_id": "Fedora-Rawhide-20261122.n.0"}`, `{"schema_version": 99}`,
		`{"schema_version": 0}`, `{"schema_version": 1, "reruns": null}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := reports.ParseReport(b)
		if err != nil {
			if r.SchemaVersion != 0 || r.ComposeID != "" {
				t.Fatalf("both a report of %q and %v", r.ComposeID, err)
			}
			return
		}
		if r.SchemaVersion < 1 || r.SchemaVersion > reports.SchemaVersion {
			t.Fatalf("accepted schema version %d", r.SchemaVersion)
		}
		out, err := r.JSON()
		if err != nil {
			t.Fatalf("an accepted report does not encode: %v", err)
		}
		again, err := reports.ParseReport(out)
		if err != nil {
			if errors.Is(err, reports.ErrSchemaVersion) {
				t.Fatalf("schema version lost: %v", err)
			}
			t.Fatalf("%s does not read back: %v", out, err)
		}
		out2, err := again.JSON()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("stored report reads back changed:\n%s\n%s\n%v", out, out2, err)
		}
	})
}
