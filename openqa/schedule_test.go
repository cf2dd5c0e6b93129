package openqa_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/openqa"
)

// postedParams returns what the fake received, sorted by flavor and arch.
func postedParams(srv *fakefedora.OpenQA) []map[string]string {
	var out []map[string]string
	for _, p := range srv.Posts() {
		out = append(out, p.Params)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i]["FLAVOR"]+out[i]["ARCH"] < out[j]["FLAVOR"]+out[j]["ARCH"]
	})
	return out
}

func TestScheduleRawhidePostsWhatFedoraPosts(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	c := newClient(t, srv, nil)
	// Explicit release numbers keep the golden file valid when the
	// defaults in rules.toml move on.
	res, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{Releases: openqa.Releases{Current: 45, Rawhide: 46}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range res {
		if s.Skipped || len(s.JobIDs) == 0 || s.Attempts != 1 {
			t.Errorf("%s %s: %+v", s.Flavor, s.Arch, s)
		}
		got = append(got, s.Flavor+" "+s.Arch)
	}
	want := []string{
		"Server-boot-iso x86_64", "Server-dvd-iso x86_64", "Everything-boot-iso x86_64",
		"Workstation-live-iso x86_64", "KDE-live-iso x86_64", "Silverblue-dvd_ostree-iso x86_64",
		"Cloud_Base-qcow2-qcow2 x86_64", "Workstation-upgrade x86_64", "universal x86_64",
	}
	if !slices.Equal(got, want) {
		t.Errorf("scheduled\n %q\nwant (wanted-list order, then special flavors)\n %q", got, want)
	}
	golden(t, "rawhide-posted.golden.json", postedParams(srv))
}

func TestScheduleIsIdempotent(t *testing.T) {
	ctx := context.Background()
	comp := rawhideCompose()
	products, err := openqa.DefaultRules().Products(comp, openqa.Releases{})
	if err != nil {
		t.Fatal(err)
	}
	type check struct {
		posts, skipped, jobs int
	}
	tests := []struct {
		name string
		// before prepares the server (and may post part of the compose,
		// as a run that crashed would have).
		before func(t *testing.T, srv *fakefedora.OpenQA, c *openqa.Client)
		opts   openqa.ScheduleOptions
		want   check
	}{
		{
			name:   "a second run posts nothing",
			before: func(t *testing.T, _ *fakefedora.OpenQA, c *openqa.Client) { mustSchedule(t, c, comp) },
			want:   check{posts: len(products), skipped: len(products), jobs: 21},
		},
		{
			name: "a second run after the jobs finished posts nothing",
			before: func(t *testing.T, srv *fakefedora.OpenQA, c *openqa.Client) {
				srv.SetOutcome("", "", "", "install_default", "failed")
				mustSchedule(t, c, comp)
				srv.Settle()
			},
			want: check{posts: len(products), skipped: len(products), jobs: 21},
		},
		{
			name: "after a crash between products only the missing ones are posted",
			before: func(t *testing.T, _ *fakefedora.OpenQA, c *openqa.Client) {
				for _, p := range products[:3] {
					if _, err := c.PostISOs(ctx, p.Params); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: check{posts: len(products), skipped: 3, jobs: 21},
		},
		{
			name: "image-less flavors are not posted twice either",
			before: func(t *testing.T, _ *fakefedora.OpenQA, c *openqa.Client) {
				for _, p := range products {
					if p.Image == nil {
						if _, err := c.PostISOs(ctx, p.Params); err != nil {
							t.Fatal(err)
						}
					}
				}
			},
			want: check{posts: len(products), skipped: 2, jobs: 21},
		},
		{
			name: "a product whose jobs were all cancelled by a user is posted again",
			before: func(t *testing.T, srv *fakefedora.OpenQA, c *openqa.Client) {
				mustSchedule(t, c, comp)
				for _, j := range srv.Jobs() {
					if j.Flavor() == "KDE-live-iso" {
						if err := srv.Cancel(j.ID); err != nil {
							t.Fatal(err)
						}
					}
				}
			},
			want: check{posts: len(products) + 1, skipped: len(products) - 1, jobs: 23},
		},
		{
			name:   "force posts again, and openQA obsoletes the pending first set",
			before: func(t *testing.T, _ *fakefedora.OpenQA, c *openqa.Client) { mustSchedule(t, c, comp) },
			opts:   openqa.ScheduleOptions{Force: true},
			want:   check{posts: 2 * len(products), skipped: 0, jobs: 42},
		},
		{
			name:   "dry run posts nothing",
			before: func(*testing.T, *fakefedora.OpenQA, *openqa.Client) {},
			opts:   openqa.ScheduleOptions{DryRun: true},
			want:   check{posts: 0, skipped: 0, jobs: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, nil)
			tt.before(t, srv, c)
			res, err := c.Schedule(ctx, comp, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := check{posts: srv.Requests("POST", "/api/v1/isos"), jobs: len(srv.Jobs())}
			for _, s := range res {
				if s.Skipped {
					got.skipped++
					if len(s.JobIDs) == 0 {
						t.Errorf("%s %s skipped without naming the jobs found", s.Flavor, s.Arch)
					}
				}
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			assertOneLiveSetPerProduct(t, srv)
		})
	}
}

func mustSchedule(t *testing.T, c *openqa.Client, comp openqa.Compose) []openqa.Scheduled {
	t.Helper()
	res, err := c.Schedule(context.Background(), comp, openqa.ScheduleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// assertOneLiveSetPerProduct checks the invariant scheduling must keep: no
// test of a (flavor, arch) has two live jobs that are not clones of each
// other.
func assertOneLiveSetPerProduct(t *testing.T, srv *fakefedora.OpenQA) {
	t.Helper()
	live := map[string][]int64{}
	for _, j := range srv.Jobs() {
		if j.State == "cancelled" || j.Result == "obsoleted" || j.Result == "user_cancelled" || j.CloneID != 0 {
			continue
		}
		k := j.Build() + " " + j.Flavor() + " " + j.Arch() + " " + j.Test + "@" + j.Machine
		live[k] = append(live[k], j.ID)
	}
	for k, ids := range live {
		if len(ids) > 1 {
			t.Errorf("%s has %d live job sets: %v", k, len(ids), ids)
		}
	}
}

func TestScheduleNeverDoublesAJobSetWhenAPostFails(t *testing.T) {
	comp := rawhideCompose()
	comp.Images = comp.Images[1:2] // Server-dvd-iso only, plus the special flavors
	tests := []struct {
		name string
		// faults are armed before scheduling
		faults        []fakefedora.OpenQAFault
		postTimeout   time.Duration
		wantPosts     int
		wantAttempts  int // of the first product
		wantRecovered bool
		wantErr       string
	}{
		{
			name:          "POST creates the jobs but times out before answering",
			faults:        []fakefedora.OpenQAFault{{Method: "POST", Path: "/api/v1/isos", AfterEffect: true, Hang: 30 * time.Second}},
			postTimeout:   300 * time.Millisecond,
			wantPosts:     3,
			wantAttempts:  1,
			wantRecovered: true,
		},
		{
			name:          "POST creates the jobs but answers 502",
			faults:        []fakefedora.OpenQAFault{{Method: "POST", Path: "/api/v1/isos", AfterEffect: true, Status: 502}},
			wantPosts:     3,
			wantAttempts:  1,
			wantRecovered: true,
		},
		{
			name:         "POST fails with 503 before creating anything: posted again",
			faults:       []fakefedora.OpenQAFault{{Method: "POST", Path: "/api/v1/isos", Status: 503}},
			wantPosts:    4,
			wantAttempts: 2,
		},
		{
			name:         "POST keeps failing: gives up after PostAttempts",
			faults:       []fakefedora.OpenQAFault{{Method: "POST", Path: "/api/v1/isos", Status: 503, Times: 3}},
			wantPosts:    5,
			wantAttempts: 3,
			wantErr:      "after 3 attempts",
		},
		{
			name: "POST fails and the check fails too: not posted again",
			faults: []fakefedora.OpenQAFault{
				{Method: "POST", Path: "/api/v1/isos", AfterEffect: true, Status: 502},
				// Skip: Schedule's own first check goes through.
				{Method: "GET", Path: "/api/v1/jobs", Status: 503, Skip: 1, Times: 100},
			},
			wantPosts:    3,
			wantAttempts: 1,
			wantErr:      "was not posted again",
		},
		{
			name:         "a 400 is an answer: not posted again",
			faults:       []fakefedora.OpenQAFault{{Method: "POST", Path: "/api/v1/isos", Status: 400}},
			wantPosts:    3,
			wantAttempts: 1,
			wantErr:      "HTTP 400",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, func(o *openqa.Options) {
				if tt.postTimeout > 0 {
					o.PostTimeout = tt.postTimeout
				}
			})
			for _, f := range tt.faults {
				srv.InjectFault(f)
			}
			res, err := c.Schedule(context.Background(), comp, openqa.ScheduleOptions{})
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			// Scheduling again later may mend a 503 or a check that
			// failed (the jobs are read first then); not a 400.
			if wantTemp := tt.wantErr != "" && !strings.Contains(tt.wantErr, "400"); res[0].Temporary != wantTemp {
				t.Errorf("first product temporary %v, want %v", res[0].Temporary, wantTemp)
			}
			first := res[0]
			if first.Flavor != "Server-dvd-iso" || first.Attempts != tt.wantAttempts || first.Recovered != tt.wantRecovered {
				t.Errorf("first product: %+v", first)
			}
			if tt.wantErr == "" && len(first.JobIDs) == 0 {
				t.Errorf("first product names no jobs: %+v", first)
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != tt.wantPosts {
				t.Errorf("%d POSTs, want %d", n, tt.wantPosts)
			}
			for _, j := range srv.Jobs() {
				if j.Result == "obsoleted" {
					t.Errorf("job %d (%s) was obsoleted: a re-post replaced a job set", j.ID, j.Name)
				}
			}
			assertOneLiveSetPerProduct(t, srv)
		})
	}
}

// TestScheduleLeavesOutProductsWithoutTemplates: an openQA set up to test
// one flavor answers "no products found" for the others (200, count 0).
// As with fedora_openqa that is no failure: those products are marked
// NotConfigured, the one with templates is scheduled, and no error is
// returned.
func TestScheduleLeavesOutProductsWithoutTemplates(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{Templates: []fakefedora.OpenQATemplate{
		{Flavor: "Server-dvd-iso", Arch: "x86_64", Tests: []string{"install_default"}},
	}})
	c := newClient(t, srv, nil)
	res, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{})
	if err != nil {
		t.Fatalf("err = %v, want none: products without templates are not failures", err)
	}
	ok, untested := 0, 0
	for _, s := range res {
		switch {
		case s.Flavor == "Server-dvd-iso":
			ok++
			if s.Error != "" || s.NotConfigured || len(s.JobIDs) != 1 {
				t.Errorf("%+v", s)
			}
		case !s.NotConfigured || s.Temporary || len(s.JobIDs) != 0 || !strings.Contains(s.Error, "no products found for fedora-"+s.Flavor+"-"+s.Arch):
			t.Errorf("%s %s: %+v", s.Flavor, s.Arch, s)
		default:
			untested++
		}
	}
	if ok != 1 || untested != 8 || len(res) != 9 {
		t.Errorf("%d results, %d ok, %d without templates", len(res), ok, untested)
	}
	// Each was posted once: a product without templates is not retried.
	if n := srv.Requests("POST", "/api/v1/isos"); n != 9 {
		t.Errorf("%d POSTs, want 9", n)
	}
}

// TestScheduleStopsAtAnAuthRefusal: a refused key would be refused for
// every product, so the first refusal ends the run; other 403s (an asset
// host outside openQA's allow-list) are the product's own.
func TestScheduleStopsAtAnAuthRefusal(t *testing.T) {
	tests := []struct {
		name  string
		creds openqa.Credentials
		now   func() time.Time
		fault *fakefedora.OpenQAFault
		words string
	}{
		{name: "wrong secret", creds: openqa.Credentials{Key: testKey, Secret: "wrong"}, words: "wrong secret"},
		{name: "no key", words: "no api key"},
		{name: "unknown key", creds: openqa.Credentials{Key: "NOSUCHKEY", Secret: testSecret}, words: "Not authorized"},
		{name: "not an operator", creds: openqa.Credentials{Key: "USERKEY", Secret: "USERSECRET"}, words: "Administrator level required"},
		{name: "stale timestamp", creds: openqa.Credentials{Key: testKey, Secret: testSecret},
			now: func() time.Time { return time.Now().Add(-time.Hour) }, words: "timestamp mismatch"},
		{name: "401 from a proxy", creds: openqa.Credentials{Key: testKey, Secret: testSecret},
			fault: &fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Status: 401}, words: "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{Keys: []fakefedora.OpenQAKey{{Key: "USERKEY", Secret: "USERSECRET"}}})
			if tt.fault != nil {
				srv.InjectFault(*tt.fault)
			}
			c := newClient(t, srv, func(o *openqa.Options) {
				o.Credentials = tt.creds
				if tt.now != nil {
					o.Now = tt.now
				}
			})
			res, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{})
			if !errors.Is(err, openqa.ErrAuthRefused) || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("err = %v, want ErrAuthRefused with %q", err, tt.words)
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != 1 {
				t.Errorf("%d POSTs after the refusal, want the 1 refused", n)
			}
			if len(res) != 1 || res[0].Error == "" {
				t.Errorf("%d results, want the refused product alone", len(res))
			}
		})
	}

	// An asset outside the allow-list is refused for its product only.
	srv := newFake(t, fakefedora.OpenQAOptions{DownloadDomains: []string{"nowhere.example"}})
	c := newClient(t, srv, nil)
	res, err := c.Schedule(context.Background(), rawhideCompose(), openqa.ScheduleOptions{})
	if !errors.Is(err, openqa.ErrForbidden) || errors.Is(err, openqa.ErrAuthRefused) {
		t.Errorf("err = %v, want ErrForbidden, not ErrAuthRefused", err)
	}
	for _, s := range res {
		if s.Error != "" && (s.Temporary || s.NotConfigured) {
			t.Errorf("%s %s refused by the allow-list, yet temporary %v, not configured %v", s.Flavor, s.Arch, s.Temporary, s.NotConfigured)
		}
	}
	if n := srv.Requests("POST", "/api/v1/isos"); n < 2 {
		t.Errorf("%d POSTs: the allow-list's refusal stopped the run", n)
	}
}

