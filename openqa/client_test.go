package openqa_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
)

func TestSignMatchesReferenceVectors(t *testing.T) {
	// Computed independently with Python's hmac module.
	tests := []struct{ target, ts, want string }{
		{"/api/v1/isos", "1700000000", "7a9fef38a6df8bb7f431dd6ac1919d73c4164ad0"},
		{"/api/v1/jobs?build=Fedora-Rawhide-20261122.n.0&limit=10", "1700000000.123456", "f48b9bc5ed73b30e4acac794462348a4b343479d"},
	}
	for _, tt := range tests {
		if got := openqa.Sign("EXAMPLESECRET", tt.target, tt.ts); got != tt.want {
			t.Errorf("Sign(%q, %q) = %s, want %s", tt.target, tt.ts, got, tt.want)
		}
	}
}

func minimalProduct() map[string]string {
	return map[string]string{
		"DISTRI": "fedora", "VERSION": "Rawhide", "FLAVOR": "Server-dvd-iso", "ARCH": "x86_64",
		"BUILD": rawhideID, "ISO_URL": rawhideLoc + "/Server/x86_64/iso/x.iso",
	}
}

func TestAuthentication(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name    string
		creds   openqa.Credentials
		clock   time.Time
		wantErr string // "" = accepted
	}{
		{name: "right key and secret are accepted", creds: openqa.Credentials{Key: testKey, Secret: testSecret}, clock: now},
		{name: "a clock ahead of the server is accepted", creds: openqa.Credentials{Key: testKey, Secret: testSecret}, clock: now.Add(time.Hour)},
		{name: "a clock 299s behind is accepted", creds: openqa.Credentials{Key: testKey, Secret: testSecret}, clock: now.Add(-299 * time.Second)},
		{name: "wrong secret", creds: openqa.Credentials{Key: testKey, Secret: "nope"}, clock: now, wantErr: "unknown error (wrong secret?)"},
		{name: "clock more than 300s behind", creds: openqa.Credentials{Key: testKey, Secret: testSecret}, clock: now.Add(-301 * time.Second), wantErr: "timestamp mismatch"},
		{name: "no api key", clock: now, wantErr: "no api key"},
		{name: "unknown key", creds: openqa.Credentials{Key: "FFFF", Secret: testSecret}, clock: now, wantErr: "Not authorized"},
		{name: "key of a user who is not an operator", creds: openqa.Credentials{Key: "user", Secret: "usersecret"}, clock: now, wantErr: "Administrator level required"},
	}
	srv := newFake(t, fakefedora.OpenQAOptions{Keys: []fakefedora.OpenQAKey{{Key: "user", Secret: "usersecret"}}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, srv, func(o *openqa.Options) {
				o.Credentials = tt.creds
				o.Now = func() time.Time { return tt.clock }
			})
			_, err := c.PostISOs(context.Background(), minimalProduct())
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ae *openqa.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if !errors.Is(err, openqa.ErrForbidden) || ae.StatusCode != 403 || !ae.JSON {
				t.Errorf("got %+v, want a 403 JSON error", ae)
			}
			if !strings.Contains(ae.Message, tt.wantErr) {
				t.Errorf("message %q, want it to contain %q", ae.Message, tt.wantErr)
			}
			if tt.creds.Empty() != strings.Contains(err.Error(), "--openqa-key") {
				t.Errorf("error %q: the hint about configuring a key should appear exactly when none is set", err)
			}
		})
	}
	t.Run("a bad signature on GET /jobs is served anonymously", func(t *testing.T) {
		c := newClient(t, srv, func(o *openqa.Options) { o.Credentials.Secret = "nope" })
		if _, err := c.BuildJobs(context.Background(), rawhideID); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEveryAttemptIsSignedFresh(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	srv.InjectFault(fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 503, Times: 2})
	var tick atomic.Int64
	base := time.Unix(1_800_000_000, 0)
	cap := &capture{next: http.DefaultTransport}
	c := newClient(t, srv, func(o *openqa.Options) {
		o.HTTP.Transport = cap
		o.Now = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }
	})
	if _, err := c.BuildJobs(context.Background(), rawhideID); err != nil {
		t.Fatal(err)
	}
	reqs := cap.all()
	if len(reqs) != 3 || c.RoundTrips() != 3 {
		t.Fatalf("%d requests, %d round trips; want 3 (two 503s retried)", len(reqs), c.RoundTrips())
	}
	seen := map[string]bool{}
	for i, r := range reqs {
		ts := r.Header.Get("X-API-Microtime")
		if !regexp.MustCompile(`^\d+$`).MatchString(ts) {
			t.Errorf("attempt %d: X-API-Microtime %q is not whole seconds", i, ts)
		}
		if seen[ts] {
			t.Errorf("attempt %d reuses timestamp %s", i, ts)
		}
		seen[ts] = true
		if got, want := r.Header.Get("X-API-Hash"), openqa.Sign(testSecret, r.URL.RequestURI(), ts); got != want {
			t.Errorf("attempt %d: hash %s, want %s over %q", i, got, want, r.URL.RequestURI())
		}
		if r.Header.Get("X-API-Key") != testKey || r.Header.Get("Accept") != "application/json" {
			t.Errorf("attempt %d: headers %v", i, r.Header)
		}
	}
}

