package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/composeci/composeci/listener/event"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
	"github.com/composeci/composeci/reports/reportstest"
	"github.com/composeci/composeci/web"
)

// memWorkflows is an in-memory stand-in for the engine, for the HTTP
// layer's own cases (the engine itself is tested against real NATS).
type memWorkflows struct {
	mu        sync.Mutex
	wfs       map[string]workflow.Workflow
	results   []workflow.Result
	submitted []event.Event
	lastEvent time.Time
	statsErr  error
}

func (m *memWorkflows) LatestResults(_ context.Context, limit int, keep func(workflow.Workflow) bool) ([]workflow.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []workflow.Result
	for i := len(m.results) - 1; i >= 0 && len(out) < limit; i-- {
		if keep == nil || keep(m.results[i].Workflow) {
			out = append(out, m.results[i])
		}
	}
	return out, nil
}

func (m *memWorkflows) ResultsAfter(_ context.Context, after uint64, limit int, keep func(workflow.Workflow) bool) ([]workflow.Result, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []workflow.Result
	for _, r := range m.results {
		if r.Seq <= after || (keep != nil && !keep(r.Workflow)) {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, r)
	}
	return out, false, nil
}

func (m *memWorkflows) List(context.Context) ([]workflow.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []workflow.Workflow
	for _, w := range m.wfs {
		out = append(out, w)
	}
	return out, nil
}

func (m *memWorkflows) Get(_ context.Context, id string) (workflow.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[id]
	if !ok {
		return w, fmt.Errorf("%s: %w", id, workflow.ErrNotFound)
	}
	return w, nil
}

func (m *memWorkflows) Submit(_ context.Context, e event.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.submitted = append(m.submitted, e)
	return nil
}

func (m *memWorkflows) Retry(_ context.Context, id string) error {
	w, err := m.Get(context.Background(), id)
	if err != nil {
		return err
	}
	if w.State != workflow.StateFailed {
		return fmt.Errorf("%s: %w", id, workflow.ErrNotRetryable)
	}
	return nil
}

func (m *memWorkflows) Stats(context.Context) (workflow.Stats, error) {
	if m.statsErr != nil {
		return workflow.Stats{}, m.statsErr
	}
	now := time.Now()
	return workflow.Stats{Workflows: map[string]int{"active": len(m.wfs)}, LastEvent: m.lastEvent, Since: now.Add(-time.Hour), Now: now}, nil
}

