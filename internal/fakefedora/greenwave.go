package fakefedora

// This file is a simulated Greenwave, Fedora's gating service: its
// decision API as docs/protocols.md, section (j), describes it. POST
// /api/v1.0/decision takes a JSON body naming a decision context, a
// product version and a subject, and answers what the policies of that
// context require of the subject: policies_satisfied, a summary worded as
// Greenwave words it, the applicable policies, and the satisfied and
// unsatisfied requirements, each written as Greenwave writes it (waived
// ones moved to the satisfied with a "-waived" type, the unsatisfied with
// the "item" Greenwave keeps for old clients). A subject no policy covers
// is 404 with {"message": "Found no applicable policies ..."}; a body that
// lacks a required field is 400 with {"message": ...}; one that is not
// JSON 415 or 400; another method 405. The test sets the requirements per
// subject and decision context. It never imports composeci's greenwave
// package: a misreading of the format must not pass on both sides.

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// GreenwaveDecisionPath is the decision API's path.
const GreenwaveDecisionPath = "/api/v1.0/decision"

// The outcomes of a required test, as Greenwave types its requirements.
const (
	GreenwavePassed  = "test-result-passed"
	GreenwaveFailed  = "test-result-failed"
	GreenwaveMissing = "test-result-missing"
	GreenwaveErrored = "test-result-errored"
)

// GreenwaveRequirement is one test a policy requires of a subject, and
// how it came out in ResultsDB.
type GreenwaveRequirement struct {
	// Testcase is ResultsDB's test case, "compose.<openQA test>" for a
	// compose's openQA tests.
	Testcase string
	// Scenario is the result's scenario, "fedora.<FLAVOR>.<ARCH>.<MACHINE>"
	// for openQA's compose results; "" is sent as null.
	Scenario string
	// Outcome is GreenwavePassed, GreenwaveFailed, GreenwaveMissing or
	// GreenwaveErrored.
	Outcome string
	// ResultID is the ResultsDB result; 0 (a missing result) sends none.
	ResultID int64
	// ErrorReason is said of an errored result.
	ErrorReason string
	// WaiverID, when set on an outcome that is not passed, is the waiver
	// that covers it: the requirement is satisfied, its type "<type>-waived".
	WaiverID int64
}

// GreenwaveDecision is what the policies of one decision context require
// of one subject.
type GreenwaveDecision struct {
	// Policies are the ids of the applicable policies; default one named
	// after the decision context.
	Policies []string
	// ProductVersions are the product versions the policies apply to;
	// empty: any. A request for another is answered 404, as Greenwave
	// answers a subject no policy covers.
	ProductVersions []string
	Requirements    []GreenwaveRequirement
}

// GreenwaveRequest is one request as the fake saw it.
type GreenwaveRequest struct {
	Method, Path, ContentType string
	// Body is the decoded JSON body; nil when it was not JSON.
	Body map[string]any
	// Status is what the fake answered.
	Status int
}

// Greenwave is a simulated Greenwave on 127.0.0.1.
type Greenwave struct {
	srv    *httptest.Server
	random faultSwitch

	mu         sync.Mutex
	decisions  map[greenwaveKey]GreenwaveDecision
	failures   []int
	retryAfter string
	requests   []GreenwaveRequest
}

type greenwaveKey struct{ subjectType, subject, context string }

// NewGreenwave starts a Greenwave with no policy for anything: every
// decision is 404 until SetDecision. Close it when done.
func NewGreenwave() *Greenwave {
	g := &Greenwave{decisions: map[greenwaveKey]GreenwaveDecision{}}
	g.srv = httptest.NewServer(withRandomFaults(g.random.get, http.HandlerFunc(g.serve)))
	return g
}

// URL returns the server's base URL, e.g. http://127.0.0.1:41234 (the API
// is under /api/v1.0).
func (g *Greenwave) URL() string { return g.srv.URL }

// Close shuts the server down.
func (g *Greenwave) Close() { g.srv.Close() }

// SetDecision sets what the policies of decision context ctx require of
// the subject of this type and identifier ("compose" and a compose ID).
func (g *Greenwave) SetDecision(subjectType, subject, ctx string, d GreenwaveDecision) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.decisions[greenwaveKey{subjectType, subject, ctx}] = d
}

// FailHTTP makes the next n requests fail with the HTTP status code (a 502
// of the proxy in front of Greenwave, a 503 while it restarts), whatever
// they ask.
func (g *Greenwave) FailHTTP(n, status int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for range n {
		g.failures = append(g.failures, status)
	}
}

// SetRetryAfter sets the Retry-After header of the 429 and 503 answers of
// FailHTTP; "" sends none.
func (g *Greenwave) SetRetryAfter(v string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retryAfter = v
}

// SetRandomFaults makes a fraction of requests fail at random (off when
// opts.P is 0).
func (g *Greenwave) SetRandomFaults(opts RandomFaultOptions) { g.random.set("greenwave", opts) }

// Requests returns every request answered, in order (the random faults'
// excepted).
func (g *Greenwave) Requests() []GreenwaveRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]GreenwaveRequest(nil), g.requests...)
}

// Decisions counts the decision requests answered, failures included.
func (g *Greenwave) Decisions() int {
	n := 0
	for _, q := range g.Requests() {
		if q.Path == GreenwaveDecisionPath {
			n++
		}
	}
	return n
}

func (g *Greenwave) serve(w http.ResponseWriter, r *http.Request) {
	q := GreenwaveRequest{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type")}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	status, answer := g.answer(r, body, &q)
	q.Status = status
	g.mu.Lock()
	g.requests = append(g.requests, q)
	retryAfter := g.retryAfter
	g.mu.Unlock()
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	if status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "OPTIONS, POST")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(answer)
	_, _ = w.Write(append(b, '\n'))
}

