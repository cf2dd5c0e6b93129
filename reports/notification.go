package reports

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// NotificationSchemaVersion is the version of the notification body
// (docs/messages.md). Like the report's, it grows when a field changes
// meaning or goes away; added fields do not change it.
const NotificationSchemaVersion = 1

// EventComposeCheckComplete names what a notification announces: the
// X-Composeci-Event header of a webhook, the end of the Fedora Messaging
// topic, the body's event field.
const EventComposeCheckComplete = "compose.check.complete"

// Notification is the body of a webhook delivery and of a Fedora Messaging
// message: one version of a compose's report, cut down to what a machine
// acts on, with links to the rest. docs/messages.md documents every field
// and docs/messages.schema.json is its JSON Schema; a test holds the three
// together. Every slice is non-nil, so lists are [] and never null.
type Notification struct {
	SchemaVersion     int    `json:"schema_version"`
	Event             string `json:"event"`
	ComposeID         string `json:"compose_id"`
	PreviousComposeID string `json:"previous_compose_id"`
	Release           string `json:"release"`
	// Stream is the stream's kind (rawhide, branched, ...), StreamName its
	// name for people.
	Stream     string `json:"stream"`
	StreamName string `json:"stream_name"`
	Status     string `json:"status"`
	Problem    bool   `json:"problem"`
	Doomed     bool   `json:"doomed"`
	// Changed and Changes are Changes(prev, r): whether and how the
	// stream's state changed from the previous compose.
	Changed         bool                    `json:"changed"`
	Changes         []ChangeKind            `json:"changes"`
	SummaryLine     string                  `json:"summary_line"`
	Summary         Summary                 `json:"summary"`
	NewFailures     []NotifiedFailure       `json:"new_failures"`
	MissingExpected []fedfind.ExpectedImage `json:"missing_expected"`
	Links           Links                   `json:"links"`
	// Version is the report's ContentKey: one delivery per version and
	// endpoint.
	Version     string    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// Label is a candidate compose's label (RC-1.2); absent otherwise.
	Label string `json:"label,omitempty"`
	// Gating is the gating check's verdict, when one was made.
	Gating *NotifiedGating `json:"gating,omitempty"`
}

// NotifiedGating is the gating check as a notification carries it: the
// verdict and its counts (the report holds the requirements).
type NotifiedGating struct {
	DecisionContext string `json:"decision_context"`
	ProductVersion  string `json:"product_version"`
	Outcome         string `json:"outcome"`
	Passed          bool   `json:"passed"`
	Required        int    `json:"required"`
	Failed          int    `json:"failed"`
	Missing         int    `json:"missing"`
}

// NotifiedFailure is a new failure as a notification lists it.
type NotifiedFailure struct {
	Test    string `json:"test"`
	Flavor  string `json:"flavor"`
	Arch    string `json:"arch"`
	Machine string `json:"machine"`
	// JobID and URL are the failed job (its first try when composeci re-ran
	// it; the re-run is RerunJobID and RerunURL).
	JobID      int64  `json:"job_id"`
	URL        string `json:"url"`
	RerunJobID int64  `json:"rerun_job_id,omitempty"`
	RerunURL   string `json:"rerun_url,omitempty"`
	// Confirmed is true when composeci re-ran the test and it failed again.
	Confirmed bool `json:"confirmed"`
}

// Links are where a notification's reader finds more. Each is left out
// when unknown.
type Links struct {
	// Report, JSON and Text are the report's files on composeci's web
	// server, Dashboard the compose's page there.
	Report    string `json:"report,omitempty"`
	JSON      string `json:"json,omitempty"`
	Text      string `json:"text,omitempty"`
	Dashboard string `json:"dashboard,omitempty"`
	// Compose is the compose's location (Report.Location).
	Compose string `json:"compose,omitempty"`
}

// ReportLinks returns the links of r as composeci's web server serves
// them under base (its public URL, for example
// "https://composeci.example.org/"), and the compose's location. With an
// empty or unusable base only the location is given.
func ReportLinks(base string, r Report) Links {
	l := Links{Compose: r.Location}
	u, err := url.Parse(base)
	if base == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return l
	}
	root := strings.TrimSuffix(u.String(), "/")
	files := root + "/reports/" + url.PathEscape(r.Release) + "/" + url.PathEscape(r.ComposeID) + "/"
	l.Report, l.JSON, l.Text = files+FileHTML, files+FileJSON, files+FileText
	l.Dashboard = root + "/composes/" + url.PathEscape(r.ComposeID)
	return l
}

// NewNotification makes the notification of r, given how its compose
// changed (Changes) and where to read more (ReportLinks).
func NewNotification(r Report, ch Change, links Links) Notification {
	n := Notification{
		SchemaVersion: NotificationSchemaVersion, Event: EventComposeCheckComplete,
		ComposeID: r.ComposeID, PreviousComposeID: r.PreviousComposeID, Release: r.Release,
		Stream: r.Stream.Kind, StreamName: r.Stream.Name, Status: printable(r.Status),
		Problem: r.Problem, Doomed: r.Doomed != nil,
		Changed: ch.Changed(), Changes: append([]ChangeKind{}, ch.Kinds...),
		SummaryLine: r.SummaryLine(), Summary: r.Summary,
		NewFailures:     make([]NotifiedFailure, 0, len(r.OpenQA.NewFailures)),
		MissingExpected: expectedOf(r.MissingExpected),
		Links:           links, Version: ContentKey(r), GeneratedAt: r.GeneratedAt.UTC().Truncate(time.Second),
		Label: r.Label,
	}
	if g := r.Gating; g != nil {
		n.Gating = &NotifiedGating{DecisionContext: g.DecisionContext, ProductVersion: g.ProductVersion, Outcome: g.Outcome,
			Passed: g.Passed, Required: g.Required, Failed: g.Failed, Missing: g.Missing}
	}
	for _, j := range r.OpenQA.NewFailures {
		n.NewFailures = append(n.NewFailures, NotifiedFailure{Test: j.Test, Flavor: j.Flavor, Arch: j.Arch, Machine: j.Machine,
			JobID: j.JobID, URL: j.URL, RerunJobID: j.RerunJobID, RerunURL: j.RerunURL, Confirmed: j.Confirmed != nil && *j.Confirmed})
	}
	return n
}

// JSON returns the body as it goes on the wire: compact, UTF-8, no
// trailing newline. A webhook's signature covers exactly these bytes.
func (n Notification) JSON() ([]byte, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encoding the notification of %s: %w", n.ComposeID, err)
	}
	return b, nil
}
