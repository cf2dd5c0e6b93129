package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/triage"
	"github.com/composeci/composeci/web"
)

func TestTriageAPI(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	known := triage.FileRegistry{Dir: t.TempDir(), Now: func() time.Time { return now }}
	var asked []triage.Request
	rerun := func(_ context.Context, req triage.Request) (triage.Result, error) {
		asked = append(asked, req)
		if req.Scope == "bogus" {
			return triage.Result{}, fedfind.ErrInvalidInput
		}
		return triage.Result{Restarted: []triage.Restarted{{JobID: 7, RerunJobID: 9, Test: "install_default"}}}, nil
	}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: &memWorkflows{}, APIToken: "s3cret",
		Known: known, Rerun: rerun, Now: func() time.Time { return now }}))
	defer srv.Close()
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	steps := []struct {
		method, path, token, body string
		code                      int
		contains                  string
	}{
		{"GET", "/api/v1/known-issues", "", "", 200, "[]"},
		{"POST", "/api/v1/known-issues", "", `{"test": "install_default", "reason": "r"}`, 401, ""},
		{"POST", "/api/v1/known-issues", "wrong", `{"test": "install_default", "reason": "r"}`, 401, ""},
		{"POST", "/api/v1/known-issues", "s3cret", `{"test": "install_default", "arch": "aarch64", "reason": "firmware", "bug": "https://bugzilla.redhat.com/1", "expires": "720h", "by": "alice"}`, 201, `"created_by": "alice"`},
		{"POST", "/api/v1/known-issues", "s3cret", `{"test": "x", "reason": "old", "expires": "2026-01-01"}`, 201, `"expired": true`},
		{"POST", "/api/v1/known-issues", "s3cret", `{"reason": "no test"}`, 400, "needs the test"},
		{"POST", "/api/v1/known-issues", "s3cret", `{"test": "t", "reason": "r", "bug": "javascript:x"}`, 400, "bug"},
		{"POST", "/api/v1/known-issues", "s3cret", `{"test": "t", "reason": "r", "colour": "red"}`, 400, "unknown field"},
		{"POST", "/api/v1/known-issues", "s3cret", `{"test": "t", "reason": "r", "expires": "someday"}`, 400, "expir"},
		{"GET", "/api/v1/known-issues", "", "", 200, `"expires": "2026-12-25T12:00:00Z"`},
		{"DELETE", "/api/v1/known-issues/1", "", "", 401, ""},
		{"DELETE", "/api/v1/known-issues/1?by=bob", "s3cret", "", 200, `"reason": "firmware"`},
		{"DELETE", "/api/v1/known-issues/1", "s3cret", "", 404, "no such known issue"},
		{"DELETE", "/api/v1/known-issues/one", "s3cret", "", 400, "want its number"},
		{"POST", "/api/v1/composes/Fedora-Rawhide-20261122.n.0/rerun", "", `{"scope": "failed"}`, 401, ""},
		{"POST", "/api/v1/composes/Fedora-Rawhide-20261122.n.0/rerun", "s3cret", `{"scope": "failed", "reason": "mirror was down", "by": "carol"}`, 200, `"rerun_job_id": 9`},
		{"POST", "/api/v1/composes/Fedora-Rawhide-20261122.n.0/rerun", "s3cret", `{"scope": "bogus"}`, 400, ""},
		{"POST", "/api/v1/composes/..%2Fetc/rerun", "s3cret", `{"scope": "failed"}`, 400, "not a compose ID"},
		{"GET", "/api/v1/known-issues/history", "", "", 200, `"action": "remove"`},
		{"PUT", "/api/v1/known-issues", "s3cret", "", 405, ""},
	}
	for _, s := range steps {
		code, body := do(s.method, s.path, s.token, s.body)
		if code != s.code || !strings.Contains(body, s.contains) {
			t.Errorf("%s %s %s = %d %q, want %d containing %q", s.method, s.path, s.body, code, body, s.code, s.contains)
		}
	}
	h, _ := known.History(context.Background())
	if len(h) != 3 || h[2].Action != "remove" || h[2].By != "bob" {
		t.Errorf("history %+v", h)
	}
	if len(asked) != 2 || asked[0].By != "carol" || asked[0].Reason != "mirror was down" || asked[0].ComposeID != "Fedora-Rawhide-20261122.n.0" {
		t.Errorf("re-runs asked %+v", asked)
	}
}

func TestTriageAPIWithout(t *testing.T) {
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: &memWorkflows{}, APIToken: "s3cret"}))
	defer srv.Close()
	for _, p := range []struct{ method, path string }{{"GET", "/api/v1/known-issues"}, {"POST", "/api/v1/composes/Fedora-Rawhide-20261122.n.0/rerun"}} {
		req, _ := http.NewRequest(p.method, srv.URL+p.path, strings.NewReader(`{"scope": "failed"}`))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s without the store = %d, want 404", p.method, p.path, resp.StatusCode)
		}
	}
}
