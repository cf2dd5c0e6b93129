// Package greenwave asks Greenwave, Fedora's gating service, for
// decisions: whether a subject — for composeci, a compose — satisfies the
// policies of a decision context, and which required test results are
// missing or failed (docs/protocols.md, section (j)).
//
// check-compose asked it whether each Rawhide compose would pass the
// proposed gating of composes synced to the mirrors
// (rawhide_compose_sync_to_mirrors); composeci's check stage does the same
// when given a Greenwave URL. Fedora's Greenwave is FedoraURL; nothing here
// uses it unless told to.
package greenwave

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/composeci/composeci/internal/httpclient"
)

// FedoraURL is Fedora's Greenwave.
const FedoraURL = "https://greenwave.fedoraproject.org"

// DefaultContext is the decision context of check-compose's gating check:
// the proposed gating of Rawhide composes before they are synced to the
// mirrors.
const DefaultContext = "rawhide_compose_sync_to_mirrors"

// SubjectCompose is the subject type of a compose; its identifier is the
// compose ID.
const SubjectCompose = "compose"

// decisionPath is the decision API, under the base URL.
const decisionPath = "/api/v1.0/decision"

// Errors callers branch on with errors.Is; an *APIError matches them.
var (
	// ErrNoPolicy: no policy of the decision context applies to the
	// subject in the product version (Greenwave answers 404 with a
	// message). Nothing gates the subject there: not a failure to ask.
	ErrNoPolicy = errors.New("greenwave: no applicable policy")
	// ErrBadRequest: Greenwave refused the query (400, 415): a missing or
	// malformed field. Asking again will not help.
	ErrBadRequest = errors.New("greenwave: bad request")
)

// APIError is an answer of Greenwave that is not a decision.
type APIError struct {
	URL        string
	StatusCode int
	// Message is Greenwave's own words, the "message" of its JSON error
	// body; "" when the body was not one (then the answer came from
	// something else: a proxy, a wrong URL).
	Message string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("greenwave: POST %s: HTTP %d: %s", e.URL, e.StatusCode, msg)
}

// Is matches ErrNoPolicy (a 404 whose message speaks of applicable
// policies — "Found no applicable policies for compose subjects ...", or
// older Greenwaves' "Cannot find any applicable policies ..." — and not
// the 404 of a wrong URL or of a proxy) and ErrBadRequest (400, 415).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNoPolicy:
		return e.StatusCode == http.StatusNotFound && strings.Contains(strings.ToLower(e.Message), "applicable polic")
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnsupportedMediaType
	}
	return false
}

// Temporary reports whether asking again later may succeed: Greenwave
// answered 5xx or 429.
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// Options configures a Client. Only BaseURL is required.
type Options struct {
	// BaseURL is Greenwave's, without /api/v1.0, e.g. FedoraURL.
	BaseURL string
	// HTTP configures the retrying client: transport errors, 5xx and 429
	// are retried (a decision is a query: the POST is safe to repeat).
	HTTP httpclient.Options
	// Logger gets debug records. Default: discard.
	Logger *slog.Logger
}