func TestPostParametersGoInTheBody(t *testing.T) {
	srv := newFake(t, fakefedora.OpenQAOptions{})
	cap := &capture{next: http.DefaultTransport}
	c := newClient(t, srv, func(o *openqa.Options) { o.HTTP.Transport = cap })
	if _, err := c.PostISOs(context.Background(), minimalProduct()); err != nil {
		t.Fatal(err)
	}
	r := cap.all()[0]
	if r.URL.RequestURI() != "/api/v1/isos" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("sent %s with %q; want /api/v1/isos and a form body", r.URL.RequestURI(), r.Header.Get("Content-Type"))
	}
	if p := srv.Posts()[0].Params; p["FLAVOR"] != "Server-dvd-iso" || p["BUILD"] != rawhideID {
		t.Errorf("server read %v", p)
	}
}

func TestErrorShapes(t *testing.T) {
	params := func(mod func(map[string]string)) map[string]string {
		p := minimalProduct()
		mod(p)
		return p
	}
	tests := []struct {
		name      string
		params    map[string]string
		fault     *fakefedora.OpenQAFault
		is        error
		status    int
		json      bool
		message   string
		wantPosts int
		temporary bool
		notAPIErr bool
	}{
		{
			name:   "200 with error: no products found",
			params: params(func(p map[string]string) { p["FLAVOR"] = "Bogus-iso" }),
			is:     openqa.ErrNoJobs, status: 200, json: true, wantPosts: 1,
			message: "no products found for fedora-Bogus-iso-x86_64",
		},
		{
			name:   "200 with count 0: no template left after a TEST filter",
			params: params(func(p map[string]string) { p["TEST"] = "no_such_test" }),
			is:     openqa.ErrNoJobs, status: 200, json: true, wantPosts: 1,
			message: "no jobs created (count 0)",
		},
		{
			name:   "400 text/plain: missing parameters",
			params: params(func(p map[string]string) { delete(p, "FLAVOR"); delete(p, "ARCH") }),
			is:     openqa.ErrBadRequest, status: 400, wantPosts: 1,
			message: "Error: missing parameters: FLAVOR ARCH",
		},
		{
			name:   "403 text/plain: asset host not passlisted",
			params: params(func(p map[string]string) { p["ISO_URL"] = "https://evil.example/x.iso" }),
			is:     openqa.ErrForbidden, status: 403, wantPosts: 1,
			message: "Asset download requested from non-passlisted host evil.example.",
		},
		{
			name:   "5xx on a POST is not retried by the HTTP client",
			params: minimalProduct(),
			fault:  &fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/isos", Status: 502},
			status: 502, wantPosts: 1, temporary: true, message: "injected fault: HTTP 502",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{DownloadDomains: []string{"fedoraproject.org"}})
			if tt.fault != nil {
				srv.InjectFault(*tt.fault)
			}
			c := newClient(t, srv, nil)
			_, err := c.PostISOs(context.Background(), tt.params)
			var ae *openqa.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an *APIError", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if ae.StatusCode != tt.status || ae.JSON != tt.json || ae.Message != tt.message || ae.Temporary() != tt.temporary {
				t.Errorf("got status %d json %v temporary %v message %q; want %d %v %v %q",
					ae.StatusCode, ae.JSON, ae.Temporary(), ae.Message, tt.status, tt.json, tt.temporary, tt.message)
			}
			if n := srv.Requests("POST", "/api/v1/isos"); n != tt.wantPosts {
				t.Errorf("%d POSTs reached the server, want %d", n, tt.wantPosts)
			}
		})
	}
}

func TestReadsRetryServerErrors(t *testing.T) {
	tests := []struct {
		name     string
		failures int
		wantErr  bool
		wantReqs int
	}{
		{"two 503s are retried away", 2, false, 3},
		{"503s beyond the retry budget surface as a temporary APIError", 10, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t, fakefedora.OpenQAOptions{})
			srv.InjectFault(fakefedora.OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: 503, Times: tt.failures})
			c := newClient(t, srv, nil)
			_, err := c.BuildJobs(context.Background(), rawhideID)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var ae *openqa.APIError
			if tt.wantErr && (!errors.As(err, &ae) || ae.StatusCode != 503 || !ae.Temporary()) {
				t.Errorf("err = %v, want a 503 APIError", err)
			}
			if n := srv.Requests("GET", "/api/v1/jobs"); n != tt.wantReqs {
				t.Errorf("%d requests, want %d", n, tt.wantReqs)
			}
		})
	}
}