func TestProducts(t *testing.T) {
	rawhide := rawhideCompose()
	aarch64 := openqa.DefaultRules()
	aarch64.Arches = []string{"x86_64", "aarch64"}

	eln := rawhideCompose()
	eln.ID, eln.Version, eln.ELN, eln.HasGenericTree = "Fedora-eln-20261122.n.0", "eln", true, true
	eln.Images = []fedfind.Image{image("BaseOS", "BaseOS", "dvd", "iso", "x86_64", "BaseOS/x86_64/iso/Fedora-eln-dvd.iso")}

	branched := rawhideCompose()
	branched.ID, branched.Version, branched.Label = "Fedora-44-20260401.0", "44", "RC-1.5"

	imageOnly := rawhideCompose()
	imageOnly.HasGenericTree = false

	noURL := rawhideCompose()
	noURL.Images = []fedfind.Image{noURL.Images[1]}
	noURL.Images[0].URL = ""

	none := rawhideCompose()
	none.Images = none.Images[5:6] // Xfce only: nobody tests it

	tests := []struct {
		name    string
		rules   *openqa.Rules
		comp    openqa.Compose
		rel     openqa.Releases
		check   func(t *testing.T, ps []openqa.Product)
		wantErr error
	}{
		{
			name: "release numbers for Rawhide come from the rawhide number",
			comp: rawhide, rel: openqa.Releases{Current: 44, Rawhide: 45},
			check: func(t *testing.T, ps []openqa.Product) {
				wantParams(t, ps[0], map[string]string{"CURRREL": "44", "RAWREL": "45", "UP1REL": "44", "UP2REL": "43", "VERSION": "Rawhide"})
			},
		},
		{
			name: "release numbers for Branched come from its version; LABEL is sent",
			comp: branched, rel: openqa.Releases{Current: 43, Rawhide: 45},
			check: func(t *testing.T, ps []openqa.Product) {
				wantParams(t, ps[0], map[string]string{"CURRREL": "43", "RAWREL": "45", "UP1REL": "43", "UP2REL": "42", "VERSION": "44", "LABEL": "RC-1.5", "BUILD": "Fedora-44-20260401.0"})
			},
		},
		{
			name: "ELN gets QEMUCPU and no image-less flavors",
			comp: eln,
			check: func(t *testing.T, ps []openqa.Product) {
				if len(ps) != 1 || ps[0].Flavor != "BaseOS-dvd-iso" {
					t.Fatalf("%v", flavors(ps))
				}
				wantParams(t, ps[0], map[string]string{"QEMUCPU": "Haswell", "VERSION": "eln"})
			},
		},
		{
			name: "an image-only compose gets no image-less flavors",
			comp: imageOnly,
			check: func(t *testing.T, ps []openqa.Product) {
				for _, p := range ps {
					if p.Image == nil {
						t.Errorf("special flavor %s posted for an image-only compose", p.Flavor)
					}
				}
			},
		},
		{
			name: "aarch64: raw.xz is decompressed into HDD_2, specials on both arches",
			comp: rawhide, rules: aarch64,
			check: func(t *testing.T, ps []openqa.Product) {
				got := flavors(ps)
				for _, w := range []string{"Minimal-raw_xz-raw.xz aarch64", "Server-dvd-iso aarch64", "universal aarch64", "Workstation-upgrade aarch64", "universal x86_64"} {
					if !slices.Contains(got, w) {
						t.Errorf("%s missing from %v", w, got)
					}
				}
				for _, p := range ps {
					if p.Flavor == "Minimal-raw_xz-raw.xz" {
						wantParams(t, p, map[string]string{"HDD_2_DECOMPRESS_URL": rawhideLoc + "/Spins/aarch64/images/Fedora-Minimal-Rawhide-20261122.n.0.aarch64.raw.xz"})
						if _, ok := p.Params["TOOLBOX_IMAGE"]; ok {
							t.Error("TOOLBOX_IMAGE of x86_64 given to an aarch64 product")
						}
					}
				}
			},
		},
		{
			name: "qcow2 goes in HDD_2_URL, the toolbox rides along, specials get no image",
			comp: rawhide,
			check: func(t *testing.T, ps []openqa.Product) {
				for _, p := range ps {
					_, hasToolbox := p.Params["TOOLBOX_IMAGE"]
					if hasToolbox != (p.Image != nil) {
						t.Errorf("%s: TOOLBOX_IMAGE present %v", p.Flavor, hasToolbox)
					}
					if p.Flavor == "Cloud_Base-qcow2-qcow2" {
						wantParams(t, p, map[string]string{"HDD_2_URL": rawhideLoc + "/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-Rawhide-20261122.n.0.x86_64.qcow2"})
					}
					if p.Flavor == "universal" {
						wantParams(t, p, map[string]string{"SUBVARIANT": "Server", "IMAGETYPE": "upgrade"})
						for k := range p.Params {
							if strings.HasSuffix(k, "_URL") {
								t.Errorf("universal carries %s", k)
							}
						}
					}
				}
			},
		},
		{
			name: "an image without a URL is found under the compose location",
			comp: noURL,
			check: func(t *testing.T, ps []openqa.Product) {
				wantParams(t, ps[0], map[string]string{"ISO_URL": rawhideLoc + "/Server/x86_64/iso/Fedora-Server-dvd-x86_64-Rawhide-20261122.n.0.iso"})
			},
		},
		{name: "no wanted image at all", comp: none, wantErr: openqa.ErrNoImages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.rules
			if r == nil {
				r = openqa.DefaultRules()
			}
			ps, err := r.Products(tt.comp, tt.rel)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, ps)
			}
		})
	}
}

