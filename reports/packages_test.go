package reports

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/checks/checkstest"
	"github.com/composeci/composeci/fedfind"
)

// pkg is a source package of a test's two composes: its version in the
// old compose and in the new ("" where it is not there) and the trees
// ("Variant/arch") that carry it in both.
type pkg struct {
	name, old, new string
	trees          []string
}

// sources builds the source packages of two composes from pkgs, as
// fedfind reads them from rpms.json.
func sources(t testing.TB, oldID, newID string, pkgs []pkg) (old, new *fedfind.SourcePackages) {
	t.Helper()
	build := func(id string, version func(pkg) string) *fedfind.SourcePackages {
		trees := map[string][]fedfind.NEVR{}
		for _, p := range pkgs {
			v := version(p)
			if v == "" {
				continue
			}
			n, err := fedfind.ParseNEVR(p.name + "-" + v)
			if err != nil {
				t.Fatal(err)
			}
			for _, tr := range p.trees {
				trees[tr] = append(trees[tr], n)
			}
		}
		sp := &fedfind.SourcePackages{Compose: fedfind.ComposeMeta{ID: id}}
		for _, k := range slices.Sorted(maps.Keys(trees)) {
			variant, arch, _ := strings.Cut(k, "/")
			list := trees[k]
			slices.SortFunc(list, func(a, b fedfind.NEVR) int { return cmp.Compare(a.Name, b.Name) })
			sp.Trees = append(sp.Trees, fedfind.SourceTree{Variant: variant, Arch: arch, Packages: list})
		}
		return sp
	}
	return build(oldID, func(p pkg) string { return p.old }), build(newID, func(p pkg) string { return p.new })
}

// examplePackages are the source packages of checkstest.Example's two
// composes: Everything, Server and Workstation trees (none for Cloud),
// packages added, removed, upgraded in some trees only, and one
// downgraded; the new failures' tests name cockpit, freeipa and (by a
// word) gnome-terminal.
func examplePackages(t testing.TB, in checks.Input) *PackageInput {
	t.Helper()
	all := []string{"Everything/aarch64", "Everything/x86_64", "Server/aarch64", "Server/x86_64", "Workstation/x86_64"}
	server := []string{"Everything/aarch64", "Everything/x86_64", "Server/aarch64", "Server/x86_64"}
	desktop := []string{"Everything/x86_64", "Workstation/x86_64"}
	old, new := sources(t, checkstest.ExamplePrevious, checkstest.ExampleCompose, []pkg{
		{"anaconda", "44.1-1.fc44", "44.2-1.fc44", all},
		{"bash", "5.2.37-3.fc44", "5.2.37-3.fc44", all},
		{"cockpit", "330-1.fc44", "331-1.fc44", server},
		{"freeipa", "4.12.2-1.fc44", "4.12.3-1.fc44", server},
		{"gnome-terminal", "3.54.0-1.fc44", "3.56.0-1.fc44", desktop},
		{"kernel", "6.18.0-0.rc7.fc44", "6.18.0-1.fc44", all},
		{"mesa", "25.3.0-1.fc44", "25.2.9-1.fc44", desktop},
		{"python-oldthing", "1.0-1.fc44", "", []string{"Everything/x86_64"}},
		{"rust-newthing", "", "0.3.0-1.fc44", []string{"Everything/aarch64", "Everything/x86_64"}},
	})
	return &PackageInput{Old: old, New: new, Images: in.Images}
}

func names(list []UpgradedPackage) []string {
	out := make([]string, 0, len(list))
	for _, p := range list {
		s := p.Name
		if p.Matched != "" {
			s += "(" + p.Matched + ")"
		}
		out = append(out, s)
	}
	return out
}

