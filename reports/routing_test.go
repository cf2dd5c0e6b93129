package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/composeci/composeci/fedfind"
)

const testRouting = `
[streams.rawhide]
all = ["test-reports@lists.example.org", "QA Bot <qa@example.org>"]
error = ["rawhide-problems@example.org"]

[streams.branched]
all = ["test-reports@lists.example.org"]

[subvariants.Cloud_Base]
error = ["cloud@example.org"]

[subvariants.workstation]
all = ["desktop@example.org"]
error = ["desktop-alerts@example.org"]

[subvariants.BaseOS]
error = ["eln@example.org"]
`

func TestRoutingRecipients(t *testing.T) {
	rt, err := ParseRouting(strings.NewReader(testRouting), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		kind        string
		subvariants []string
		problem     bool
		want        []string
	}{
		{"all lists of the stream and of present subvariants, no error lists without a problem",
			"rawhide", []string{"Cloud_Base", "Workstation", "Server"}, false,
			[]string{"desktop@example.org", `"QA Bot" <qa@example.org>`, "test-reports@lists.example.org"}},
		{"a problem adds the error lists of the stream and of present subvariants",
			"rawhide", []string{"Cloud_Base", "Workstation"}, true,
			[]string{"cloud@example.org", "desktop-alerts@example.org", "desktop@example.org", `"QA Bot" <qa@example.org>`,
				"rawhide-problems@example.org", "test-reports@lists.example.org"}},
		{"subvariants absent from the compose are not mailed",
			"rawhide", []string{"Server"}, true,
			[]string{`"QA Bot" <qa@example.org>`, "rawhide-problems@example.org", "test-reports@lists.example.org"}},
		{"subvariant names match case-insensitively",
			"eln", []string{"baseos"}, true, []string{"eln@example.org"}},
		{"a stream with no section mails only its subvariants' lists",
			"eln", []string{"BaseOS"}, false, []string{}},
		{"an address on two lists is mailed once",
			"branched", []string{"Workstation"}, false,
			[]string{"desktop@example.org", "test-reports@lists.example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Stream: Stream{Kind: tt.kind}, Subvariants: tt.subvariants, Problem: tt.problem}
			if got := rt.Recipients(r); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("Recipients = %q\nwant         %q", got, tt.want)
			}
		})
	}
}

func TestOverrideRouting(t *testing.T) {
	rt, err := OverrideRouting([]string{"me@example.org", "Me@Example.org", "you@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	r := Report{Stream: Stream{Kind: "rawhide"}, Subvariants: []string{"Workstation"}}
	if got := rt.Recipients(r); fmt.Sprint(got) != "[Me@Example.org you@example.org]" {
		t.Errorf("override recipients = %v", got)
	}
	if _, err := OverrideRouting(nil); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("empty override: %v", err)
	}
	if _, err := OverrideRouting([]string{"not an address"}); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("bad override: %v", err)
	}
}

func TestParseRoutingErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown stream": "[streams.fedora]\nall = [\"a@example.org\"]",
		"unknown key":    "[streams.rawhide]\nerrors = [\"a@example.org\"]",
		"bad address":    "[subvariants.Server]\nall = [\"a@\"]",
		"bad TOML":       "[streams.rawhide\n",
		"top-level typo": "[stream.rawhide]\nall = [\"a@example.org\"]",
		"header in addr": "[streams.rawhide]\nall = [\"a@example.org\\r\\nBcc: b@example.org\"]",
	} {
		if _, err := ParseRouting(strings.NewReader(doc), name); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestDefaultRoutingMailsNobody(t *testing.T) {
	rt := DefaultRouting()
	r := exampleReport(t)
	if got := rt.Recipients(r); len(got) != 0 {
		t.Errorf("the built-in routing mails %v", got)
	}
}

func TestLoadRouting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "routing.toml")
	if err := os.WriteFile(p, []byte(testRouting), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := LoadRouting(p)
	if err != nil || len(rt.Streams) != 2 || len(rt.Subvariants) != 3 {
		t.Errorf("LoadRouting = %+v, %v", rt, err)
	}
	if _, err := LoadRouting(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("loading a missing file: no error")
	}
	if rt, err := LoadRouting(""); err != nil || len(rt.Streams) != 0 {
		t.Errorf("LoadRouting(\"\") = %+v, %v", rt, err)
	}
}

// TestDefaultRoutingIsACopy: the embedded routing is parsed once, on first
// use, and every caller gets a copy of its own.
func TestDefaultRoutingIsACopy(t *testing.T) {
	before := fmt.Sprintf("%#v", DefaultRouting())
	rt := DefaultRouting()
	rt.Streams[fedfind.StreamRawhide] = Lists{All: []string{"changed@example.org"}}
	rt.Subvariants["changed"] = Lists{Error: []string{"changed@example.org"}}
	rt.Override = append(rt.Override, "changed@example.org")
	if after := fmt.Sprintf("%#v", DefaultRouting()); after != before {
		t.Errorf("changing a copy changed the defaults:\nbefore %s\nafter  %s", before, after)
	}
}
