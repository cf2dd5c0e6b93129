package fedfind

import (
	"errors"
	"strings"
	"testing"
)

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func TestStreamOf(t *testing.T) {
	for _, tt := range []struct {
		id                   string
		kind                 StreamKind
		version, dir, latest string
	}{
		{"Fedora-Rawhide-20261122.n.0", StreamRawhide, "Rawhide", "rawhide", "latest-Fedora-Rawhide"},
		{"Fedora-44-20261122.n.0", StreamBranched, "44", "branched", "latest-Fedora-44"},
		{"Fedora-eln-20261122.n.0", StreamELN, "eln", "eln", "latest-Fedora-eln"},
		{"Fedora-44-20261010.1", StreamProduction, "44", "44", "latest-Fedora-44"},
		{"Fedora-Cloud-44-20261122.0", StreamCloud, "44", "cloud", "latest-Fedora-Cloud-44"},
		{"Fedora-Container-44-20261122.0", StreamContainer, "44", "container", "latest-Fedora-Container-44"},
		{"Fedora-IoT-44-20261122.0", StreamIoT, "44", "iot", "latest-Fedora-IoT-44"},
		{"Fedora-43-updates-20261122.0", StreamUpdates, "43", "updates", "latest-Fedora-43"},
		{"Fedora-43-updates-testing-20261122.0", StreamUpdatesTesting, "43", "updates", "latest-Fedora-43"},
		{"DP-1.0-20161013.t.4", StreamOther, "", "", ""},
		{"Fedora-Rawhide-20261122.0", StreamOther, "", "", ""},
		{"Fedora-43-updates-20261122.n.0", StreamOther, "", "", ""},
		{"Fedora-epel-9-20261122.0", StreamOther, "", "", ""},
	} {
		s := StreamOf(MustParseComposeID(tt.id))
		if s.Kind != tt.kind || s.Version != tt.version || s.Dir != tt.dir {
			t.Errorf("%s: %+v", tt.id, s)
		}
		if tt.latest != "" && s.LatestLink() != tt.latest {
			t.Errorf("%s: latest link %s, want %s", tt.id, s.LatestLink(), tt.latest)
		}
	}
}

// TestParseStreamSpecMistyped: a word that names no stream is refused with
// the closest stream and the list of them; what is not shaped like a stream
// is left to the other parsers.
func TestParseStreamSpecMistyped(t *testing.T) {
	for _, tt := range []struct {
		in      string
		ok      bool
		closest string // "" when no error is wanted
	}{
		{"rawhid", true, "did you mean rawhide?"},
		{"Rawhde", true, "did you mean rawhide?"},
		{"brnached:44", true, "did you mean branched:44?"},
		{"branch", true, "did you mean branched?"},
		{"updates-testin:44", true, "did you mean updates-testing:44?"},
		{"updates_testing:44", true, "did you mean updates-testing:44?"},
		{"clod:44", true, "did you mean cloud:44?"},
		{"eln2", false, ""}, // digits: not a stream's name
		{"rawhid:44", true, "did you mean rawhide?"},
		{"rawhide", true, ""},
		{"branched:44", true, ""},
		{"Fedora-Rawhide-20261122.n.0", false, ""},
		{"44:Beta-1.2", false, ""},
		{"../../etc/passwd", false, ""},
		{"", false, ""},
	} {
		spec, ok, err := ParseStreamSpec(tt.in)
		if ok != tt.ok {
			t.Errorf("ParseStreamSpec(%q): ok = %v, want %v (%+v, %v)", tt.in, ok, tt.ok, spec, err)
		}
		if tt.closest == "" {
			if err != nil {
				t.Errorf("ParseStreamSpec(%q): %v", tt.in, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tt.closest) || !strings.Contains(err.Error(), StreamSpecs) {
			t.Errorf("ParseStreamSpec(%q) = %v; want an ErrInvalidInput with %q and the list of streams", tt.in, err, tt.closest)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"rawhide", "rawhide", 0}, {"rawhid", "rawhide", 1}, {"", "eln", 3},
		{"brnached", "branched", 2}, {"kitten", "sitting", 3}, {"updates", "updates-testing", 8},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := editDistance(tt.b, tt.a); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