// TestRankUpgrades: the packages a test's name or failed module names
// come first — the whole name before a shared word — then the rest by
// name; generic and short words relate nothing.
func TestRankUpgrades(t *testing.T) {
	for _, tc := range []struct {
		name    string
		test    string
		modules []string
		pkgs    []string
		want    []string
	}{
		{"no match: by name", "install_default", nil,
			[]string{"anaconda", "bash", "kernel"}, []string{"anaconda", "bash", "kernel"}},
		{"whole name in the test", "server_cockpit_default", nil,
			[]string{"anaconda", "cockpit", "kernel"}, []string{"cockpit(test)", "anaconda", "kernel"}},
		{"a word of the name in the test", "desktop_terminal", nil,
			[]string{"aardvark", "gnome-terminal", "konsole"}, []string{"gnome-terminal(test)", "aardvark", "konsole"}},
		{"the whole name before a shared word", "gnome_terminal_tabs", nil,
			[]string{"aardvark", "xfce4-terminal", "gnome-terminal"}, []string{"gnome-terminal(test)", "xfce4-terminal(test)", "aardvark"}},
		{"a word match does not need the whole name", "install_blivet_lvm", nil,
			[]string{"lvm2", "python-blivet"}, []string{"python-blivet(test)", "lvm2"}},
		{"a failed module", "install_default", []string{"_boot_to_anaconda", "_console_wait_login"},
			[]string{"anaconda", "bash", "kernel"}, []string{"anaconda(module)", "bash", "kernel"}},
		{"the test and a module alike", "podman", []string{"_toolbox_run"},
			[]string{"aardvark", "toolbox", "podman"}, []string{"podman(test)", "toolbox(module)", "aardvark"}},
		{"generic words relate nothing", "desktop_terminal", nil,
			[]string{"xdg-desktop-portal", "python-desktop", "zsh"}, []string{"python-desktop", "xdg-desktop-portal", "zsh"}},
		{"a generic word matches as the whole name", "server_cockpit_default", nil,
			[]string{"bash", "server"}, []string{"server(test)", "bash"}},
		{"short words relate nothing, whole short names do", "at_job_queue", nil,
			[]string{"at", "xz-at", "zsh"}, []string{"at(test)", "xz-at", "zsh"}},
		{"a word is not part of a word", "desktop_terminal", nil,
			[]string{"term", "terminals"}, []string{"term", "terminals"}},
		{"case and separators do not matter", "NetworkManager_wifi", nil,
			[]string{"bash", "networkmanager"}, []string{"networkmanager(test)", "bash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ups []fedfind.PackageUpdate
			for _, n := range slices.Sorted(slices.Values(tc.pkgs)) {
				ups = append(ups, fedfind.PackageUpdate{Name: n, From: fedfind.EVR{Version: "1", Release: "1"}, To: fedfind.EVR{Version: "2", Release: "1"}})
			}
			if got := names(rankUpgrades(ups, tc.test, tc.modules)); !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestFailureUpgrades: each new failure lists the upgrades of its image's
// variant on its arch — none when that tree did not change — or the whole
// compose's when its image or its tree is unknown; ranked, capped.
func TestFailureUpgrades(t *testing.T) {
	const cur, prev = checkstest.ExampleCompose, checkstest.ExamplePrevious
	images := []fedfind.Image{
		checkstest.Image(cur, "Server", "Server", "dvd", "iso", "x86_64", 1),
		checkstest.Image(cur, "Server", "Server", "dvd", "iso", "aarch64", 1),
		checkstest.Image(cur, "Workstation", "Workstation", "live", "iso", "x86_64", 1),
		checkstest.Image(cur, "Spins", "KDE", "live", "iso", "x86_64", 1),
		checkstest.Image(cur, "Cloud", "Cloud_Base", "raw-xz", "raw.xz", "x86_64", 1),
		checkstest.Image(cur, "Silverblue", "Silverblue", "dvd-ostree", "iso", "x86_64", 1),
	}
	// 25 packages upgraded in Server/x86_64, cockpit last by name; two
	// in Spins/x86_64; Server/aarch64 and Silverblue unchanged.
	var pkgs []pkg
	for i := range 24 {
		pkgs = append(pkgs, pkg{fmt.Sprintf("lib%02d", i), "1-1", "2-1", []string{"Server/x86_64"}})
	}
	pkgs = append(pkgs,
		pkg{"zz-cockpit", "1-1", "2-1", []string{"Server/x86_64"}},
		pkg{"bash", "1-1", "1-1", []string{"Server/aarch64", "Silverblue/x86_64"}},
		pkg{"konsole", "24-1", "25-1", []string{"Spins/x86_64"}},
		pkg{"gnome-terminal", "3-1", "4-1", []string{"Spins/x86_64"}},
	)
	old, new := sources(t, prev, cur, pkgs)
	failure := func(id int64, test, flavor, arch string) checks.JobResult {
		return checks.JobResult{Scenario: checks.Scenario{Test: test, Flavor: flavor, Arch: arch, Machine: "64bit"}, JobID: id, Result: "failed"}
	}
	f := checks.Findings{Compose: fedfind.MustParseComposeID(cur), Previous: fedfind.MustParseComposeID(prev)}
	f.OpenQA.NewFailures = []checks.JobResult{
		failure(1, "install_default", "Server-dvd-iso", "aarch64"),
		failure(2, "server_cockpit_default", "Server-dvd-iso", "x86_64"),
		failure(3, "desktop_terminal", "KDE-live-iso", "x86_64"),
		failure(4, "cloud_autocloud", "Cloud_Base-raw_xz-raw.xz", "x86_64"),
		failure(5, "base_selinux", "universal", "x86_64"),
		failure(6, "silverblue_rebase", "Silverblue-dvd_ostree-iso", "x86_64"),
		failure(7, "install_default_upload", "Server-dvd-iso", "x86_64"),
	}
	// Job 7 failed in a module named after a package.
	r := Build(f, Meta{Packages: &PackageInput{Old: old, New: new, Images: images,
		FailedModules: map[int64][]string{7: {"_graphical_wait_login", "lib23_check"}}}})

	rolledUp := []string{"gnome-terminal", "konsole", "lib00", "lib01", "lib02", "lib03", "lib04", "lib05", "lib06", "lib07"}
	for _, tc := range []struct {
		test  string
		tree  string
		first []string
		more  int
		line  string
	}{
		{"install_default", "Server/aarch64", []string{}, 0, "no package upgraded in Server/aarch64"},
		{"server_cockpit_default", "Server/x86_64",
			[]string{"zz-cockpit(test)", "lib00", "lib01", "lib02", "lib03", "lib04", "lib05", "lib06", "lib07", "lib08"}, 15,
			"upgraded in Server/x86_64: zz-cockpit, lib00, lib01, lib02, lib03 and 20 more"},
		{"desktop_terminal", "Spins/x86_64", []string{"gnome-terminal(test)", "konsole"}, 0,
			"upgraded in Spins/x86_64: gnome-terminal, konsole"},
		{"cloud_autocloud", "", rolledUp, 17, "upgraded in the compose: gnome-terminal, konsole, lib00, lib01, lib02 and 22 more"},
		{"base_selinux", "", rolledUp, 17, "upgraded in the compose: gnome-terminal, konsole, lib00, lib01, lib02 and 22 more"},
		{"silverblue_rebase", "Silverblue/x86_64", []string{}, 0, "no package upgraded in Silverblue/x86_64"},
		{"install_default_upload", "Server/x86_64",
			[]string{"lib23(module)", "lib00", "lib01", "lib02", "lib03", "lib04", "lib05", "lib06", "lib07", "lib08"}, 15,
			"upgraded in Server/x86_64: lib23, lib00, lib01, lib02, lib03 and 20 more"},
	} {
		t.Run(tc.test, func(t *testing.T) {
			i := slices.IndexFunc(r.OpenQA.NewFailures, func(j Job) bool { return j.Test == tc.test })
			if i < 0 {
				t.Fatalf("no new failure %s", tc.test)
			}
			j := r.OpenQA.NewFailures[i]
			if j.UpgradedPackages == nil {
				t.Fatal("no upgraded packages")
			}
			if got := names(j.UpgradedPackages); j.UpgradedTree != tc.tree || !slices.Equal(got, tc.first) || j.UpgradedMore != tc.more {
				t.Errorf("tree %q, %q and %d more\nwant %q, %q and %d more", j.UpgradedTree, got, j.UpgradedMore, tc.tree, tc.first, tc.more)
			}
			if got := j.UpgradedLine(5); got != tc.line {
				t.Errorf("UpgradedLine(5) = %q\nwant %q", got, tc.line)
			}
		})
	}
	// The roll-up: each package once, at its highest version.
	if got, want := len(r.Packages.Upgraded), 27; got != want || r.Packages.Unchanged != 1 || r.Packages.Old != prev || r.Packages.New != cur {
		t.Errorf("packages: %d upgraded (want %d), %d unchanged, %s -> %s", got, want, r.Packages.Unchanged, r.Packages.Old, r.Packages.New)
	}
	// Only new failures list packages.
	for _, l := range [][]Job{r.OpenQA.KnownFailures, r.OpenQA.Fixed} {
		for _, j := range l {
			if j.UpgradedPackages != nil {
				t.Errorf("%s lists upgraded packages", j.Test)
			}
		}
	}
}

// TestPackagesNotCompared: without the packages, the section is null with
// its note, and no failure lists packages.
func TestPackagesNotCompared(t *testing.T) {
	r := Build(checks.Run(checkstest.Example()), Meta{PackagesNote: "Fedora-Rawhide-20261121.n.0 has no rpms.json"})
	if r.Packages != nil || r.PackagesNote != "Fedora-Rawhide-20261121.n.0 has no rpms.json" {
		t.Errorf("packages %+v, note %q", r.Packages, r.PackagesNote)
	}
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"packages": null,`) || strings.Contains(string(b), "upgraded_packages") {
		t.Errorf("JSON without packages:\n%s", b)
	}
	for _, j := range r.OpenQA.NewFailures {
		if j.UpgradedLine(5) != "" {
			t.Errorf("%s: %q", j.Test, j.UpgradedLine(5))
		}
	}
	var text strings.Builder
	if err := RenderText(&text, r); err != nil {
		t.Fatal(err)
	}
	if want := "Source packages: not compared: Fedora-Rawhide-20261121.n.0 has no rpms.json\n"; !strings.Contains(text.String(), want) {
		t.Errorf("the text report does not say %q:\n%s", want, text.String())
	}
}

// TestPackageGroups: the lists as pages show them, in the order added,
// removed, upgraded, downgraded, cut at n with the rest counted.
func TestPackageGroups(t *testing.T) {
	var pkgs []pkg
	for i := range 5 {
		pkgs = append(pkgs, pkg{fmt.Sprintf("up%d", i), "1-1", "2-1", []string{"Everything/x86_64"}})
	}
	pkgs = append(pkgs,
		pkg{"a-rather-long-package-name-that-goes-on-and-on-and-on", "", "1.0-1", []string{"Everything/x86_64"}},
		pkg{"gone", "2:1.0-1", "", []string{"Everything/x86_64"}},
		pkg{"down", "2-1", "1-1", []string{"Everything/x86_64"}},
		pkg{"same", "1-1", "1-1", []string{"Everything/x86_64"}})
	old, new := sources(t, "Fedora-Rawhide-20261121.n.0", "Fedora-Rawhide-20261122.n.0", pkgs)
	p, _ := packagesOf(&PackageInput{Old: old, New: new})
	if got, want := p.Counts(), "1 added, 1 removed, 5 upgraded, 1 downgraded, 1 unchanged"; got != want {
		t.Errorf("Counts() = %q, want %q", got, want)
	}
	type short struct {
		Kind        string
		Total, More int
		Rows        []PackageRow
		Width       int
	}
	var got []short
	for _, g := range p.Groups(3) {
		got = append(got, short{g.Kind, g.Total, g.More, g.Rows, g.Width})
	}
	want := []short{
		{"added", 1, 0, []PackageRow{{Name: "a-rather-long-package-name-that-goes-on-and-on-and-on", To: "1.0-1"}}, 40},
		{"removed", 1, 0, []PackageRow{{Name: "gone", From: "2:1.0-1"}}, 40},
		{"upgraded", 5, 2, []PackageRow{{"up0", "1-1", "2-1"}, {"up1", "1-1", "2-1"}, {"up2", "1-1", "2-1"}}, 40},
		{"downgraded", 1, 0, []PackageRow{{"down", "2-1", "1-1"}}, 40},
	}
	if g := p.Groups(3)[2:]; g[0].Width != 40 {
		t.Errorf("the width of names is not shared: %+v", g)
	}
	short3, _ := packagesOf(&PackageInput{Old: old, New: new})
	short3.Added = nil
	if g := short3.Groups(3); len(g) != 3 || g[0].Kind != "removed" || g[0].Width != 4 {
		t.Errorf("without the long name, groups %+v", g)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Groups(3):\n got %+v\nwant %+v", got, want)
	}
	if g := (&Packages{SourceChanges: fedfind.SourceChanges{Unchanged: 3}}).Groups(3); len(g) != 0 {
		t.Errorf("no changes, groups %+v", g)
	}
}

// TestPackagesJSON: the section is pkgdiff --json's shape (less its
// trees); a new failure's list is [] when nothing was upgraded where it
// ran; and a report written before the section existed still reads.
func TestPackagesJSON(t *testing.T) {
	r := exampleReport(t)
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Packages map[string]json.RawMessage `json:"packages"`
		OpenQA   struct {
			NewFailures []map[string]json.RawMessage `json:"new_failures"`
			Fixed       []map[string]json.RawMessage `json:"fixed"`
		} `json:"openqa"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(doc.Packages)), []string{"added", "downgraded", "new", "old", "removed", "unchanged", "upgraded"}; !slices.Equal(got, want) {
		t.Errorf("packages keys %q, want %q", got, want)
	}
	var up []map[string]string
	if err := json.Unmarshal(doc.Packages["upgraded"], &up); err != nil || len(up) == 0 || up[0]["name"] == "" || up[0]["from"] == "" || up[0]["to"] == "" {
		t.Errorf("upgraded = %s (%v)", doc.Packages["upgraded"], err)
	}
	for _, j := range doc.OpenQA.NewFailures {
		if _, ok := j["upgraded_packages"]; !ok {
			t.Errorf("new failure %s has no upgraded_packages", j["test"])
		}
	}
	for _, j := range doc.OpenQA.Fixed {
		if _, ok := j["upgraded_packages"]; ok {
			t.Errorf("fixed %s has upgraded_packages", j["test"])
		}
	}

	// Version 2 before the section: no packages key at all.
	old := strings.Replace(string(b), `"packages": {`, `"ignored": {`, 1)
	back, err := ParseReport([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if back.Packages != nil || back.PackagesNote != "" {
		t.Errorf("an old report reads with packages %+v, note %q", back.Packages, back.PackagesNote)
	}
	var text strings.Builder
	if err := RenderText(&text, back); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "Source packages: not compared: the check did not read them") {
		t.Errorf("an old report's text:\n%s", text.String())
	}
}
