package fakefedora

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"testing"
)

type rpmsDoc struct {
	Header  map[string]string `json:"header"`
	Payload struct {
		Compose map[string]any                                        `json:"compose"`
		RPMs    map[string]map[string]map[string]map[string]rpmsEntry `json:"rpms"`
	} `json:"payload"`
}

type rpmsEntry struct {
	Category string  `json:"category"`
	Path     string  `json:"path"`
	Sigkey   *string `json:"sigkey"`
}

func TestPackages(t *testing.T) {
	got := Packages("bash-5.2.37-3.fc44", "perl-Foo-Bar-1:2.0~rc1-1.fc44")
	want := []PackageSpec{
		{Name: "bash", Version: "5.2.37", Release: "3.fc44"},
		{Name: "perl-Foo-Bar", Epoch: 1, Version: "2.0~rc1", Release: "1.fc44"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Packages = %+v", got)
	}
	for _, bad := range []string{"bash", "bash-1", "bash-x:1-2"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Packages(%q) did not panic", bad)
				}
			}()
			Packages(bad)
		}()
	}
}

// TestWriteRPMsOf checks the file against docs/protocols.md (b): variant →
// arch → source NEVRA → RPM NEVRA → {category, path, sigkey}, every NEVRA
// with its epoch, the source RPM itself in its group, unsigned.
func TestWriteRPMsOf(t *testing.T) {
	pkgs := Packages("bash-5.2.37-3.fc44", "libfoo-1:2.0-1.fc44", "fonts-1.0-1.fc44")
	pkgs[1].Variants, pkgs[1].Arches, pkgs[1].Binaries = []string{"Server"}, []string{"x86_64"}, []string{"libfoo", "libfoo-devel"}
	pkgs[2].Noarch = true
	var buf bytes.Buffer
	if err := WriteRPMsOf(&buf, "Fedora-Rawhide-20261122.n.0", "1.2", pkgs); err != nil {
		t.Fatal(err)
	}
	var doc rpmsDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if doc.Header["type"] != "productmd.rpms" || doc.Header["version"] != "1.2" || doc.Payload.Compose["id"] != "Fedora-Rawhide-20261122.n.0" {
		t.Errorf("header %v, compose %v", doc.Header, doc.Payload.Compose)
	}
	trees := map[string][]string{}
	for v, arches := range doc.Payload.RPMs {
		for a, srpms := range arches {
			for s := range srpms {
				trees[v+"/"+a] = append(trees[v+"/"+a], s)
			}
			slices.Sort(trees[v+"/"+a])
		}
	}
	wantTrees := map[string][]string{
		"Everything/aarch64": {"bash-0:5.2.37-3.fc44.src", "fonts-0:1.0-1.fc44.src"},
		"Everything/x86_64":  {"bash-0:5.2.37-3.fc44.src", "fonts-0:1.0-1.fc44.src"},
		"Server/x86_64":      {"libfoo-1:2.0-1.fc44.src"},
	}
	if !reflect.DeepEqual(trees, wantTrees) {
		t.Errorf("trees %v, want %v", trees, wantTrees)
	}
	key := "a15b79cc"
	wantGroup := map[string]rpmsEntry{
		"libfoo-1:2.0-1.fc44.x86_64":                 {"binary", "Server/x86_64/os/Packages/l/libfoo-2.0-1.fc44.x86_64.rpm", &key},
		"libfoo-debuginfo-1:2.0-1.fc44.x86_64":       {"debug", "Server/x86_64/debug/tree/Packages/l/libfoo-debuginfo-2.0-1.fc44.x86_64.rpm", &key},
		"libfoo-devel-1:2.0-1.fc44.x86_64":           {"binary", "Server/x86_64/os/Packages/l/libfoo-devel-2.0-1.fc44.x86_64.rpm", &key},
		"libfoo-devel-debuginfo-1:2.0-1.fc44.x86_64": {"debug", "Server/x86_64/debug/tree/Packages/l/libfoo-devel-debuginfo-2.0-1.fc44.x86_64.rpm", &key},
		"libfoo-1:2.0-1.fc44.src":                    {"source", "Server/source/tree/Packages/l/libfoo-2.0-1.fc44.src.rpm", nil},
	}
	if got := doc.Payload.RPMs["Server"]["x86_64"]["libfoo-1:2.0-1.fc44.src"]; !reflect.DeepEqual(got, wantGroup) {
		t.Errorf("libfoo's group = %+v", got)
	}
	if got := doc.Payload.RPMs["Everything"]["aarch64"]["fonts-0:1.0-1.fc44.src"]; len(got) != 2 || got["fonts-0:1.0-1.fc44.noarch"].Category != "binary" {
		t.Errorf("noarch group = %+v", got)
	}
}

// TestSyntheticPackages: the benchmarks' packages are deterministic and
// make a valid file.
func TestSyntheticPackages(t *testing.T) {
	a, b := SyntheticPackages(200, "fc44"), SyntheticPackages(200, "fc44")
	if !reflect.DeepEqual(a, b) {
		t.Error("SyntheticPackages is not deterministic")
	}
	var buf bytes.Buffer
	if err := WriteRPMsOf(&buf, "Fedora-Rawhide-20261122.n.0", "1.2", a); err != nil {
		t.Fatal(err)
	}
	var doc rpmsDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if n := len(doc.Payload.RPMs["Everything"]["x86_64"]); n != 200 {
		t.Errorf("Everything/x86_64 has %d source packages, want 200", n)
	}
	if len(doc.Payload.RPMs["Server"]) == 0 || len(doc.Payload.RPMs["Everything"]["s390x"]) == 0 {
		t.Errorf("variants and arches: %d, %d", len(doc.Payload.RPMs["Server"]), len(doc.Payload.RPMs["Everything"]["s390x"]))
	}
}

// TestMirrorServesPackages: a compose's rpms.json lists its Packages.
func TestMirrorServesPackages(t *testing.T) {
	m := NewMirror()
	m.MustAddCompose(ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED", Packages: Packages("bash-5.2.37-3.fc44")})
	m.MustAddCompose(ComposeSpec{ID: "Fedora-Rawhide-20261121.n.0", Status: "FINISHED", GarbageCollected: true, Packages: Packages("bash-5.2.37-3.fc44")})
	root := m.Start()
	defer m.Close()
	resp, err := http.Get(root + "/rawhide/Fedora-Rawhide-20261122.n.0/compose/metadata/rpms.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc rpmsDoc
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Payload.RPMs["Everything"]["x86_64"]["bash-0:5.2.37-3.fc44.src"]) != 3 {
		t.Errorf("rpms.json: %v\n%s", err, body)
	}
	// A collected compose's rpms.json is gone, and the archive never had it.
	for _, u := range []string{
		root + "/rawhide/Fedora-Rawhide-20261121.n.0/compose/metadata/rpms.json",
		root + "/metadata-archive/2026/Fedora-Rawhide-20261121.n.0/rpms.json",
	} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, resp.StatusCode)
		}
	}
}
