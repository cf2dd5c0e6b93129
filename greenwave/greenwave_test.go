package greenwave_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/composeci/composeci/greenwave"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

const (
	compose = "Fedora-Rawhide-20261122.n.0"
	dvd     = "fedora.Server-dvd-iso.x86_64.64bit"
	boot    = "fedora.Everything-boot-iso.x86_64.64bit"
)

// fast retries, a few of them.
var fast = httpclient.Options{RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}

func newClient(t *testing.T, base string) *greenwave.Client {
	t.Helper()
	c, err := greenwave.New(greenwave.Options{BaseURL: base, HTTP: fast})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDecide asks the fake Greenwave over real HTTP for each kind of
// answer a compose may get.
func TestDecide(t *testing.T) {
	passed := func(tc, sc string, id int64) fakefedora.GreenwaveRequirement {
		return fakefedora.GreenwaveRequirement{Testcase: tc, Scenario: sc, Outcome: fakefedora.GreenwavePassed, ResultID: id}
	}
	type want struct {
		satisfied                 bool
		summary                   string
		required, failed, missing int
		unsatisfied               []string // type testcase scenario
		satisfiedTypes            []string
	}
	tests := []struct {
		name     string
		decision *fakefedora.GreenwaveDecision // nil: no policy
		fail     []int                         // statuses the fake answers first
		query    func(q *greenwave.Query)
		want     want
		err      error
		status   int // of the *APIError, when err is set
		requests int
	}{
		{
			name: "every required test passed",
			decision: &fakefedora.GreenwaveDecision{Requirements: []fakefedora.GreenwaveRequirement{
				passed("compose.install_default", boot, 11), passed("compose.server_cockpit_default", dvd, 12)}},
			want:     want{satisfied: true, summary: "All required tests passed", required: 2, satisfiedTypes: []string{"test-result-passed", "test-result-passed"}},
			requests: 1,
		},
		{
			name: "one failed, one errored, one missing",
			decision: &fakefedora.GreenwaveDecision{Requirements: []fakefedora.GreenwaveRequirement{
				passed("compose.install_default", boot, 11),
				{Testcase: "compose.server_cockpit_default", Scenario: dvd, Outcome: fakefedora.GreenwaveFailed, ResultID: 12},
				{Testcase: "compose.base_selinux", Scenario: dvd, Outcome: fakefedora.GreenwaveErrored, ResultID: 13, ErrorReason: "worker died"},
				{Testcase: "compose.server_realmd_join_kickstart", Outcome: fakefedora.GreenwaveMissing},
			}},
			want: want{summary: "2 of 4 required tests failed, 1 result missing (1 error)", required: 4, failed: 2, missing: 1,
				unsatisfied: []string{
					"test-result-failed compose.server_cockpit_default " + dvd,
					"test-result-errored compose.base_selinux " + dvd,
					"test-result-missing compose.server_realmd_join_kickstart ",
				},
				satisfiedTypes: []string{"test-result-passed"}},
			requests: 1,
		},
		{
			name: "waived failure and missing result satisfy the policy",
			decision: &fakefedora.GreenwaveDecision{Requirements: []fakefedora.GreenwaveRequirement{
				passed("compose.install_default", boot, 11),
				{Testcase: "compose.server_cockpit_default", Scenario: dvd, Outcome: fakefedora.GreenwaveFailed, ResultID: 12, WaiverID: 7},
				{Testcase: "compose.base_selinux", Scenario: dvd, Outcome: fakefedora.GreenwaveMissing, WaiverID: 8},
			}},
			want: want{satisfied: true, summary: "All required tests passed", required: 3,
				satisfiedTypes: []string{"test-result-passed", "test-result-failed-waived", "test-result-missing-waived"}},
			requests: 1,
		},
		{
			name:     "no policy applies: 404",
			err:      greenwave.ErrNoPolicy,
			status:   http.StatusNotFound,
			requests: 1,
		},
		{
			name:     "a policy of another product version does not apply",
			decision: &fakefedora.GreenwaveDecision{ProductVersions: []string{"fedora-44"}},
			err:      greenwave.ErrNoPolicy,
			status:   http.StatusNotFound,
			requests: 1,
		},
		{
			name:     "a query without a product version is refused, not retried",
			decision: &fakefedora.GreenwaveDecision{},
			query:    func(q *greenwave.Query) { q.ProductVersion = "" },
			err:      greenwave.ErrBadRequest,
			status:   http.StatusBadRequest,
			requests: 1,
		},
		{
			name:     "5xx, then the decision",
			decision: &fakefedora.GreenwaveDecision{Requirements: []fakefedora.GreenwaveRequirement{passed("compose.install_default", boot, 11)}},
			fail:     []int{http.StatusBadGateway, http.StatusServiceUnavailable},
			want:     want{satisfied: true, summary: "All required tests passed", required: 1, satisfiedTypes: []string{"test-result-passed"}},
			requests: 3,
		},
		{
			name:     "5xx until the retries are spent",
			decision: &fakefedora.GreenwaveDecision{},
			fail:     []int{500, 500, 500, 500, 500},
			status:   http.StatusInternalServerError,
			requests: 4,
		},
		{
			name:     "no requirement at all",
			decision: &fakefedora.GreenwaveDecision{},
			want:     want{satisfied: true, summary: "no tests are required"},
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := fakefedora.NewGreenwave()
			defer g.Close()
			if tt.decision != nil {
				g.SetDecision("compose", compose, greenwave.DefaultContext, *tt.decision)
			}
			for _, s := range tt.fail {
				g.FailHTTP(1, s)
			}
			c := newClient(t, g.URL())
			q := greenwave.ComposeQuery(greenwave.DefaultContext, compose, "Rawhide")
			if tt.query != nil {
				tt.query(&q)
			}
			d, err := c.Decide(context.Background(), q)
			if n := g.Decisions(); n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.status != 0 {
				var ae *greenwave.APIError
				if !errors.As(err, &ae) || ae.StatusCode != tt.status {
					t.Fatalf("err = %v, want an APIError of HTTP %d", err, tt.status)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Errorf("err = %v, want %v", err, tt.err)
				}
				if tt.err == nil && !ae.Temporary() {
					t.Errorf("%v is not temporary", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.PoliciesSatisfied != tt.want.satisfied || d.Summary != tt.want.summary {
				t.Errorf("satisfied %v, summary %q; want %v, %q", d.PoliciesSatisfied, d.Summary, tt.want.satisfied, tt.want.summary)
			}
			if r, f, m := d.Counts(); r != tt.want.required || f != tt.want.failed || m != tt.want.missing {
				t.Errorf("counts %d required, %d failed, %d missing; want %d, %d, %d", r, f, m, tt.want.required, tt.want.failed, tt.want.missing)
			}
			var unsat []string
			for _, r := range d.UnsatisfiedRequirements {
				unsat = append(unsat, r.Type+" "+r.Testcase+" "+r.Scenario)
				if typ, id := r.Subject(); typ != "compose" || id != compose {
					t.Errorf("%s: subject %s %s", r.Testcase, typ, id)
				}
				if r.Type == greenwave.TypeErrored && r.ErrorReason != "worker died" {
					t.Errorf("errored without its reason: %+v", r)
				}
			}
			if !slices.Equal(unsat, tt.want.unsatisfied) {
				t.Errorf("unsatisfied %q\nwant %q", unsat, tt.want.unsatisfied)
			}
			var sat []string
			for _, r := range d.SatisfiedRequirements {
				sat = append(sat, r.Type)
			}
			if !slices.Equal(sat, tt.want.satisfiedTypes) {
				t.Errorf("satisfied %q, want %q", sat, tt.want.satisfiedTypes)
			}
			// What went out: the documented body.
			reqs := g.Requests()
			body := reqs[len(reqs)-1].Body
			for k, v := range map[string]any{"decision_context": "rawhide_compose_sync_to_mirrors", "product_version": "fedora-rawhide",
				"subject_type": "compose", "subject_identifier": compose, "verbose": false} {
				if body[k] != v {
					t.Errorf("sent %s = %v, want %v", k, body[k], v)
				}
			}
		})
	}
}

// TestDecodeTolerant reads requirements as older and newer Greenwaves
// write them: unknown fields, a null scenario, the subject in item only.
func TestDecodeTolerant(t *testing.T) {
	for _, tt := range []struct {
		name, body  string
		typ, ident  string
		scenario    string
		composeTest string
	}{
		{"subject fields, scenario null", `{"type":"test-result-missing","testcase":"compose.install_default","scenario":null,"subject_type":"compose","subject_identifier":"X","source":null,"new_field":[1]}`,
			"compose", "X", "", "install_default"},
		{"item only", `{"type":"test-result-failed","testcase":"compose.base_selinux","scenario":"fedora.Server-dvd-iso.x86_64.64bit","result_id":5,"item":{"type":"compose","identifier":"Y"}}`,
			"compose", "Y", "fedora.Server-dvd-iso.x86_64.64bit", "base_selinux"},
		{"the oldest item", `{"type":"test-result-failed","testcase":"dist.rpmdiff","item":{"item":"Z","type":"koji_build"}}`,
			"koji_build", "Z", "", ""},
		{"an item that is not an object", `{"type":"excluded","item":"Z"}`, "", "", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r greenwave.Requirement
			if err := json.Unmarshal([]byte(tt.body), &r); err != nil {
				t.Fatal(err)
			}
			typ, ident := r.Subject()
			test, ok := r.ComposeTest()
			if typ != tt.typ || ident != tt.ident || r.Scenario != tt.scenario || test != tt.composeTest || ok != (tt.composeTest != "") {
				t.Errorf("subject %q %q, scenario %q, test %q %v", typ, ident, r.Scenario, test, ok)
			}
		})
	}
}

// TestWrongURL: a 404 that is not Greenwave's "no applicable policies"
// (a wrong base URL) is not taken for "nothing gates this compose".
func TestWrongURL(t *testing.T) {
	g := fakefedora.NewGreenwave()
	defer g.Close()
	_, err := newClient(t, g.URL()+"/not-greenwave").Decide(context.Background(), greenwave.ComposeQuery(greenwave.DefaultContext, compose, "Rawhide"))
	var ae *greenwave.APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound || errors.Is(err, greenwave.ErrNoPolicy) {
		t.Errorf("err = %v", err)
	}
	if _, err := greenwave.New(greenwave.Options{BaseURL: "greenwave.fedoraproject.org"}); err == nil {
		t.Error("a base URL without a scheme was taken")
	}
}

func TestProductVersion(t *testing.T) {
	for release, want := range map[string]string{"Rawhide": "fedora-rawhide", "44": "fedora-44", "eln": "fedora-eln"} {
		if got := greenwave.ProductVersion(release); got != want {
			t.Errorf("ProductVersion(%q) = %q, want %q", release, got, want)
		}
	}
}
