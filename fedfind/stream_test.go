package fedfind

import (
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
		{"Fedora-43-updates-20261122.0", StreamUpdates, "43", "updates", "latest-Fedora-43-updates"},
		{"Fedora-43-updates-testing-20261122.0", StreamUpdatesTesting, "43", "updates", "latest-Fedora-43-updates-testing"},
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
