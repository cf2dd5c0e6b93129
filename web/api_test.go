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

	"github.com/composeci/composeci/listener"
	"github.com/composeci/composeci/web"
)

// memWorkflows is an in-memory stand-in for the pipeline.
type memWorkflows struct {
	mu        sync.Mutex
	wfs       map[string]listener.Workflow
	submitted []listener.Event
	lastEvent time.Time
	statsErr  error
}

func (m *memWorkflows) List(context.Context) ([]listener.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []listener.Workflow
	for _, w := range m.wfs {
		out = append(out, w)
	}
	return out, nil
}

func (m *memWorkflows) Get(_ context.Context, id string) (listener.Workflow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.wfs[id]
	if !ok {
		return w, fmt.Errorf("%s: %w", id, listener.ErrNotFound)
	}
	return w, nil
}

func (m *memWorkflows) Submit(_ context.Context, e listener.Event) error {
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
	if w.State != listener.StateFailed {
		return fmt.Errorf("%s: %w", id, listener.ErrNotRetryable)
	}
	return nil
}

func (m *memWorkflows) Stats(context.Context) (listener.Stats, error) {
	if m.statsErr != nil {
		return listener.Stats{}, m.statsErr
	}
	now := time.Now()
	return listener.Stats{Workflows: map[string]int{"active": len(m.wfs)}, LastEvent: m.lastEvent, Since: now.Add(-time.Hour), Now: now}, nil
}

func TestAPI(t *testing.T) {
	reportsDir := t.TempDir()
	os.MkdirAll(filepath.Join(reportsDir, "rawhide", "Fedora-Rawhide-20261122.n.0"), 0o755)
	os.WriteFile(filepath.Join(reportsDir, "rawhide", "Fedora-Rawhide-20261122.n.0", "report.txt"), []byte("the report\n"), 0o644)
	m := &memWorkflows{lastEvent: time.Now(), wfs: map[string]listener.Workflow{
		"Fedora-Rawhide-20261122.n.0": {ComposeID: "Fedora-Rawhide-20261122.n.0", State: listener.StateActive, Stage: listener.StageAwaitResults},
		"Fedora-44-20261122.n.0":      {ComposeID: "Fedora-44-20261122.n.0", State: listener.StateFailed, Stage: listener.StageSchedule},
	}}
	srv := httptest.NewServer(web.NewHandler(web.Options{Workflows: m, ReportsDir: reportsDir, MaxSilence: time.Hour}))
	defer srv.Close()
	do := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
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
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20261122.n.0", 200, `"stage": "await-results"`},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20200101.n.0", 404, "no workflow"},
		{"GET", "/api/v1/workflows/..%2F..%2Fetc", 400, "not a compose ID"},
		{"GET", "/api/v1/workflows/Fedora-Rawhide-20261122.nightly.0", 200, `"compose_id": "Fedora-Rawhide-20261122.n.0"`},
		{"POST", "/api/v1/workflows/Fedora-Rawhide-20261123.n.0", 202, "submitted"},
		{"POST", "/api/v1/workflows/bogus", 400, "not a compose ID"},
		{"POST", "/api/v1/workflows/Fedora-44-20261122.n.0/retry", 202, "retrying"},
		{"POST", "/api/v1/workflows/Fedora-Rawhide-20261122.n.0/retry", 409, "did not fail"},
		{"GET", "/api/v1/stats", 200, `"workflows"`},
		{"GET", "/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.txt", 200, "the report"},
		{"GET", "/reports/../../etc/passwd", 404, ""},
		{"DELETE", "/api/v1/workflows/Fedora-Rawhide-20261122.n.0", 405, ""},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path)
		if code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, code, body, tt.code, tt.contains)
		}
	}
	if len(m.submitted) != 1 || m.submitted[0].Source != listener.SourceCLI || m.submitted[0].ComposeID != "Fedora-Rawhide-20261123.n.0" {
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
