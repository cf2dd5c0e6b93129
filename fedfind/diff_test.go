package fedfind

import (
	"encoding/json"
	"testing"
)

func img(sv, typ, format, arch string, size int64, sha string) Image {
	return Image{Subvariant: sv, Type: typ, Format: format, Arch: arch, Size: size,
		Path: sv + "/" + arch + "/" + typ + "." + format, Checksums: map[string]string{"sha256": sha},
		Identity: Identity(sv, typ, format)}
}

func TestDiff(t *testing.T) {
	a := []Image{
		img("Server", "dvd", "iso", "x86_64", 1000, "a1"),
		img("Server", "boot", "iso", "x86_64", 1000, "a2"),
		img("KDE", "live", "iso", "x86_64", 1000, "a3"),
		img("Cloud_Base", "qcow2", "qcow2", "aarch64", 1000, "a4"),
		img("Workstation", "live", "iso", "x86_64", 1000, "a5"),
	}
	b := []Image{
		img("Server", "dvd", "iso", "x86_64", 1200, "b1"),       // +20%: changed by size
		img("Server", "boot", "iso", "x86_64", 1050, "b2"),      // +5%: within threshold
		img("Cloud_Base", "qcow2", "qcow2", "x86_64", 10, "b4"), // other arch: added
		img("Workstation", "live", "iso", "x86_64", 1000, "a5"),
		img("Silverblue", "dvd-ostree", "iso", "x86_64", 10, "b6"),
	}
	tests := []struct {
		name                    string
		opts                    DiffOptions
		added, removed, changed []string
	}{
		{"default", DefaultDiffOptions,
			[]string{"x86_64/Cloud_Base-qcow2-qcow2", "x86_64/Silverblue-dvd-ostree-iso"},
			[]string{"aarch64/Cloud_Base-qcow2-qcow2", "x86_64/KDE-live-iso"},
			[]string{"x86_64/Server-dvd-iso"}},
		{"any size change", DiffOptions{SizeThreshold: 0},
			nil, nil, []string{"x86_64/Server-boot-iso", "x86_64/Server-dvd-iso"}},
		{"checksums only", DiffOptions{SizeThreshold: -1, Checksums: true},
			nil, nil, []string{"x86_64/Server-boot-iso", "x86_64/Server-dvd-iso"}},
	}
	keys := func(es []DiffEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Arch+"/"+e.Identity)
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diff(a, b, tt.opts)
			var changed []DiffEntry
			for _, c := range d.Changed {
				changed = append(changed, c.DiffEntry)
			}
			check := func(what string, got, want []string) {
				if want == nil {
					return
				}
				g, _ := json.Marshal(got)
				w, _ := json.Marshal(want)
				if string(g) != string(w) {
					t.Errorf("%s = %s, want %s", what, g, w)
				}
			}
			check("added", keys(d.Added), tt.added)
			check("removed", keys(d.Removed), tt.removed)
			check("changed", keys(changed), tt.changed)
		})
	}
	d := Diff(a, b, DefaultDiffOptions)
	if c := d.Changed[0]; c.OldSize != 1000 || c.Size != 1200 || c.SizeDiff < 0.199 || c.SizeDiff > 0.201 || c.Reasons[0] != "size" {
		t.Errorf("changed entry %+v", c)
	}
	if e := Diff(a, a, DiffOptions{Checksums: true}); !e.Empty() {
		t.Errorf("a compose differs from itself: %+v", e)
	}
	// Empty lists marshal as [], never null: scripts index them.
	out, _ := json.Marshal(Diff(nil, nil, DefaultDiffOptions))
	if string(out) != `{"added":[],"removed":[],"changed":[]}` {
		t.Errorf("empty diff JSON %s", out)
	}
}

func TestMissingExpected(t *testing.T) {
	exp := DefaultExpectedImages()
	if n := len(exp[StreamRawhide]); n != 10 {
		t.Fatalf("Rawhide expects %d images, fedfind expects 10", n)
	}
	if len(exp[StreamUpdates]) != 0 {
		t.Errorf("updates composes expect no images")
	}
	images := []Image{
		img("KDE", "live", "iso", "x86_64", 1, ""),
		img("Workstation", "live", "iso", "x86_64", 1, ""),
		img("Server", "boot", "iso", "x86_64", 1, ""),
		img("Server", "dvd", "iso", "x86_64", 1, ""),
		img("Cloud_Base", "raw-xz", "raw.xz", "x86_64", 1, ""),
		img("Cloud_Base", "qcow2", "qcow2", "x86_64", 1, ""),
		img("Cloud_Base", "raw-xz", "raw.xz", "aarch64", 1, ""),
		img("Server", "dvd", "iso", "aarch64", 1, ""),
		// Server boot aarch64 missing; Workstation raw-xz aarch64 named the old way:
		img("Workstation_Appliance", "raw-xz", "raw.xz", "aarch64", 1, ""),
		img("Server", "boot", "iso", "ppc64le", 1, ""), // right image, wrong arch
	}
	got := MissingExpected(exp[StreamRawhide], images)
	if len(got) != 1 || got[0] != (ExpectedImage{"server", "boot", "aarch64"}) {
		t.Errorf("missing = %+v", got)
	}
	if got := MissingExpected(exp[StreamRawhide], nil); len(got) != 10 || got[0].Arch != "aarch64" {
		t.Errorf("all missing = %+v", got)
	}
	if got := MissingExpected(nil, images); got == nil || len(got) != 0 {
		t.Errorf("nothing expected = %#v", got)
	}
}

func TestParseExpectedImagesErrors(t *testing.T) {
	for _, doc := range []string{
		`[streams.nosuch]` + "\nimages = []",
		`[streams.rawhide]` + "\nimages = [{ subvariant = \"kde\", type = \"live\" }]",
		`[streams.rawhide]` + "\nimagez = []",
		`not toml`,
	} {
		if _, err := ParseExpectedImages(stringsReader(doc), "x.toml"); err == nil {
			t.Errorf("accepted %q", doc)
		}
	}
}

// TestExpectedIdentity: a missing expected image is named as the images of
// a compose are, by identity, taken from its kin on other arches when the
// compose has them.
func TestExpectedIdentity(t *testing.T) {
	images := []Image{
		img("Server", "boot", "iso", "x86_64", 1, ""),
		img("Workstation_Appliance", "raw-xz", "raw.xz", "x86_64", 1, ""),
	}
	for _, tt := range []struct {
		e    ExpectedImage
		want string
	}{
		{ExpectedImage{"server", "boot", "aarch64"}, "Server-boot-iso"},
		{ExpectedImage{"workstation", "raw-xz", "aarch64"}, "Workstation_Appliance-raw-xz-raw.xz"},
		{ExpectedImage{"kde", "live", "x86_64"}, "kde-live-iso"},
		{ExpectedImage{"cloud_base", "qcow2", "aarch64"}, "cloud_base-qcow2-qcow2"},
		{ExpectedImage{"container-base", "container", "x86_64"}, "container-base-container-tar.xz"},
		{ExpectedImage{"server", "dvd", "x86_64"}, "server-dvd-iso"},
		{ExpectedImage{"iot", "something-new", "x86_64"}, "iot-something-new"},
	} {
		if got := tt.e.Identity(images); got != tt.want {
			t.Errorf("%+v.Identity = %q, want %q", tt.e, got, tt.want)
		}
	}
}
