package openqa_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
)

// jobsServer answers an openQA client from memory: the first GET
// /api/v1/jobs gets page (with content type ctype and, if set, a Link
// header), later ones an empty list; GET /api/v1/jobs/N (following a
// clone) a finished job N of its own scenario.
type jobsServer struct {
	page        []byte
	ctype, link string
	status      int

	mu      sync.Mutex
	pages   int
	fetched map[int64]bool
}

func (s *jobsServer) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}, Request: r}
	var body []byte
	switch p := r.URL.Path; {
	case p == "/api/v1/jobs" && s.pages == 0:
		s.pages++
		resp.StatusCode, body = s.status, s.page
		resp.Header.Set("Content-Type", s.ctype)
		if s.link != "" {
			resp.Header.Set("Link", s.link)
		}
	case p == "/api/v1/jobs":
		s.pages++
		body = []byte(`{"jobs": []}`)
	case strings.HasPrefix(p, "/api/v1/jobs/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(p, "/api/v1/jobs/"), 10, 64)
		if err != nil {
			resp.StatusCode, body = http.StatusNotFound, []byte(`{"error": "no such job"}`)
			break
		}
		s.fetched[id] = true
		body, _ = json.Marshal(map[string]any{"job": map[string]any{"id": id, "test": "clone" + strconv.FormatInt(id, 10),
			"state": "done", "result": "passed", "settings": map[string]string{}}})
	default:
		resp.StatusCode, body = http.StatusNotFound, []byte("not found")
		resp.Header.Set("Content-Type", "text/plain")
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	return resp, nil
}

// FuzzResults feeds arbitrary answers of GET /api/v1/jobs — body, status,
// content type, Link header — to Results, the reading of a build's jobs
// that decides whether a compose's tests are done and how they went.
// Whatever the answer, it gives results or an error, never both; results
// hold every job once, each scenario once, in their documented order, with
// counts that add up, and the current jobs reduced again are themselves.
func FuzzResults(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, 200, "application/json", "")
		}
	}
	for _, s := range []string{
		`{"jobs": [{"id": 3, "test": "install_default", "state": "done", "result": "failed", "clone_id": 5, "settings": {"FLAVOR": "Server-dvd-iso", "ARCH": "x86_64", "MACHINE": "64bit", "BUILD": "B", "VERSION": "Rawhide"}},` +
			`{"id": 5, "test": "install_default", "state": "running", "result": "none", "origin_id": 3, "settings": {"FLAVOR": "Server-dvd-iso", "ARCH": "x86_64", "MACHINE": "64bit", "BUILD": "B", "VERSION": "Rawhide"}},` +
			`{"id": 4, "test": "base_selinux", "state": "done", "result": "softfailed", "settings": {"FLAVOR": "universal", "ARCH": "aarch64", "MACHINE": "aarch64"}},` +
			`{"id": 9, "test": "base_selinux", "state": "cancelled", "result": "user_cancelled", "clone_id": 77, "settings": {"FLAVOR": "universal", "ARCH": "aarch64", "MACHINE": "aarch64"}}]}`,
		`{"jobs": [{"id": 1, "clone_id": 2}, {"id": 2, "clone_id": 1}, {"id": 1, "test": "dup"}]}`,
		`{"jobs": []}`,
		`{"jobs": null}`,
		`{"error": "no such build"}`,
		`{"jobs": [{"id": "7"}]}`,
		`{"jobs": [{"id": 1, "settings": {"ARCH": 64}}]}`,
		`[]`,
	} {
		f.Add([]byte(s), 200, "application/json", "")
	}
	f.Add([]byte(`{"jobs": [{"id": 1, "state": "done", "result": "passed", "settings": {"VERSION": "44"}}]}`), 200, "application/json; charset=utf-8",
		`<https://openqa.example/api/v1/jobs?build=B&offset=1>; rel="next"`)
	f.Add([]byte(`<html>Service Unavailable</html>`), 503, "text/html", "")
	f.Add([]byte(`{"error": "Forbidden", "error_status": 403}`), 403, "application/json", "")
	f.Fuzz(func(t *testing.T, page []byte, status int, ctype, link string) {
		if status < 100 || status > 999 {
			status = 200
		}
		srv := &jobsServer{page: page, status: status, ctype: ctype, link: link, fetched: map[int64]bool{}}
		c, err := openqa.New(openqa.Options{BaseURL: "https://openqa.example", PageSize: 2,
			HTTP: httpclient.Options{Transport: srv, RetryMax: -1}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Results(context.Background(), "B")
		if err != nil {
			if r != nil {
				t.Fatalf("both results %+v and error %v", r, err)
			}
			return
		}
		if r == nil || r.Build != "B" || r.Superseded < 0 {
			t.Fatalf("results %+v", r)
		}
		// Every job known — the listing's, once each, and the clones
		// fetched — is current or superseded.
		var listing struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		if err := json.Unmarshal(page, &listing); err != nil {
			t.Fatalf("results from a page that does not decode: %v", err)
		}
		known := map[int64]bool{}
		for _, j := range listing.Jobs {
			known[j.ID] = true
		}
		for id := range srv.fetched {
			known[id] = true
		}
		if len(r.Jobs)+r.Superseded != len(known) {
			t.Fatalf("%d current + %d superseded jobs of %d", len(r.Jobs), r.Superseded, len(known))
		}
		ids, scenarios := map[int64]bool{}, map[string]bool{}
		cloned := false
		for i, j := range r.Jobs {
			if ids[j.ID] || scenarios[j.Scenario()] || !known[j.ID] {
				t.Fatalf("job %d (%s) twice or unknown", j.ID, j.Scenario())
			}
			ids[j.ID], scenarios[j.Scenario()] = true, true
			if j.URL != c.JobURL(j.ID) {
				t.Fatalf("job %d: URL %q", j.ID, j.URL)
			}
			if i > 0 {
				p := r.Jobs[i-1]
				if cmp.Or(cmp.Compare(p.Flavor(), j.Flavor()), cmp.Compare(p.Arch(), j.Arch()), cmp.Compare(p.Test, j.Test),
					cmp.Compare(p.Machine(), j.Machine()), cmp.Compare(p.ID, j.ID)) >= 0 {
					t.Fatalf("jobs %d and %d out of order", p.ID, j.ID)
				}
			}
		}
		for _, j := range r.Jobs {
			cloned = cloned || (j.CloneID != 0 && ids[j.CloneID])
		}
		s := r.Summary
		sum := 0
		for _, n := range s.ByResult {
			sum += n
		}
		if s.Total != len(r.Jobs) || s.Pending+s.OK+s.NotOK != s.Total || sum != s.OK+s.NotOK || s.AllFinal != (s.Total > 0 && s.Pending == 0) {
			t.Fatalf("summary %+v of %d jobs", s, len(r.Jobs))
		}
		if (r.Version == "") != (r.OverviewURL == "") {
			t.Fatalf("version %q, overview %q", r.Version, r.OverviewURL)
		}
		if !cloned {
			again, n := openqa.Latest(r.Jobs)
			if n != 0 || len(again) != len(r.Jobs) {
				t.Fatalf("current jobs reduce again to %d, %d superseded", len(again), n)
			}
			for i := range again {
				if again[i].ID != r.Jobs[i].ID {
					t.Fatalf("current jobs reduce again to others: %d for %d", again[i].ID, r.Jobs[i].ID)
				}
			}
		}
	})
}