func flavors(ps []openqa.Product) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Flavor+" "+p.Arch)
	}
	return out
}

func wantParams(t *testing.T, p openqa.Product, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if p.Params[k] != v {
			t.Errorf("%s %s: %s = %q, want %q", p.Flavor, p.Arch, k, p.Params[k], v)
		}
	}
}

func TestRulesFile(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		check   func(t *testing.T, r *openqa.Rules)
		wantErr string
	}{
		{
			name: "an empty file keeps every default",
			check: func(t *testing.T, r *openqa.Rules) {
				d := openqa.DefaultRules()
				if len(r.Wanted) != len(d.Wanted) || r.Params["DISTRI"] != "fedora" || r.Formats["qcow2"] != "HDD_2_URL" {
					t.Errorf("%+v", r)
				}
			},
		},
		{
			name: "lists are replaced, tables merged",
			text: "arches = [\"aarch64\"]\n[params]\nEXTRA = \"1\"\n[[wanted]]\nsubvariant = \"Server\"\ntype = \"dvd\"\nformat = \"iso\"\narch = \"aarch64\"\n",
			check: func(t *testing.T, r *openqa.Rules) {
				if !slices.Equal(r.Arches, []string{"aarch64"}) || len(r.Wanted) != 1 || r.Params["EXTRA"] != "1" || r.Params["DISTRI"] != "fedora" {
					t.Errorf("%+v", r)
				}
			},
		},
		{name: "unknown keys are refused", text: "arch = [\"x86_64\"]\n", wantErr: "unknown keys arch"},
		{name: "a wanted format without a parameter is refused", text: "[[wanted]]\nsubvariant = \"X\"\ntype = \"y\"\nformat = \"vmdk\"\narch = \"x86_64\"\n", wantErr: "no URL parameter for format \"vmdk\""},
		{name: "TOML syntax errors are reported with the file name", text: "arches = [", wantErr: "my.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := openqa.ParseRules(tt.text, "my.toml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
			if d := openqa.DefaultRules(); len(d.Arches) != 1 || d.Arches[0] != "x86_64" {
				t.Errorf("parsing changed the defaults: %v", d.Arches)
			}
		})
	}
}