// Client asks one Greenwave for decisions. It is safe for concurrent use.
type Client struct {
	base string
	http *httpclient.Client
	log  *slog.Logger
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	base := strings.TrimRight(opts.BaseURL, "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("greenwave: base URL %q: want http(s)://host[/path]", opts.BaseURL)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hopts := opts.HTTP
	if hopts.Logger == nil {
		hopts.Logger = opts.Logger
	}
	return &Client{base: base, http: httpclient.New(hopts), log: opts.Logger}, nil
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// RoundTrips reports how many HTTP requests the client sent, retries
// included.
func (c *Client) RoundTrips() int64 { return c.http.RoundTrips() }

// Query is what a decision is asked about.
type Query struct {
	// DecisionContext names the gating point, e.g. DefaultContext.
	DecisionContext string
	// ProductVersion is e.g. "fedora-rawhide" or "fedora-44"; see
	// ProductVersion.
	ProductVersion string
	// SubjectType is e.g. SubjectCompose; SubjectIdentifier the subject,
	// e.g. a compose ID.
	SubjectType, SubjectIdentifier string
}

// ComposeQuery asks about a compose of a Fedora release ("Rawhide", "44")
// at decision context ctx.
func ComposeQuery(ctx, composeID, release string) Query {
	return Query{DecisionContext: ctx, ProductVersion: ProductVersion(release), SubjectType: SubjectCompose, SubjectIdentifier: composeID}
}

// ProductVersion is Greenwave's product version of a Fedora release:
// "fedora-" and the release in lower case ("fedora-rawhide",
// "fedora-44").
func ProductVersion(release string) string { return "fedora-" + strings.ToLower(release) }

// Decision is Greenwave's answer. Fields Greenwave adds later are ignored.
type Decision struct {
	// PoliciesSatisfied is true when every requirement is satisfied
	// (passed, waived or excluded).
	PoliciesSatisfied bool `json:"policies_satisfied"`
	// Summary is Greenwave's one line, e.g. "1 of 25 required tests
	// failed".
	Summary                 string        `json:"summary"`
	ApplicablePolicies      []string      `json:"applicable_policies"`
	SatisfiedRequirements   []Requirement `json:"satisfied_requirements"`
	UnsatisfiedRequirements []Requirement `json:"unsatisfied_requirements"`
}

// Counts says how many tests are required, how many of those failed (an
// unsatisfied requirement that is not a missing result: failed, errored,
// an invalid policy file) and how many results are missing — as Greenwave
// counts them in its summary. Requirements that are not test results (a
// fetched gating.yaml) count for nothing; waived ones count as required
// only.
func (d Decision) Counts() (required, failed, missing int) {
	for _, r := range d.SatisfiedRequirements {
		if r.Required() {
			required++
		}
	}
	for _, r := range d.UnsatisfiedRequirements {
		if !r.Required() {
			continue
		}
		required++
		switch {
		case r.Waived():
		case r.Missing():
			missing++
		default:
			failed++
		}
	}
	return required, failed, missing
}

// The requirement types composeci tells apart; Greenwave has others.
const (
	TypePassed         = "test-result-passed"
	TypeFailed         = "test-result-failed"
	TypeMissing        = "test-result-missing"
	TypeErrored        = "test-result-errored"
	TypeFetchedGating  = "fetched-gating-yaml"
	waivedSuffix       = "-waived"
	composeTestcaseTag = "compose."
)

// Requirement is one requirement of a decision, satisfied or not.
type Requirement struct {
	// Type is what became of it: TypePassed, TypeFailed, TypeMissing,
	// TypeErrored, "<type>-waived", "invalid-gating-yaml", "excluded", ...
	Type string `json:"type"`
	// Testcase is ResultsDB's test case: "compose.<openQA test>" for a
	// compose's openQA tests.
	Testcase string `json:"testcase"`
	// Scenario is the result's scenario, "" when Greenwave sent null:
	// "<DISTRI>.<FLAVOR>.<ARCH>.<MACHINE>" for openQA's compose results.
	Scenario string `json:"scenario"`
	// ResultID is the ResultsDB result; 0 when there is none.
	ResultID int64 `json:"result_id"`
	// SubjectType and SubjectIdentifier name the subject; older
	// Greenwaves say it in Item only.
	SubjectType       string `json:"subject_type"`
	SubjectIdentifier string `json:"subject_identifier"`
	Item              *Item  `json:"item"`
	// ErrorReason says why an errored result did not finish.
	ErrorReason string `json:"error_reason"`
	// WaiverID is the waiver of a waived requirement.
	WaiverID int64 `json:"waiver_id"`
}

// Item is the subject as older Greenwaves wrote it: {"type", "identifier"}
// or {"type", "item"}. Anything that is not an object reads as empty.
type Item struct {
	Type, Identifier string
}

// UnmarshalJSON reads an item tolerantly.
func (it *Item) UnmarshalJSON(b []byte) error {
	var o struct {
		Type       any `json:"type"`
		Identifier any `json:"identifier"`
		Item       any `json:"item"`
	}
	if json.Unmarshal(b, &o) != nil {
		return nil // not an object: nothing to read
	}
	it.Type, _ = o.Type.(string)
	if it.Identifier, _ = o.Identifier.(string); it.Identifier == "" {
		it.Identifier, _ = o.Item.(string)
	}
	return nil
}

// Subject returns the requirement's subject type and identifier.
func (r Requirement) Subject() (typ, identifier string) {
	if r.SubjectIdentifier != "" || r.Item == nil {
		return r.SubjectType, r.SubjectIdentifier
	}
	return r.Item.Type, r.Item.Identifier
}

// Waived reports whether a waiver covers the requirement.
func (r Requirement) Waived() bool { return strings.HasSuffix(r.Type, waivedSuffix) }

// Missing reports whether the requirement is a result not (or not yet)
// in ResultsDB; a waived missing result is not.
func (r Requirement) Missing() bool { return r.Type == TypeMissing }

// Required reports whether the requirement is a required test, as
// Greenwave counts them: anything but a fetched gating.yaml.
func (r Requirement) Required() bool { return r.Type != TypeFetchedGating }

// ComposeTest returns the openQA test a compose's test case names
// ("compose.install_default" is install_default), and false for a test
// case of another kind.
func (r Requirement) ComposeTest() (string, bool) {
	t, ok := strings.CutPrefix(r.Testcase, composeTestcaseTag)
	if !ok || t == "" {
		return "", false
	}
	return t, true
}

// maxBody bounds what is read of an answer: a decision on a compose lists
// a few hundred requirements, well under a megabyte.
const maxBody = 16 << 20

// Decide asks Greenwave for its decision on q (not verbose: no results or
// waivers are listed). A query no policy applies to fails with an error
// matching ErrNoPolicy; a refused one ErrBadRequest. Transport errors, 5xx
// and 429 are retried by the HTTP client; when the retries are spent the
// error is an *APIError whose Temporary is true, or the transport's.
func (c *Client) Decide(ctx context.Context, q Query) (*Decision, error) {
	body, err := json.Marshal(map[string]any{
		"decision_context":   q.DecisionContext,
		"product_version":    q.ProductVersion,
		"subject_type":       q.SubjectType,
		"subject_identifier": q.SubjectIdentifier,
		"verbose":            false,
	})
	if err != nil {
		return nil, fmt.Errorf("greenwave: encoding the query: %w", err)
	}
	target := c.base + decisionPath
	// A decision changes nothing: the POST may be sent again after a lost
	// answer, as Koji's XML-RPC queries are.
	req, err := retryablehttp.NewRequestWithContext(httpclient.Replayable(ctx), http.MethodPost, target, body)
	if err != nil {
		return nil, fmt.Errorf("greenwave: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("greenwave: POST %s: %w", target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("greenwave: POST %s: reading the answer: %w", target, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if resp.StatusCode != http.StatusOK {
		e := &APIError{URL: target, StatusCode: resp.StatusCode}
		var m struct {
			Message any `json:"message"`
		}
		if isJSON && json.Unmarshal(data, &m) == nil && m.Message != nil {
			e.Message = fmt.Sprint(m.Message)
		}
		c.log.DebugContext(ctx, "greenwave: no decision", "subject", q.SubjectIdentifier, "context", q.DecisionContext,
			"product_version", q.ProductVersion, "status", resp.StatusCode, "message", e.Message)
		return nil, e
	}
	var d Decision
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&d); err != nil {
		return nil, fmt.Errorf("greenwave: POST %s: the answer is not a decision: %w", target, err)
	}
	c.log.DebugContext(ctx, "greenwave: decision", "subject", q.SubjectIdentifier, "context", q.DecisionContext,
		"product_version", q.ProductVersion, "satisfied", d.PoliciesSatisfied, "summary", d.Summary)
	return &d, nil
}
