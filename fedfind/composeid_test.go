package fedfind

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseComposeID(t *testing.T) {
	tests := []struct {
		in     string
		prefix string
		date   string
		typ    ComposeType
		respin int
		canon  string
	}{
		{"Fedora-Rawhide-20261122.n.0", "Fedora-Rawhide", "20261122", TypeNightly, 0, ""},
		{"Fedora-44-20261122.n.3", "Fedora-44", "20261122", TypeNightly, 3, ""},
		{"Fedora-eln-20261122.n.1", "Fedora-eln", "20261122", TypeNightly, 1, ""},
		{"Fedora-44-20261010.0", "Fedora-44", "20261010", TypeProduction, 0, ""},
		{"Fedora-Cloud-39-20231130.0", "Fedora-Cloud-39", "20231130", TypeProduction, 0, ""},
		{"Fedora-Container-43-20261122.1", "Fedora-Container-43", "20261122", TypeProduction, 1, ""},
		{"Fedora-IoT-43-20261122.0", "Fedora-IoT-43", "20261122", TypeProduction, 0, ""},
		{"Fedora-43-updates-20261122.0", "Fedora-43-updates", "20261122", TypeProduction, 0, ""},
		{"Fedora-43-updates-testing-20261122.2", "Fedora-43-updates-testing", "20261122", TypeProduction, 2, ""},
		{"DP-1.0-20161013.t.4", "DP-1.0", "20161013", TypeTest, 4, ""},
		{"Fedora-Rawhide-20261122.ci.0", "Fedora-Rawhide", "20261122", TypeCI, 0, ""},
		{"Fedora-Rawhide-20261122.d.0", "Fedora-Rawhide", "20261122", TypeDevelopment, 0, ""},
		{"MYPRODUCT-2.1-RHEL-7-20161110.t.0", "MYPRODUCT-2.1-RHEL-7", "20161110", TypeTest, 0, ""},
		{"Fedora-Rawhide-20261122.nightly.0", "Fedora-Rawhide", "20261122", TypeNightly, 0, "Fedora-Rawhide-20261122.n.0"},
		{"DP-1.0-20161013.test.4", "DP-1.0", "20161013", TypeTest, 4, "DP-1.0-20161013.t.4"},
		{"Fedora-Rawhide-20261122.n.12", "Fedora-Rawhide", "20261122", TypeNightly, 12, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, err := ParseComposeID(tt.in)
			if err != nil {
				t.Fatalf("ParseComposeID(%q): %v", tt.in, err)
			}
			want := ComposeID{Prefix: tt.prefix, Date: tt.date, Type: tt.typ, Respin: tt.respin}
			if id != want {
				t.Errorf("got %+v, want %+v", id, want)
			}
			canon := tt.canon
			if canon == "" {
				canon = tt.in
			}
			if id.String() != canon {
				t.Errorf("String() = %q, want %q", id.String(), canon)
			}
		})
	}
}

func TestParseComposeIDRejects(t *testing.T) {
	bad := []string{
		"",
		"Fedora-Rawhide",
		"Fedora-Rawhide-20261122",           // no respin
		"Fedora-Rawhide-20261122.n",         // no respin
		"Fedora-Rawhide-20261322.n.0",       // month 13
		"Fedora-Rawhide-20260230.n.0",       // 30 February
		"Test-20151203.0.t",                 // legacy type-after-respin
		"../etc/passwd-20261122.n.0",        // path escape
		"Fedora/../x-20261122.n.0",          // slash
		"Fedora..-20261122.n.0",             // dot-dot
		"Fedora-Rawhide-20261122.n.0/..",    // trailing path
		"Fedora-Rawhide-20261122.n.0\n",     // newline
		"Fedora Rawhide-20261122.n.0",       // space
		"-Rawhide-20261122.n.0",             // leading dash
		"Fedora-Rawhide-20261122.x.0",       // unknown type
		"Fedora-Rawhide-20261122.n.1234567", // respin too long
		"Fedora\\x-20261122.n.0",
		strings.Repeat("A", 200) + "-20261122.n.0",
	}
	for _, s := range bad {
		if id, err := ParseComposeID(s); err == nil {
			t.Errorf("ParseComposeID(%q) = %+v, want error", s, id)
		} else if !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseComposeID(%q) error %v does not wrap ErrInvalidInput", s, err)
		}
	}
}

func TestComposeIDOrder(t *testing.T) {
	// Sorted as productmd sorts: date, then type rank, then integer respin.
	want := []string{
		"Fedora-Rawhide-20261120.n.9",
		"Fedora-Rawhide-20261121.t.5",
		"Fedora-Rawhide-20261121.ci.0",
		"Fedora-Rawhide-20261121.n.0",
		"Fedora-Rawhide-20261121.n.2",
		"Fedora-Rawhide-20261121.n.10",
		"Fedora-Rawhide-20261121.0",
		"Fedora-Rawhide-20261121.d.0",
		"Fedora-Rawhide-20261122.n.0",
	}
	ids := make([]ComposeID, 0, len(want))
	for i := len(want) - 1; i >= 0; i-- {
		ids = append(ids, MustParseComposeID(want[i]))
	}
	slices.SortFunc(ids, ComposeID.Compare)
	for i, id := range ids {
		if id.String() != want[i] {
			t.Errorf("position %d: got %s, want %s", i, id, want[i])
		}
	}
}

func TestImageRelease(t *testing.T) {
	for in, want := range map[string]string{
		"Fedora-Rawhide-20240501.n.0": "20240501.n.0",
		"Fedora-44-20261010.1":        "20261010.1",
	} {
		if got := MustParseComposeID(in).ImageRelease(); got != want {
			t.Errorf("%s: ImageRelease() = %q, want %q", in, got, want)
		}
	}
}

func TestParseLabel(t *testing.T) {
	l, err := ParseLabel("Beta-1.2")
	if err != nil {
		t.Fatal(err)
	}
	if l.String() != "Beta-1.2" || l.MajorString() != "Beta-1" || l.Version() != "1.2" {
		t.Errorf("label %+v: %s %s %s", l, l, l.MajorString(), l.Version())
	}
	for _, bad := range []string{"Beta", "Beta-1", "Gamma-1.2", "RC-1.2.3", "rc-1.2"} {
		if _, err := ParseLabel(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseLabel(%q) err = %v, want ErrInvalidInput", bad, err)
		}
	}
}

// FuzzParseComposeID checks that whatever the parser accepts is safe to use
// as a path segment and round-trips through String.
func FuzzParseComposeID(f *testing.F) {
	for _, s := range []string{"Fedora-Rawhide-20261122.n.0", "Fedora-44-20261010.1", "DP-1.0-20161013.test.4", "../x-20261122.n.0", "a-20200229.ci.999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseComposeID(s)
		if err != nil {
			return
		}
		out := id.String()
		if strings.ContainsAny(out, "/\\ \t\r\n\x00") || strings.Contains(out, "..") || out == "." {
			t.Fatalf("accepted unsafe ID %q -> %q", s, out)
		}
		again, err := ParseComposeID(out)
		if err != nil || again != id {
			t.Fatalf("round trip %q -> %q -> %+v, %v", s, out, again, err)
		}
	})
}