// TestDefaultRulesAreCopies: the embedded rules are parsed once, on first
// use, and every caller gets a copy of its own, which it may change
// without changing what the next caller gets.
func TestDefaultRulesAreCopies(t *testing.T) {
	before, err := json.Marshal(openqa.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	r := openqa.DefaultRules()
	r.Arches[0] = "changed"
	r.Params["CHANGED"] = "1"
	r.Formats["iso"] = "CHANGED"
	r.Wanted[0].Arch = "changed"
	r.Special[0].Arches[0] = "changed"
	r.Toolbox.Types = append(r.Toolbox.Types[:0], "changed")
	r.Releases.Current = -1
	after, err := json.Marshal(openqa.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("changing a copy changed the defaults:\nbefore %s\nafter  %s", before, after)
	}
}

// TestScheduleReleaseNumbers: CURRREL and RAWREL come from numbers given
// by hand, then Fedora QA's release data, then the rules, field by field;
// release data that cannot be read leaves the rules' numbers.
func TestScheduleReleaseNumbers(t *testing.T) {
	rules, err := openqa.ParseRules("[releases]\ncurrent = 40\nrawhide = 41\n", "rules.toml")
	if err != nil {
		t.Fatal(err)
	}
	builtin := openqa.DefaultRules().Releases
	tests := []struct {
		name             string
		rules            *openqa.Rules
		byHand           openqa.Releases
		data             string // "ok", "404", "garbage", "" for none
		current, rawhide int
		asked            int64
	}{
		{name: "built-in rules", current: builtin.Current, rawhide: builtin.Rawhide},
		{name: "rules file", rules: rules, current: 40, rawhide: 41},
		{name: "release data", rules: rules, data: "ok", current: 43, rawhide: 45, asked: 1},
		{name: "by hand wins, field by field", rules: rules, data: "ok", byHand: openqa.Releases{Current: 50}, current: 50, rawhide: 45, asked: 1},
		{name: "all by hand: not asked", data: "ok", byHand: openqa.Releases{Current: 50, Rawhide: 51}, current: 50, rawhide: 51},
		{name: "404: the rules", rules: rules, data: "404", current: 40, rawhide: 41, asked: 1},
		{name: "garbage: the built-in rules", data: "garbage", current: builtin.Current, rawhide: builtin.Rawhide, asked: 1},
		{name: "404 and by hand", data: "404", byHand: openqa.Releases{Rawhide: 60}, current: builtin.Current, rawhide: 60, asked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, nil)
			opts := openqa.ScheduleOptions{Rules: tt.rules, Releases: tt.byHand, DryRun: true}
			data := fakefedora.NewReleaseData([]int{42, 43}, []int{44})
			if tt.data != "" {
				u := data.Start()
				defer data.Close()
				switch tt.data {
				case "404":
					data.SetBroken(http.StatusNotFound, "not found")
				case "garbage":
					data.SetBroken(http.StatusOK, "<html>maintenance</html>")
				}
				src, err := fedfind.NewReleaseSource(fedfind.ReleaseSourceOptions{URL: u})
				if err != nil {
					t.Fatal(err)
				}
				opts.ReleaseData = src
			}
			branched := rawhideCompose()
			branched.ID, branched.Version = "Fedora-44-20261122.n.0", "44"
			res, err := c.Schedule(context.Background(), branched, opts)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"CURRREL": strconv.Itoa(tt.current), "RAWREL": strconv.Itoa(tt.rawhide), "UP1REL": "43", "UP2REL": "42"}
			for _, s := range res {
				for k, v := range want {
					if s.Params[k] != v {
						t.Errorf("%s %s: %s=%s, want %s", s.Flavor, s.Arch, k, s.Params[k], v)
					}
				}
			}
			if data.Requests() != tt.asked {
				t.Errorf("release data asked %d times, want %d", data.Requests(), tt.asked)
			}
		})
	}
}

