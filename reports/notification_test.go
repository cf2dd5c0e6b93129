package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	schemaFile   = "../docs/messages.schema.json"
	messagesFile = "../docs/messages.md"
)

func TestNewNotification(t *testing.T) {
	r := triageReport(t)
	n := NewNotification(r, Changes(nil, r), ReportLinks("https://composeci.example.org/", r))
	if n.SchemaVersion != 1 || n.Event != "compose.check.complete" || n.ComposeID != r.ComposeID || n.Release != "rawhide" ||
		n.Stream != "rawhide" || n.StreamName != "Fedora Rawhide" || !n.Problem || n.Doomed || !n.Changed ||
		n.Version != ContentKey(r) || n.Summary != r.Summary || n.SummaryLine != r.SummaryLine() || !n.GeneratedAt.Equal(r.GeneratedAt) {
		t.Errorf("notification = %+v", n)
	}
	if len(n.NewFailures) != len(r.OpenQA.NewFailures) || len(n.MissingExpected) != len(r.MissingExpected) {
		t.Fatalf("%d new failures, %d missing images", len(n.NewFailures), len(n.MissingExpected))
	}
	var confirmed *NotifiedFailure
	for i, f := range n.NewFailures {
		if f.Confirmed {
			confirmed = &n.NewFailures[i]
		}
	}
	if confirmed == nil || confirmed.Test != "server_cockpit_default" || confirmed.JobID != 1003 || confirmed.RerunJobID != 1030 ||
		confirmed.RerunURL == "" || confirmed.URL != "https://openqa.fedoraproject.org/tests/1003" {
		t.Errorf("the confirmed failure = %+v", confirmed)
	}
	wantLinks := Links{
		Report:    "https://composeci.example.org/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.html",
		JSON:      "https://composeci.example.org/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.json",
		Text:      "https://composeci.example.org/reports/rawhide/Fedora-Rawhide-20261122.n.0/report.txt",
		Dashboard: "https://composeci.example.org/composes/Fedora-Rawhide-20261122.n.0",
		Compose:   exampleLocation,
	}
	if n.Links != wantLinks {
		t.Errorf("links = %+v\nwant    %+v", n.Links, wantLinks)
	}
	for _, base := range []string{"", "not a url", "ftp://example.org/", "/relative"} {
		if got := ReportLinks(base, r); got != (Links{Compose: exampleLocation}) {
			t.Errorf("ReportLinks(%q) = %+v", base, got)
		}
	}
	b, err := n.JSON()
	if err != nil || bytes.Contains(b, []byte("null")) || bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("JSON = %s, %v", b, err)
	}
}

// TestNotificationSchema holds the body, docs/messages.schema.json and the
// Go type together: bodies of every kind of report validate, and every key
// a body can have is in the schema and the other way round.
func TestNotificationSchema(t *testing.T) {
	schema := loadSchema(t)
	first, doom := firstReport(t), doomedReport(t)
	prev := exampleReport(t)
	prev.ComposeID = prevID
	for name, n := range map[string]Notification{
		"example":  exampleNotification(t),
		"triage":   NewNotification(triageReport(t), Changes(&prev, triageReport(t)), ReportLinks("https://c.example.org", triageReport(t))),
		"first":    NewNotification(first, Changes(nil, first), Links{}),
		"doomed":   NewNotification(doom, Changes(&prev, doom), ReportLinks("https://c.example.org", doom)),
		"no links": NewNotification(streamReport(curID), Changes(nil, streamReport(curID)), Links{}),
		"gating":   NewNotification(gatingReport(t), Changes(&prev, gatingReport(t)), Links{}),
		"label":    NewNotification(candidateReport(t), Changes(nil, candidateReport(t)), Links{}),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := n.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var body any
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatal(err)
			}
			for _, e := range validate(schema, body, "body") {
				t.Error(e)
			}
		})
	}
	t.Run("a broken body does not validate", func(t *testing.T) {
		b, _ := exampleNotification(t).JSON()
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		delete(body, "version")
		body["stream"], body["changes"] = "fedora", []any{"sometimes"}
		body["summary"].(map[string]any)["tests"] = -1.0
		if errs := validate(schema, body, "body"); len(errs) != 4 {
			t.Errorf("errors = %q, want 4", errs)
		}
	})
	t.Run("every key documented, every documented key made", func(t *testing.T) {
		// A notification with every optional field set.
		r := triageReport(t)
		r.Label, r.Gating = "RC-1.2", gatingReport(t).Gating
		n := NewNotification(r, Changes(nil, r), ReportLinks("https://c.example.org", r))
		b, _ := n.JSON()
		var body any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		made, documented := map[string]bool{}, map[string]bool{}
		keys(body, "", made)
		schemaKeys(schema, "", documented)
		for _, k := range slices.Sorted(maps.Keys(made)) {
			if !documented[k] {
				t.Errorf("the body has %s, which docs/messages.schema.json does not document", k)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(documented)) {
			if !made[k] {
				t.Errorf("docs/messages.schema.json documents %s, which no body has", k)
			}
		}
	})
}

// docExample is the notification docs/messages.md shows: the example
// compose compared with a previous compose that finished and missed one
// image fewer.
func docExample(t *testing.T) Notification {
	r := exampleReport(t)
	prev := exampleReport(t)
	prev.ComposeID, prev.Status = prevID, "FINISHED"
	prev.MissingExpected = []MissingImage{r.MissingExpected[0]}
	return NewNotification(r, Changes(&prev, r), ReportLinks("https://composeci.example.org", r))
}