// message is Greenwave's error body.
func message(format string, args ...any) map[string]any {
	return map[string]any{"message": fmt.Sprintf(format, args...)}
}

// answer decides the status and JSON body of a request, as Greenwave's
// decision endpoint does.
func (g *Greenwave) answer(r *http.Request, body []byte, q *GreenwaveRequest) (int, any) {
	g.mu.Lock()
	if len(g.failures) > 0 {
		status := g.failures[0]
		g.failures = g.failures[1:]
		g.mu.Unlock()
		return status, message("injected fault: HTTP %d", status)
	}
	g.mu.Unlock()
	if r.URL.Path != GreenwaveDecisionPath {
		return http.StatusNotFound, message("The requested URL was not found on the server.")
	}
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, message("The method is not allowed for the requested URL.")
	}
	if mt, _, _ := mime.ParseMediaType(q.ContentType); mt != "application/json" {
		return http.StatusUnsupportedMediaType, message("No JSON payload in request")
	}
	var data map[string]any
	if err := json.Unmarshal(body, &data); err != nil || data == nil {
		return http.StatusBadRequest, message("Failed to decode JSON object")
	}
	q.Body = data
	str := func(k string) string { s, _ := data[k].(string); return s }
	switch {
	case str("product_version") == "":
		return http.StatusBadRequest, message("Missing required product version")
	case str("decision_context") == "" && data["rules"] == nil:
		return http.StatusBadRequest, message("Either decision_context or rules is required.")
	case data["subject_type"] == nil && data["subject"] == nil:
		return http.StatusBadRequest, message(`Missing required "subject_type" parameter`)
	case data["subject_identifier"] == nil && data["subject"] == nil:
		return http.StatusBadRequest, message(`Missing required "subject_identifier" parameter`)
	}
	if v, ok := data["verbose"]; ok {
		if _, isBool := v.(bool); !isBool {
			return http.StatusBadRequest, message("Invalid verbose flag, must be a bool")
		}
	}
	subjectType, subject, ctx, version := str("subject_type"), str("subject_identifier"), str("decision_context"), str("product_version")
	g.mu.Lock()
	d, ok := g.decisions[greenwaveKey{subjectType, subject, ctx}]
	g.mu.Unlock()
	if ok && len(d.ProductVersions) > 0 && !containsString(d.ProductVersions, version) {
		ok = false
	}
	if !ok {
		return http.StatusNotFound, message("Found no applicable policies for %s subjects at gating point(s) %s in %s", subjectType, ctx, version)
	}
	return http.StatusOK, d.answer(subjectType, subject, ctx)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// answer writes the decision as Greenwave's make_decision does.
func (d GreenwaveDecision) answer(subjectType, subject, ctx string) map[string]any {
	satisfied, unsatisfied := []any{}, []any{}
	failed, missing, errored := 0, 0, 0
	for _, rq := range d.Requirements {
		req := map[string]any{
			"type":               rq.Outcome,
			"testcase":           rq.Testcase,
			"subject_type":       subjectType,
			"subject_identifier": subject,
			"scenario":           nil,
			"source":             nil,
		}
		if rq.Scenario != "" {
			req["scenario"] = rq.Scenario
		}
		if rq.ResultID != 0 {
			req["result_id"] = rq.ResultID
		}
		if rq.Outcome == GreenwaveErrored {
			req["error_reason"] = rq.ErrorReason
		}
		switch {
		case rq.Outcome == GreenwavePassed:
			satisfied = append(satisfied, req)
		case rq.WaiverID != 0:
			req["type"] = rq.Outcome + "-waived"
			req["waiver_id"] = rq.WaiverID
			satisfied = append(satisfied, req)
		default:
			// Kept for clients older than subject_type/identifier.
			req["item"] = map[string]any{"type": subjectType, "identifier": subject}
			unsatisfied = append(unsatisfied, req)
			switch rq.Outcome {
			case GreenwaveMissing:
				missing++
			case GreenwaveErrored:
				errored++
				failed++
			default:
				failed++
			}
		}
	}
	policies := d.Policies
	if len(policies) == 0 {
		policies = []string{strings.ReplaceAll(ctx, "_", "-")}
	}
	return map[string]any{
		"policies_satisfied":       len(unsatisfied) == 0,
		"summary":                  greenwaveSummary(len(d.Requirements), failed, missing, errored),
		"applicable_policies":      policies,
		"satisfied_requirements":   satisfied,
		"unsatisfied_requirements": unsatisfied,
	}
}

// greenwaveSummary words a decision as Greenwave's summarize_answers does:
// of total required tests, failed failed (errored of them did not finish)
// and missing had no result.
func greenwaveSummary(total, failed, missing, errored int) string {
	s := greenwaveCounts(total, failed, missing)
	switch {
	case errored == 1:
		s += " (1 error)"
	case errored > 1:
		s += fmt.Sprintf(" (%d errors)", errored)
	}
	return s
}

func greenwaveCounts(total, failed, missing int) string {
	switch {
	case total == 0:
		return "no tests are required"
	case failed > 0 && missing > 0:
		s := ""
		if missing > 1 {
			s = "s"
		}
		return fmt.Sprintf("%d of %d required tests failed, %d result%s missing", failed, total, missing, s)
	case failed > 0:
		return fmt.Sprintf("%d of %d required tests failed", failed, total)
	case missing > 0:
		return fmt.Sprintf("%d of %d required test results missing", missing, total)
	}
	return "All required tests passed"
}
