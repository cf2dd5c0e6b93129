package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/composeci/composeci/fedfind"
)

const testRouting = `
[streams.rawhide]
all = ["test-reports@lists.example.org", "QA Bot <qa@example.org>"]
error = ["rawhide-problems@example.org"]

[streams.branched]
all = ["test-reports@lists.example.org"]

[subvariants.Cloud_Base]
error = ["cloud@example.org"]

[subvariants.workstation]
all = ["desktop@example.org"]
error = ["desktop-alerts@example.org"]

[subvariants.BaseOS]
error = ["eln@example.org"]
`

func TestRoutingRecipients(t *testing.T) {
	rt, err := ParseRouting(strings.NewReader(testRouting), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		kind        string
		subvariants []string
		problem     bool
		want        []string
	}{
		{"all lists of the stream and of present subvariants, no error lists without a problem",
			"rawhide", []string{"Cloud_Base", "Workstation", "Server"}, false,
			[]string{"desktop@example.org", `"QA Bot" <qa@example.org>`, "test-reports@lists.example.org"}},
		{"a problem adds the error lists of the stream and of present subvariants",
			"rawhide", []string{"Cloud_Base", "Workstation"}, true,
			[]string{"cloud@example.org", "desktop-alerts@example.org", "desktop@example.org", `"QA Bot" <qa@example.org>`,
				"rawhide-problems@example.org", "test-reports@lists.example.org"}},
		{"subvariants absent from the compose are not mailed",
			"rawhide", []string{"Server"}, true,
			[]string{`"QA Bot" <qa@example.org>`, "rawhide-problems@example.org", "test-reports@lists.example.org"}},
		{"subvariant names match case-insensitively",
			"eln", []string{"baseos"}, true, []string{"eln@example.org"}},
		{"a stream with no section mails only its subvariants' lists",
			"eln", []string{"BaseOS"}, false, []string{}},
		{"an address on two lists is mailed once",
			"branched", []string{"Workstation"}, false,
			[]string{"desktop@example.org", "test-reports@lists.example.org"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Stream: Stream{Kind: tt.kind}, Subvariants: tt.subvariants, Problem: tt.problem}
			if got := rt.Recipients(r); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("Recipients = %q\nwant         %q", got, tt.want)
			}
		})
	}
}

