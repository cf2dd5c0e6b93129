package fakefedora

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGreenwaveAnswers speaks to the fake Greenwave with raw HTTP: what
// it answers each kind of request, as docs/protocols.md, section (j),
// says Greenwave does.
func TestGreenwaveAnswers(t *testing.T) {
	g := NewGreenwave()
	defer g.Close()
	const id = "Fedora-Rawhide-20261122.n.0"
	g.SetDecision("compose", id, "rawhide_compose_sync_to_mirrors", GreenwaveDecision{Requirements: []GreenwaveRequirement{
		{Testcase: "compose.install_default", Scenario: "fedora.Everything-boot-iso.x86_64.64bit", Outcome: GreenwavePassed, ResultID: 1},
		{Testcase: "compose.base_selinux", Scenario: "fedora.Server-dvd-iso.x86_64.64bit", Outcome: GreenwaveFailed, ResultID: 2},
	}})
	full := `{"decision_context":"rawhide_compose_sync_to_mirrors","product_version":"fedora-rawhide","subject_type":"compose","subject_identifier":"` + id + `","verbose":false}`
	for _, tt := range []struct {
		name, method, path, ctype, body string
		status                          int
		message                         string // the error body's, when not 200
	}{
		{"a decision", "POST", GreenwaveDecisionPath, "application/json", full, 200, ""},
		{"no policy for another compose", "POST", GreenwaveDecisionPath, "application/json", strings.Replace(full, id, "Fedora-Rawhide-20261123.n.0", 1), 404,
			"Found no applicable policies for compose subjects at gating point(s) rawhide_compose_sync_to_mirrors in fedora-rawhide"},
		{"any product version, when the policy names none", "POST", GreenwaveDecisionPath, "application/json", strings.Replace(full, "fedora-rawhide", "fedora-44", 1), 200, ""},
		{"no product version", "POST", GreenwaveDecisionPath, "application/json", strings.Replace(full, "fedora-rawhide", "", 1), 400, "Missing required product version"},
		{"no decision context", "POST", GreenwaveDecisionPath, "application/json", `{"product_version":"fedora-rawhide","subject_type":"compose","subject_identifier":"x"}`, 400,
			"Either decision_context or rules is required."},
		{"no subject type", "POST", GreenwaveDecisionPath, "application/json", `{"decision_context":"c","product_version":"fedora-rawhide","subject_identifier":"x"}`, 400,
			`Missing required "subject_type" parameter`},
		{"verbose not a bool", "POST", GreenwaveDecisionPath, "application/json", strings.Replace(full, "false", `"no"`, 1), 400, "Invalid verbose flag, must be a bool"},
		{"not JSON", "POST", GreenwaveDecisionPath, "application/json", "{", 400, "Failed to decode JSON object"},
		{"not a JSON content type", "POST", GreenwaveDecisionPath, "text/plain", full, 415, "No JSON payload in request"},
		{"GET", "GET", GreenwaveDecisionPath, "", "", 405, "The method is not allowed for the requested URL."},
		{"another path", "POST", "/api/v1.0/decisions", "application/json", full, 404, "The requested URL was not found on the server."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, g.URL()+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("answer is not JSON: %s", b)
			}
			if resp.StatusCode != tt.status || (tt.message != "" && doc["message"] != tt.message) {
				t.Errorf("HTTP %d %s; want %d %q", resp.StatusCode, b, tt.status, tt.message)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	// The decision, written as Greenwave writes it.
	req, _ := http.NewRequest("POST", g.URL()+GreenwaveDecisionPath, strings.NewReader(full))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Satisfied   bool             `json:"policies_satisfied"`
		Summary     string           `json:"summary"`
		Policies    []string         `json:"applicable_policies"`
		SatRaw      []map[string]any `json:"satisfied_requirements"`
		UnsatRaw    []map[string]any `json:"unsatisfied_requirements"`
		Unexpected  any              `json:"results"`
		Unexpected2 any              `json:"waivers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Satisfied || d.Summary != "1 of 2 required tests failed" || len(d.Policies) != 1 || len(d.SatRaw) != 1 || len(d.UnsatRaw) != 1 {
		t.Fatalf("decision %+v", d)
	}
	if d.Unexpected != nil || d.Unexpected2 != nil {
		t.Error("results or waivers listed without verbose")
	}
	u := d.UnsatRaw[0]
	item, _ := u["item"].(map[string]any)
	if u["type"] != "test-result-failed" || u["testcase"] != "compose.base_selinux" || u["scenario"] != "fedora.Server-dvd-iso.x86_64.64bit" ||
		u["result_id"] != float64(2) || u["subject_identifier"] != id || item["identifier"] != id {
		t.Errorf("unsatisfied requirement %v", u)
	}
	if _, ok := d.SatRaw[0]["item"]; ok {
		t.Errorf("a satisfied requirement carries item: %v", d.SatRaw[0])
	}
	if n := g.Decisions(); n != 11 {
		t.Errorf("counted %d decision requests, want 11", n)
	}
}