var docExampleBlock = regexp.MustCompile("(?s)(<!-- example body: TestMessagesDoc -->\n```json\n)(.*?)(```)")

// TestMessagesDoc checks the example body in docs/messages.md against the
// code (rewritten with -update) and the schema.
func TestMessagesDoc(t *testing.T) {
	doc, err := os.ReadFile(messagesFile)
	if err != nil {
		t.Fatal(err)
	}
	m := docExampleBlock.FindSubmatchIndex(doc)
	if m == nil {
		t.Fatalf("%s has no example block", messagesFile)
	}
	want, err := json.MarshalIndent(docExample(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	got := doc[m[4]:m[5]]
	if *update {
		out := slices.Concat(doc[:m[4]], want, doc[m[5]:])
		if err := os.WriteFile(messagesFile, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the example in %s is not what the code makes (go test ./reports -update rewrites it):\n%s", messagesFile, firstDiff(want, got))
	}
	var body any
	if err := json.Unmarshal(got, &body); err != nil {
		t.Fatal(err)
	}
	for _, e := range validate(loadSchema(t), body, "example") {
		t.Error(e)
	}
}

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return s
}

// validate checks v against the part of JSON Schema the documented schema
// uses: type, enum, required, properties, items, minimum, minLength and
// pattern. It fails on any other keyword, so the schema cannot grow a rule
// this test silently skips.
func validate(schema map[string]any, v any, at string) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	for k, rule := range schema {
		switch k {
		case "$schema", "id", "title", "description":
		case "type":
			if !hasType(v, rule.(string)) {
				bad("%v is not of type %s", v, rule)
			}
		case "enum":
			if !slices.ContainsFunc(rule.([]any), func(e any) bool { return e == v }) {
				bad("%v is not one of %v", v, rule)
			}
		case "required":
			obj, _ := v.(map[string]any)
			for _, r := range rule.([]any) {
				if _, ok := obj[r.(string)]; !ok {
					bad("lacks the required %q", r)
				}
			}
		case "properties":
			obj, _ := v.(map[string]any)
			for name, sub := range rule.(map[string]any) {
				if x, ok := obj[name]; ok {
					errs = append(errs, validate(sub.(map[string]any), x, at+"."+name)...)
				}
			}
		case "items":
			arr, _ := v.([]any)
			for i, x := range arr {
				errs = append(errs, validate(rule.(map[string]any), x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		case "minimum":
			if f, ok := v.(float64); ok && f < rule.(float64) {
				bad("%v is below %v", v, rule)
			}
		case "minLength":
			if s, ok := v.(string); ok && len([]rune(s)) < int(rule.(float64)) {
				bad("%q is shorter than %v", s, rule)
			}
		case "pattern":
			if s, ok := v.(string); ok && !regexp.MustCompile(rule.(string)).MatchString(s) {
				bad("%q does not match %s", s, rule)
			}
		default:
			bad("the schema uses %q, which this test does not check", k)
		}
	}
	return errs
}

func hasType(v any, typ string) bool {
	switch x := v.(type) {
	case map[string]any:
		return typ == "object"
	case []any:
		return typ == "array"
	case string:
		return typ == "string"
	case bool:
		return typ == "boolean"
	case float64:
		return typ == "number" || (typ == "integer" && x == float64(int64(x)))
	}
	return typ == "null" && v == nil
}

// keys collects the dotted paths of every key in a JSON value; array items
// are "[]".
func keys(v any, at string, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			into[at+k] = true
			keys(sub, at+k+".", into)
		}
	case []any:
		for _, sub := range x {
			keys(sub, strings.TrimSuffix(at, ".")+"[].", into)
		}
	}
}

// schemaKeys collects the dotted paths of every property a schema names.
func schemaKeys(s map[string]any, at string, into map[string]bool) {
	if props, ok := s["properties"].(map[string]any); ok {
		for k, sub := range props {
			into[at+k] = true
			schemaKeys(sub.(map[string]any), at+k+".", into)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		schemaKeys(items, strings.TrimSuffix(at, ".")+"[].", into)
	}
}

// TestNotificationCarriesGatingAndLabel: the gating verdict and its counts,
// and a candidate's label, go out with the notification.
func TestNotificationCarriesGatingAndLabel(t *testing.T) {
	g := gatingReport(t)
	n := NewNotification(g, Changes(nil, g), Links{})
	if n.Gating == nil || n.Gating.Outcome != "failed" || n.Gating.Passed || n.Gating.Failed != g.Gating.Failed ||
		n.Gating.Missing != 1 || n.Gating.Required != g.Gating.Required || n.Gating.DecisionContext != "rawhide_compose_sync_to_mirrors" {
		t.Errorf("gating %+v, report's %+v", n.Gating, g.Gating)
	}
	c := candidateReport(t)
	if n := NewNotification(c, Changes(nil, c), Links{}); n.Label != "RC-1.2" || n.Gating != nil {
		t.Errorf("label %q, gating %+v", n.Label, n.Gating)
	}
	if n := exampleNotification(t); n.Label != "" || n.Gating != nil {
		t.Errorf("a nightly without gating: label %q, gating %+v", n.Label, n.Gating)
	}
}
