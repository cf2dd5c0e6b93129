package fedfind_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
)

// sources reads the source packages of an rpms.json written from pkgs.
func sources(t *testing.T, id string, pkgs []fakefedora.PackageSpec, opts fedfind.SourceOptions) *fedfind.SourcePackages {
	t.Helper()
	var buf bytes.Buffer
	if err := fakefedora.WriteRPMsOf(&buf, id, "1.2", pkgs); err != nil {
		t.Fatal(err)
	}
	sp, err := fedfind.ReadSourcePackages(&buf, "rpms.json", opts)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestReadSourcePackages(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "rpms-rawhide-1.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sp, err := fedfind.ReadSourcePackages(f, "rpms.json", fedfind.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(sp)
	want := `{"compose":{"id":"Fedora-Rawhide-20261122.n.0","date":"20261122","respin":0,"type":"nightly"},` +
		`"trees":[{"variant":"Everything","arch":"aarch64","packages":[]},` +
		`{"variant":"Everything","arch":"x86_64","packages":["bash-5.2.37-3.fc44","kernel-6.18.0-0.rc6.50.fc44"]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}

	// Two versions of one package in a tree: the higher counts. A filter
	// reads only what it keeps and says what it skipped.
	pkgs := fakefedora.Packages("zsh-5.9-1.fc44", "zsh-5.9~rc1-1.fc44", "bash-1:5.2-1.fc44")
	pkgs[2].Variants = []string{"Everything", "Server"}
	sp = sources(t, "Fedora-Rawhide-20261122.n.0", pkgs, fedfind.SourceOptions{Variants: []string{"everything"}, Arches: []string{"X86_64"}})
	if len(sp.Trees) != 1 || sp.Trees[0].Variant != "Everything" || sp.Trees[0].Arch != "x86_64" {
		t.Fatalf("trees %+v", sp.Trees)
	}
	if got := sp.Trees[0].Packages; len(got) != 2 || got[0].String() != "bash-1:5.2-1.fc44" || got[1].String() != "zsh-5.9-1.fc44" {
		t.Errorf("packages %v", got)
	}
	if !reflect.DeepEqual(sp.Skipped, []string{"Everything/aarch64", "Server/aarch64", "Server/x86_64"}) {
		t.Errorf("skipped %v", sp.Skipped)
	}

	// A source package that is not a NEVRA, or not an object.
	for in, message := range map[string]string{
		`{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"rpms": {"Everything": {"x86_64": {"bash.src": {}}}}}}`:       `payload.rpms.Everything.x86_64: source package "bash.src" is not a NEVRA`,
		`{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"rpms": {"Everything": {"x86_64": {"bash-0:1-2.src": []}}}}}`: "payload.rpms.Everything.x86_64.bash-1-2: want a JSON object, got array",
		`{"header": {"type": "productmd.rpms", "version": "2.0"}, "payload": {}}`:                                                           "format 2.0",
		`{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"rpms": {"Everything": {"x86_64": {"bash-0:1-2.src": {`:       "truncated JSON",
	} {
		_, err := fedfind.ReadSourcePackages(strings.NewReader(in), "rpms.json", fedfind.SourceOptions{})
		var me *fedfind.MetadataError
		if !errors.As(err, &me) || me.File != "rpms.json" || !strings.Contains(err.Error(), message) {
			t.Errorf("error %v, want a MetadataError saying %q", err, message)
		}
	}
}

// TestPackageDiff covers every kind of change, in RPM's order: epochs,
// tilde pre-releases, caret snapshots, releases compared by segment; trees
// that change without the roll-up; and the JSON shape the CLI prints.
func TestPackageDiff(t *testing.T) {
	old := fakefedora.Packages(
		"bash-5.2.37-3.fc44",
		"kernel-6.18.0-0.rc6.50.fc44",
		"glibc-2.42.9000-5.fc44",
		"python3.14-3.14.0~rc3-1.fc44",
		"libfoo-1:1.0-1.fc44",
		"vim-2:9.1.1-1.fc44",
		"yum-4.0-1.fc44",
		"zsh-0:5.9-1.fc44",
		"grub2-1:2.12-10.fc44",
		"mover-1.0-1.fc44",
	)
	new := fakefedora.Packages(
		"bash-5.3.0-1.fc44",               // upgraded
		"kernel-6.18.0-1.fc44",            // upgraded: release 0.rc6.50 < 1
		"glibc-2.42.9000-4.fc44",          // downgraded
		"python3.14-3.14.0-1.fc44",        // upgraded: ~rc3 sorts before the release
		"libfoo-2.0-1.fc44",               // downgraded: epoch 1 → 0 beats any version
		"vim-2:9.1.1^20261122git1-1.fc44", // upgraded: a caret snapshot is after its base
		"dnf5-5.3.0-1.fc44",               // added
		"zsh-5.9-1.fc44",                  // unchanged: a 0 epoch is no epoch
		"grub2-1:2.12-11.fc44",            // upgraded on x86_64 only (below)
		"grub2-1:2.12-10.fc44",            // ... aarch64 keeps the old build
		"mover-1.0-1.fc44",                // moved from Everything to Server
	)
	new[8].Arches = []string{"x86_64"}
	new[9].Arches = []string{"aarch64"}
	new[10].Variants = []string{"Server"}

	d := fedfind.PackageDiff(
		sources(t, "Fedora-Rawhide-20261121.n.0", old, fedfind.SourceOptions{}),
		sources(t, "Fedora-Rawhide-20261122.n.0", new, fedfind.SourceOptions{}),
	)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	top := map[string]any{}
	for _, k := range []string{"old", "new", "added", "removed", "upgraded", "downgraded", "unchanged"} {
		top[k] = got[k]
	}
	wantTop := `{"added":[{"name":"dnf5","nevr":"dnf5-5.3.0-1.fc44"}],` +
		`"downgraded":[{"from":"2.42.9000-5.fc44","name":"glibc","to":"2.42.9000-4.fc44"},{"from":"1:1.0-1.fc44","name":"libfoo","to":"2.0-1.fc44"}],` +
		`"new":"Fedora-Rawhide-20261122.n.0","old":"Fedora-Rawhide-20261121.n.0",` +
		`"removed":[{"name":"yum","nevr":"yum-4.0-1.fc44"}],"unchanged":2,` +
		`"upgraded":[{"from":"5.2.37-3.fc44","name":"bash","to":"5.3.0-1.fc44"},{"from":"1:2.12-10.fc44","name":"grub2","to":"1:2.12-11.fc44"},` +
		`{"from":"6.18.0-0.rc6.50.fc44","name":"kernel","to":"6.18.0-1.fc44"},{"from":"3.14.0~rc3-1.fc44","name":"python3.14","to":"3.14.0-1.fc44"},` +
		`{"from":"2:9.1.1-1.fc44","name":"vim","to":"2:9.1.1^20261122git1-1.fc44"}]}`
	if tb, _ := json.Marshal(top); string(tb) != wantTop {
		t.Errorf("rolled up:\ngot  %s\nwant %s", tb, wantTop)
	}

	// The trees: aarch64 has no grub2 upgrade; mover left Everything for
	// Server, a tree new in this compose.
	trees := map[string]fedfind.SourceChanges{}
	for _, tc := range d.Trees {
		trees[tc.Variant+"/"+tc.Arch] = tc.SourceChanges
	}
	if len(trees) != 4 {
		t.Errorf("changed trees %v", d.Trees)
	}
	if up := trees["Everything/x86_64"].Upgraded; len(up) != 5 || up[1].Name != "grub2" {
		t.Errorf("x86_64 upgrades %+v", up)
	}
	if up := trees["Everything/aarch64"].Upgraded; len(up) != 4 || trees["Everything/aarch64"].Unchanged != 2 {
		t.Errorf("aarch64 upgrades %+v", up)
	}
	for _, a := range []string{"aarch64", "x86_64"} {
		if r := trees["Everything/"+a].Removed; len(r) != 2 || r[0].Name != "mover" || r[1].Name != "yum" {
			t.Errorf("Everything/%s removed %+v", a, r)
		}
		if s := trees["Server/"+a]; len(s.Added) != 1 || s.Added[0].NEVR.String() != "mover-1.0-1.fc44" || !(len(s.Removed)+len(s.Upgraded)+len(s.Downgraded) == 0) {
			t.Errorf("Server/%s %+v", a, s)
		}
	}
	if d.Empty() {
		t.Error("a diff with changes is empty")
	}

	// Nothing changed: empty lists, not null, and Empty.
	same := fedfind.PackageDiff(
		sources(t, "Fedora-Rawhide-20261121.n.0", old, fedfind.SourceOptions{}),
		sources(t, "Fedora-Rawhide-20261122.n.0", old, fedfind.SourceOptions{}),
	)
	b, _ = json.Marshal(same)
	if !same.Empty() || !strings.Contains(string(b), `"added":[],"removed":[],"upgraded":[],"downgraded":[],"unchanged":10,"trees":[]`) {
		t.Errorf("no change: %s", b)
	}
}

// TestClientSourcePackages reads rpms.json from the tree, and says why it
// cannot for a compose whose tree is gone or never was.
func TestClientSourcePackages(t *testing.T) {
	m, c := archiveTree(t)
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.1", Status: "FINISHED", Packages: fakefedora.Packages("bash-5.3.0-1.fc44", "dnf5-5.3.0-1.fc44")})
	m.MustAddCompose(fakefedora.ComposeSpec{ID: "Fedora-Rawhide-20261122.n.2", Status: "FINISHED", Packages: fakefedora.Packages("bash-5.2.37-3.fc44")})
	ctx := context.Background()
	resolve := func(id string) *fedfind.Compose {
		cm, err := c.Resolve(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	sp, err := c.SourcePackages(ctx, resolve("Fedora-Rawhide-20261122.n.1"), fedfind.SourceOptions{})
	if err != nil || len(sp.Trees) != 2 || len(sp.Trees[1].Packages) != 2 {
		t.Fatalf("%+v %v", sp, err)
	}
	d, err := c.PackageDiff(ctx, resolve("Fedora-Rawhide-20261122.n.2"), resolve("Fedora-Rawhide-20261122.n.1"), fedfind.SourceOptions{Arches: []string{"x86_64"}})
	if err != nil || len(d.Added) != 1 || len(d.Upgraded) != 1 || len(d.Trees) != 1 {
		t.Errorf("diff %+v %v", d, err)
	}
	_, err = c.PackageDiff(ctx, resolve("Fedora-Rawhide-20261122.n.2"), resolve("Fedora-Rawhide-20261122.n.1"), fedfind.SourceOptions{Variants: []string{"Server"}})
	if !errors.Is(err, fedfind.ErrInvalidInput) || !strings.Contains(err.Error(), "neither Fedora-Rawhide-20261122.n.2 nor Fedora-Rawhide-20261122.n.1 has packages of variant Server (they have Everything/aarch64, Everything/x86_64)") {
		t.Errorf("a filter that matches nothing: %v", err)
	}

	for id, message := range map[string]string{
		"Fedora-Rawhide-20261101.n.0": "the tree of Fedora-Rawhide-20261101.n.0 has been garbage-collected", // images in the archive, no rpms.json
		"Fedora-Rawhide-20200101.n.0": "Fedora-Rawhide-20200101.n.0 is not in",
	} {
		_, err := c.SourcePackages(ctx, resolve(id), fedfind.SourceOptions{})
		if !errors.Is(err, fedfind.ErrComposeNotFound) || !strings.Contains(err.Error(), message) {
			t.Errorf("%s: %v, want ErrComposeNotFound saying %q", id, err, message)
		}
	}
	// The old and the new compose are read at once; an error in either
	// comes back.
	if _, err := c.PackageDiff(ctx, resolve("Fedora-Rawhide-20261101.n.0"), resolve("Fedora-Rawhide-20261122.n.1"), fedfind.SourceOptions{}); !errors.Is(err, fedfind.ErrComposeNotFound) {
		t.Errorf("diff with a collected compose: %v", err)
	}
}
