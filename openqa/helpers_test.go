package openqa_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

const (
	testKey    = "0123456789ABCDEF"
	testSecret = "FEDCBA9876543210"
	rawhideID  = "Fedora-Rawhide-20261122.n.0"
	rawhideLoc = "https://kojipkgs.fedoraproject.org/compose/rawhide/" + rawhideID + "/compose"
)

// newFake starts a fake openQA that knows the test key as an operator.
func newFake(t *testing.T, opts fakefedora.OpenQAOptions) *fakefedora.OpenQA {
	t.Helper()
	opts.Keys = append(opts.Keys, fakefedora.OpenQAKey{Key: testKey, Secret: testSecret, Operator: true})
	srv := fakefedora.NewOpenQA(opts)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client of srv with fast retries and no waiting
// before re-checks; mod adjusts the options.
func newClient(t *testing.T, srv *fakefedora.OpenQA, mod func(*openqa.Options)) *openqa.Client {
	t.Helper()
	opts := openqa.Options{
		BaseURL:      srv.URL(),
		Credentials:  openqa.Credentials{Key: testKey, Secret: testSecret},
		HTTP:         httpclient.Options{RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond},
		RecheckDelay: -1,
		PostTimeout:  5 * time.Second,
	}
	if mod != nil {
		mod(&opts)
	}
	c, err := openqa.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func image(variant, subvariant, typ, format, arch, path string) fedfind.Image {
	return fedfind.Image{
		Variant: variant, Subvariant: subvariant, Type: typ, Format: format, Arch: arch,
		Path: path, URL: rawhideLoc + "/" + path,
		Identity: fedfind.Identity(subvariant, typ, format),
	}
}

// rawhideCompose is a standard Rawhide nightly: the images Fedora tests on
// x86_64 and aarch64, a toolbox container, and images nobody tests.
func rawhideCompose() openqa.Compose {
	v := "Rawhide-20261122.n.0"
	return openqa.Compose{
		ID: rawhideID, Version: "Rawhide", Location: rawhideLoc, HasGenericTree: true,
		Images: []fedfind.Image{
			image("Everything", "Everything", "boot", "iso", "x86_64", "Everything/x86_64/iso/Fedora-Everything-netinst-x86_64-"+v+".iso"),
			image("Server", "Server", "dvd", "iso", "x86_64", "Server/x86_64/iso/Fedora-Server-dvd-x86_64-"+v+".iso"),
			image("Server", "Server", "boot", "iso", "x86_64", "Server/x86_64/iso/Fedora-Server-netinst-x86_64-"+v+".iso"),
			image("Workstation", "Workstation", "live", "iso", "x86_64", "Workstation/x86_64/iso/Fedora-Workstation-Live-x86_64-"+v+".iso"),
			image("Spins", "KDE", "live", "iso", "x86_64", "Spins/x86_64/iso/Fedora-KDE-Live-x86_64-"+v+".iso"),
			image("Spins", "Xfce", "live", "iso", "x86_64", "Spins/x86_64/iso/Fedora-Xfce-Live-x86_64-"+v+".iso"),
			image("Silverblue", "Silverblue", "dvd-ostree", "iso", "x86_64", "Silverblue/x86_64/iso/Fedora-Silverblue-ostree-x86_64-"+v+".iso"),
			image("Cloud", "Cloud_Base", "qcow2", "qcow2", "x86_64", "Cloud/x86_64/images/Fedora-Cloud-Base-Generic-"+v+".x86_64.qcow2"),
			image("Container", "Container_Toolbox", "docker", "tar.xz", "x86_64", "Container/x86_64/images/Fedora-Toolbox-"+v+".x86_64.tar.xz"),
			image("Spins", "Minimal", "raw-xz", "raw.xz", "aarch64", "Spins/aarch64/images/Fedora-Minimal-"+v+".aarch64.raw.xz"),
			image("Server", "Server", "dvd", "iso", "aarch64", "Server/aarch64/iso/Fedora-Server-dvd-aarch64-"+v+".iso"),
		},
	}
}

// golden compares got (as indented JSON) with testdata/name, rewriting the
// file with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./openqa -update to create it)", err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n--- got\n%s", path, buf.String())
	}
}

// capture records the headers of every request a client sends.
type capture struct {
	mu   sync.Mutex
	reqs []*http.Request
	next http.RoundTripper
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Clone(r.Context()))
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *capture) all() []*http.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*http.Request(nil), c.reqs...)
}