func TestOverrideRouting(t *testing.T) {
	rt, err := OverrideRouting([]string{"me@example.org", "Me@Example.org", "you@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	r := Report{Stream: Stream{Kind: "rawhide"}, Subvariants: []string{"Workstation"}}
	if got := rt.Recipients(r); fmt.Sprint(got) != "[Me@Example.org you@example.org]" {
		t.Errorf("override recipients = %v", got)
	}
	if _, err := OverrideRouting(nil); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("empty override: %v", err)
	}
	if _, err := OverrideRouting([]string{"not an address"}); !errors.Is(err, fedfind.ErrInvalidInput) {
		t.Errorf("bad override: %v", err)
	}
}

func TestParseRoutingErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown stream": "[streams.fedora]\nall = [\"a@example.org\"]",
		"unknown key":    "[streams.rawhide]\nerrors = [\"a@example.org\"]",
		"bad address":    "[subvariants.Server]\nall = [\"a@\"]",
		"bad TOML":       "[streams.rawhide\n",
		"top-level typo": "[stream.rawhide]\nall = [\"a@example.org\"]",
		"header in addr": "[streams.rawhide]\nall = [\"a@example.org\\r\\nBcc: b@example.org\"]",
	} {
		if _, err := ParseRouting(strings.NewReader(doc), name); !errors.Is(err, fedfind.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestDefaultRoutingMailsNobody(t *testing.T) {
	rt := DefaultRouting()
	r := exampleReport(t)
	if got := rt.Recipients(r); len(got) != 0 {
		t.Errorf("the built-in routing mails %v", got)
	}
}

func TestLoadRouting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "routing.toml")
	if err := os.WriteFile(p, []byte(testRouting), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := LoadRouting(p)
	if err != nil || len(rt.Streams) != 2 || len(rt.Subvariants) != 3 {
		t.Errorf("LoadRouting = %+v, %v", rt, err)
	}
	if _, err := LoadRouting(filepath.Join(t.TempDir(), "missing.toml")); err == nil {
		t.Error("loading a missing file: no error")
	}
	if rt, err := LoadRouting(""); err != nil || len(rt.Streams) != 0 {
		t.Errorf("LoadRouting(\"\") = %+v, %v", rt, err)
	}
}

// TestRoutingWhen: each table's `when` against a report that changed or
// not, with a problem or not. "all" gets what `when` admits; "error" gets
// only those with a problem.
func TestRoutingWhen(t *testing.T) {
	const doc = `
[streams.rawhide]
when = "always"
all = ["always-all@example.org"]
error = ["always-error@example.org"]

[subvariants.Server]
all = ["change-all@example.org"]
error = ["change-error@example.org"]

[subvariants.Workstation]
when = "error"
all = ["error-all@example.org"]
error = ["error-error@example.org"]
`
	rt, err := ParseRouting(strings.NewReader(doc), "when.toml")
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Subvariants["server"].When; got != WhenChange {
		t.Errorf("a table without when has %q, want %q", got, WhenChange)
	}
	tests := []struct {
		changed, problem bool
		want             []string
	}{
		{false, false, []string{"always-all@example.org"}},
		{false, true, []string{"always-all@example.org", "always-error@example.org", "error-all@example.org", "error-error@example.org"}},
		{true, false, []string{"always-all@example.org", "change-all@example.org"}},
		{true, true, []string{"always-all@example.org", "always-error@example.org", "change-all@example.org", "change-error@example.org",
			"error-all@example.org", "error-error@example.org"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("changed=%v,problem=%v", tt.changed, tt.problem), func(t *testing.T) {
			r := Report{Stream: Stream{Kind: "rawhide"}, Subvariants: []string{"Server", "Workstation"}, Problem: tt.problem}
			if got := rt.RecipientsWhen(r, tt.changed); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("RecipientsWhen = %v\nwant             %v", got, tt.want)
			}
		})
	}
	t.Run("Recipients takes the report as changed", func(t *testing.T) {
		r := Report{Stream: Stream{Kind: "rawhide"}, Subvariants: []string{"Server", "Workstation"}}
		if got, want := rt.Recipients(r), rt.RecipientsWhen(r, true); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Recipients = %v, want %v", got, want)
		}
	})
	t.Run("an override gets every report", func(t *testing.T) {
		ov, err := OverrideRouting([]string{"me@example.org"})
		if err != nil {
			t.Fatal(err)
		}
		if got := ov.RecipientsWhen(Report{Stream: Stream{Kind: "rawhide"}}, false); fmt.Sprint(got) != "[me@example.org]" {
			t.Errorf("override, unchanged report: %v", got)
		}
	})
}

func TestWhenAdmits(t *testing.T) {
	for _, tt := range []struct {
		when             When
		changed, problem bool
		want             bool
	}{
		{WhenAlways, false, false, true}, {WhenAlways, true, true, true},
		{WhenChange, false, false, false}, {WhenChange, false, true, false}, {WhenChange, true, false, true}, {WhenChange, true, true, true},
		{"", false, true, false}, {"", true, false, true},
		{WhenError, false, false, false}, {WhenError, true, false, false}, {WhenError, false, true, true}, {WhenError, true, true, true},
	} {
		if got := tt.when.Admits(Report{Problem: tt.problem}, tt.changed); got != tt.want {
			t.Errorf("%q.Admits(problem=%v, changed=%v) = %v", tt.when, tt.problem, tt.changed, got)
		}
	}
}

// writeSecret writes a webhook secret file into dir.
func writeSecret(t *testing.T, dir, name, secret string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseRoutingWebhooks(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, "hook.secret", "s3cret\n")
	abs := writeSecret(t, dir, "other.secret", "other")
	doc := fmt.Sprintf(`
[[webhook]]
url = "https://hooks.example.org/composeci?token=abc"
secret_file = "hook.secret"

[[webhook]]
url = "http://127.0.0.1:8080/hook"
secret_file = %q
when = "Always"
streams = ["rawhide", "ELN", "rawhide"]
`, abs)
	rt, err := ParseRouting(strings.NewReader(doc), filepath.Join(dir, "routing.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Webhooks) != 2 {
		t.Fatalf("webhooks = %+v", rt.Webhooks)
	}
	w0, w1 := rt.Webhooks[0], rt.Webhooks[1]
	if w0.Secret != "s3cret" || w0.When != WhenChange || len(w0.Streams) != 0 || w0.SecretFile != filepath.Join(dir, "hook.secret") {
		t.Errorf("first webhook = %+v", w0)
	}
	if w0.Endpoint() != "https://hooks.example.org/composeci?…" {
		t.Errorf("Endpoint() = %q", w0.Endpoint())
	}
	if w1.Secret != "other" || w1.When != WhenAlways || fmt.Sprint(w1.Streams) != "[rawhide eln]" {
		t.Errorf("second webhook = %+v", w1)
	}
	for _, s := range []string{fmt.Sprint(rt), fmt.Sprintf("%+v", rt), fmt.Sprintf("%#v", rt)} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("a routing prints its webhook secret: %s", s)
		}
	}
	rawhide := Report{Stream: Stream{Kind: "rawhide"}}
	branched := Report{Stream: Stream{Kind: "branched"}}
	for _, tt := range []struct {
		r       Report
		changed bool
		want    int
	}{{rawhide, true, 2}, {rawhide, false, 1}, {branched, true, 1}, {branched, false, 0}} {
		if got := rt.WebhooksFor(tt.r, tt.changed); len(got) != tt.want {
			t.Errorf("WebhooksFor(%s, changed=%v) = %d webhooks, want %d", tt.r.Stream.Kind, tt.changed, len(got), tt.want)
		}
	}
}