func TestAPI(t *testing.T) {
	reportsDir := t.TempDir()
	// A real report in the archive (the example compose is
	// Fedora-Rawhide-20261122.n.0), and beside it what must never be
	// served: the mail ledger (it lists recipients), stray files, locks.
	complete, noOpenQA, _ := reportstest.Reports(time.Now())
	archive := reports.Archive{Dir: reportsDir}
	if _, err := archive.Write(context.Background(), complete); err != nil {
		t.Fatal(err)
	}
	older, err := archive.Write(context.Background(), noOpenQA) // a version that knows less
	if err != nil {
		t.Fatal(err)
	}
	compose := filepath.Join(reportsDir, "rawhide", "Fedora-Rawhide-20261122.n.0")
	for name, content := range map[string]string{
		"mail.json": `{"sent": [{"recipients": ["secret-list@example.org"]}]}`, "notes.txt": "not a report",
	} {
		os.WriteFile(filepath.Join(compose, name), []byte(content), 0o644)
	}
	os.WriteFile(filepath.Join(reportsDir, "rawhide", ".index.lock"), nil, 0o644)
	os.MkdirAll(filepath.Join(reportsDir, "rawhide", "not-a-compose"), 0o755)
	m := &memWorkflows{lastEvent: time.Now(), wfs: map[string]workflow.Workflow{
		"Fedora-Rawhide-20261122.n.0": {ComposeID: "Fedora-Rawhide-20261122.n.0", State: workflow.StateDone, Stage: "report",
			Data: map[string]string{"report": "rawhide/Fedora-Rawhide-20261122.n.0"}},
		"Fedora-Rawhide-20261123.n.0": {ComposeID: "Fedora-Rawhide-20261123.n.0", State: workflow.StateActive, Stage: "await-results"},
		"Fedora-44-20261122.n.0":      {ComposeID: "Fedora-44-20261122.n.0", State: workflow.StateFailed, Stage: "schedule"},
	}}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: m, ReportsDir: reportsDir, MaxSilence: time.Hour, APIToken: "s3cret"}))
	defer srv.Close()
	do := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if method == http.MethodPost {
			req.Header.Set("Authorization", "Bearer s3cret")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		method, path string
		code         int
		contains     string
	}{
		{"GET", "/healthz", 200, `"ok": true`},
		{"GET", "/api/v1/workflows", 200, `"Fedora-44-20261122.n.0"`},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20261123.n.0", 200, `"stage": "await-results"`},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20261122.n.0", 200, `"report_html": "/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.html"`},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20200101.n.0", 404, "no workflow"},
		{"GET", "/api/v1/workflows/..%2F..%2Fetc", 400, "not a compose ID"},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20261122.nightly.0", 200, `"compose_id": "Fedora-Rawhide-20261122.n.0"`},
		{"POST", "/api/v1/workflows/Fedora-Rawhide-20261123.n.0", 202, "submitted"},
		{"POST", "/api/v1/workflows/bogus", 400, "not a compose ID"},
		{"POST", "/api/v1/workflows/Fedora-44-20261122.n.0/retry", 202, "retrying"},
		{"POST", "/api/v1/workflows/Fedora-Rawhide-20261123.n.0/retry", 409, "did not fail"},
		{"GET", "/api/v1/stats", 200, `"workflows"`},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.txt", 200, "compose check report"},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.json", 200, `"compose_id": "Fedora-Rawhide-20261122.n.0"`},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.html", 200, "<html"},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/v/", 200, `href="` + older.Version + `/"`},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/v/" + older.Version + "/report.txt", 200, "left out"},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/v/" + strings.Repeat("0", 32) + "/report.txt", 404, ""},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/v/..%2F..%2Fmail.json/report.txt", 404, ""},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/versions.json", 404, ""},
		{"GET", "/reports/rawhide/index.json", 200, `"release": "rawhide"`},
		{"GET", "/reports/", 200, `href="rawhide/"`},
		{"GET", "/reports/rawhide/", 200, `href="Fedora-Rawhide-20261122.n.0/"`},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/", 200, `href="report.html"`},
		// Internals are not served, nor listed.
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/mail.json", 404, ""},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/notes.txt", 404, ""},
		{"GET", "/reports/rawhide/.index.lock", 404, ""},
		{"GET", "/reports/rawhide/not-a-compose/", 404, ""},
		{"GET", "/reports/44/Fedora-Rawhide-20261122.n.0/report.txt", 404, ""},
		{"GET", "/reports/../../etc/passwd", 404, ""},
		{"GET", "/reports/rawhide/..%2F..%2F..%2Fetc%2Fpasswd", 404, ""},
		{"DELETE", "/api/v1/workflows/Fedora-Rawhide-20261122.n.0", 405, ""},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.contains)
		}
		for _, secret := range []string{"secret-list@", "mail.json", ".index.lock", "notes.txt", "not-a-compose", reportsDir} {
			if strings.Contains(body, secret) {
				t.Errorf("%s %s shows %q:\n%s", tt.method, tt.path, secret, body)
			}
		}
	}
	if len(m.submitted) != 1 || m.submitted[0].Source != event.SourceCLI || m.submitted[0].ComposeID != "Fedora-Rawhide-20261123.n.0" {
		t.Errorf("submitted %+v", m.submitted)
	}
}

func TestHealthFails(t *testing.T) {
	for name, tc := range map[string]struct {
		m      *memWorkflows
		checks []web.Check
		want   string
	}{
		"silent bus":     {&memWorkflows{lastEvent: time.Now().Add(-3 * time.Hour)}, nil, "no events"},
		"pipeline error": {&memWorkflows{statsErr: errors.New("nats down")}, nil, "nats down"},
		"amqp down":      {&memWorkflows{lastEvent: time.Now()}, []web.Check{{Name: "amqp", Fn: func(context.Context) error { return errors.New("not connected") }}}, "not connected"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: tc.m, MaxSilence: time.Hour, Checks: tc.checks}))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				OK bool `json:"ok"`
			}
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &body)
			if resp.StatusCode != 503 || body.OK || !strings.Contains(string(b), tc.want) {
				t.Errorf("%d %s", resp.StatusCode, b)
			}
		})
	}
}