// TestScheduleTagsCandidatesImportant: once a candidate compose's jobs are
// created, its build is tagged important in the candidate group, as
// fedora_openqa does, and only once however often it is scheduled; a
// nightly, a dry run or group 0 tags nothing, and a group openQA does not
// have costs the schedule nothing but a warning.
func TestScheduleTagsCandidatesImportant(t *testing.T) {
	candidate := rawhideCompose()
	candidate.ID, candidate.Version, candidate.Label, candidate.Candidate = "Fedora-44-20261012.0", "44", "RC-1.2", true
	eln := candidate
	eln.ELN = true
	for _, tt := range []struct {
		name   string
		comp   openqa.Compose
		opts   openqa.ScheduleOptions
		runs   int
		want   []string // comments of group 1
		group7 bool     // tag in group 7, which openQA does not have
	}{
		{"candidate", candidate, openqa.ScheduleOptions{CandidateGroup: 1}, 2, []string{"tag:Fedora-44-20261012.0:important:candidate"}, false},
		{"nightly", rawhideCompose(), openqa.ScheduleOptions{CandidateGroup: 1}, 1, nil, false},
		{"ELN", eln, openqa.ScheduleOptions{CandidateGroup: 1}, 1, nil, false},
		{"dry run", candidate, openqa.ScheduleOptions{CandidateGroup: 1, DryRun: true}, 1, nil, false},
		{"group 0", candidate, openqa.ScheduleOptions{}, 1, nil, false},
		{"a group openQA does not have", candidate, openqa.ScheduleOptions{CandidateGroup: 7}, 1, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			c := newClient(t, srv, nil)
			for range tt.runs {
				if _, err := c.Schedule(context.Background(), tt.comp, tt.opts); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, cm := range srv.GroupComments(1) {
				got = append(got, cm.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("group 1's comments %q, want %q", got, tt.want)
			}
			// The group's comments are read first (to tag once); openQA's
			// 404 for a group it does not have ends the tagging there.
			if n := srv.Requests("GET", "/api/v1/groups/7/comments"); tt.group7 != (n == 1) {
				t.Errorf("group 7's comments read %d times", n)
			}
		})
	}
}