func TestCredentialsAreNeverPrinted(t *testing.T) {
	c := openqa.Credentials{Key: "ABCDEF0123456789", Secret: "s3cr3t-value"}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "creds", c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "creds", c)
	for _, s := range []string{c.String(), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
		if strings.Contains(s, c.Secret) || strings.Contains(s, c.Key) {
			t.Errorf("leaks: %s", s)
		}
	}
	if !strings.Contains(c.String(), "ABCD") {
		t.Errorf("String() = %s; the key's start helps tell keys apart", c)
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("  filesecret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name              string
		key, secret, file string
		env               map[string]string
		want              openqa.Credentials
		wantErr           bool
	}{
		{name: "given values", key: "k", secret: "s", want: openqa.Credentials{Key: "k", Secret: "s"}},
		{name: "secret from a file, trimmed", key: "k", file: secretFile, want: openqa.Credentials{Key: "k", Secret: "filesecret"}},
		{name: "given secret wins over the file", key: "k", secret: "s", file: secretFile, want: openqa.Credentials{Key: "k", Secret: "s"}},
		{name: "openQA client environment", env: map[string]string{"OPENQA_API_KEY": "ek", "OPENQA_API_SECRET": "es"}, want: openqa.Credentials{Key: "ek", Secret: "es"}},
		{name: "none is anonymous", want: openqa.Credentials{}},
		{name: "key without secret", key: "k", wantErr: true},
		{name: "missing file", key: "k", file: filepath.Join(dir, "nope"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openqa.LoadCredentials(tt.key, tt.secret, tt.file, env(tt.env))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got.Key+"/"+got.Secret, err, tt.want.Key+"/"+tt.want.Secret, tt.wantErr)
			}
		})
	}
}

func TestNewRejectsBadBaseURLs(t *testing.T) {
	for _, u := range []string{"ftp://x", "openqa.example", "https://host/prefix"} {
		if _, err := openqa.New(openqa.Options{BaseURL: u}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	c, err := openqa.New(openqa.Options{})
	if err != nil || c.BaseURL() != openqa.DefaultBaseURL {
		t.Fatalf("default: %v %v", c, err)
	}
	if got := c.JobURL(42); got != "https://openqa.fedoraproject.org/tests/42" {
		t.Errorf("JobURL = %s", got)
	}
	if got := c.OverviewURL("Rawhide", rawhideID); got != "https://openqa.fedoraproject.org/tests/overview?distri=fedora&version=Rawhide&build=Fedora-Rawhide-20261122.n.0" {
		t.Errorf("OverviewURL = %s", got)
	}
}

// TestRestart restarts a job once: a second restart, and a restart whose
// answer was lost, both find the clone instead of cloning again.
func TestRestart(t *testing.T) {
	srv := fakefedora.NewOpenQA(fakefedora.OpenQAOptions{Keys: []fakefedora.OpenQAKey{{Key: "0123456789ABCDEF", Secret: "fedcba9876543210", Operator: true}}})
	defer srv.Close()
	c, err := openqa.New(openqa.Options{BaseURL: srv.URL(), Credentials: openqa.Credentials{Key: "0123456789ABCDEF", Secret: "fedcba9876543210"},
		HTTP: httpclient.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}, RecheckDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv.SetOutcome("Fedora-Rawhide-20261122.n.0", "", "", "install_default", "failed", "passed")
	srv.SetFailedModule("install_default", "_do_install_and_reboot")
	if _, err := c.Schedule(ctx, openqa.Compose{ID: "Fedora-Rawhide-20261122.n.0", Version: "Rawhide", HasGenericTree: true,
		Images: []fedfind.Image{{Variant: "Server", Subvariant: "Server", Type: "dvd", Format: "iso", Arch: "x86_64",
			Path: "Server/x86_64/iso/x.iso", URL: "https://kojipkgs.fedoraproject.org/compose/x.iso"}}}, openqa.ScheduleOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Settle()
	var failed int64
	for _, j := range srv.Jobs() {
		if j.Test == "install_default" && j.Result == "failed" {
			failed = j.ID
		}
	}
	if failed == 0 {
		t.Fatal("no failed job")
	}
	mods, err := c.FailedModules(ctx, failed)
	if err != nil || len(mods) != 1 || mods[0] != "_do_install_and_reboot" {
		t.Errorf("failed modules %v, %v", mods, err)
	}
	clone, cloned, err := c.Restart(ctx, failed)
	if err != nil || !cloned || clone == 0 {
		t.Fatalf("restart: %d %v %v", clone, cloned, err)
	}
	again, cloned, err := c.Restart(ctx, failed)
	if err != nil || cloned || again != clone {
		t.Errorf("second restart: %d %v %v, want the clone %d, not cloned again", again, cloned, err, clone)
	}
	// The answer is lost (the connection drops after openQA cloned): the
	// job is read again and its clone is the answer.
	srv.Settle()
	srv.InjectFault(fakefedora.OpenQAFault{Method: "POST", Path: "/api/v1/jobs/", AfterEffect: true, Status: 502})
	third, cloned, err := c.Restart(ctx, clone)
	if err != nil || third == 0 || !cloned {
		t.Errorf("restart with a lost answer: %d %v %v", third, cloned, err)
	}
	if n := srv.Requests("POST", "/api/v1/jobs/"+strconv.FormatInt(clone, 10)+"/restart"); n != 1 {
		t.Errorf("the restart was posted %d times, want once", n)
	}
	if _, _, err := c.Restart(ctx, 999999); !errors.Is(err, openqa.ErrNotFound) {
		t.Errorf("restart of no job: %v", err)
	}
}