func TestParseRoutingWebhookErrors(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, dir, "hook.secret", "s3cret")
	writeSecret(t, dir, "empty.secret", "\n")
	path := filepath.Join(dir, "routing.toml")
	hook := func(body string) string { return "[[webhook]]\n" + body }
	for _, tt := range []struct{ name, doc string }{
		{"no url", hook(`secret_file = "hook.secret"`)},
		{"bad url", hook(`url = "https://exa mple.org/"` + "\nsecret_file = \"hook.secret\"")},
		{"not http", hook(`url = "ftp://example.org/hook"` + "\nsecret_file = \"hook.secret\"")},
		{"relative url", hook(`url = "/hook"` + "\nsecret_file = \"hook.secret\"")},
		{"no host", hook(`url = "https:///hook"` + "\nsecret_file = \"hook.secret\"")},
		{"no secret file", hook(`url = "https://example.org/hook"`)},
		{"missing secret file", hook(`url = "https://example.org/hook"` + "\nsecret_file = \"nope.secret\"")},
		{"empty secret", hook(`url = "https://example.org/hook"` + "\nsecret_file = \"empty.secret\"")},
		{"unknown when", hook(`url = "https://example.org/hook"` + "\nsecret_file = \"hook.secret\"\nwhen = \"sometimes\"")},
		{"unknown stream", hook(`url = "https://example.org/hook"` + "\nsecret_file = \"hook.secret\"\nstreams = [\"fedora\"]")},
		{"unknown key", hook(`url = "https://example.org/hook"` + "\nsecret_file = \"hook.secret\"\nsecret = \"inline\"")},
		{"the same url twice", hook(`url = "https://example.org/hook"`+"\nsecret_file = \"hook.secret\"\n") +
			hook(`url = "https://example.org/hook"`+"\nsecret_file = \"hook.secret\"\n")},
		{"unknown when in a table", "[streams.rawhide]\nwhen = \"often\"\nall = [\"a@example.org\"]"},
		{"a subvariant twice with two whens", "[subvariants.BaseOS]\nwhen = \"always\"\nall = [\"a@example.org\"]\n" +
			"[subvariants.baseos]\nwhen = \"error\"\nall = [\"b@example.org\"]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRouting(strings.NewReader(tt.doc), path)
			if !errors.Is(err, fedfind.ErrInvalidInput) {
				t.Fatalf("err = %v, want ErrInvalidInput", err)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
	t.Run("a query token stays out of errors", func(t *testing.T) {
		_, err := ParseRouting(strings.NewReader(hook(`url = "https://example.org/hook?token=t0ken"`+"\nwhen = \"x\"\nsecret_file = \"hook.secret\"")), path)
		if err == nil || strings.Contains(err.Error(), "t0ken") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestDefaultRoutingIsACopy: the embedded routing is parsed once, on first
// use, and every caller gets a copy of its own.
func TestDefaultRoutingIsACopy(t *testing.T) {
	before := fmt.Sprintf("%#v", DefaultRouting())
	rt := DefaultRouting()
	rt.Streams[fedfind.StreamRawhide] = Lists{All: []string{"changed@example.org"}}
	rt.Subvariants["changed"] = Lists{Error: []string{"changed@example.org"}}
	rt.Override = append(rt.Override, "changed@example.org")
	if after := fmt.Sprintf("%#v", DefaultRouting()); after != before {
		t.Errorf("changing a copy changed the defaults:\nbefore %s\nafter  %s", before, after)
	}
}
