package workflow

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// kvKeyPattern is what nats.go accepts as a KV key.
var kvKeyPattern = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

func TestTokenEncoding(t *testing.T) {
	ids := append(composeIDForms(), "Fedora-Rawhide-20261122.n.0", "a=b", "x.y+z/w", "")
	want := map[string]string{
		"Fedora-Rawhide-20261122.n.0":          "Fedora-Rawhide-20261122=2En=2E0",
		"Fedora-44-20261010.1":                 "Fedora-44-20261010=2E1",
		"Fedora-43-updates-testing-20261122.0": "Fedora-43-updates-testing-20261122=2E0",
		"DP-1.0-20161013.t.4":                  "DP-1=2E0-20161013=2Et=2E4",
		"Fedora_Kinoite+x-44-20261010.d.0":     "Fedora_Kinoite=2Bx-44-20261010=2Ed=2E0",
	}
	seen := map[string]string{}
	for _, id := range ids {
		enc := encodeToken(id)
		if w, ok := want[id]; ok && enc != w {
			t.Errorf("encodeToken(%q) = %q, want %q", id, enc, w)
		}
		if id != "" && !kvKeyPattern.MatchString(enc) {
			t.Errorf("encodeToken(%q) = %q is no KV key without dots", id, enc)
		}
		if strings.ContainsAny(enc, ".*> \t") {
			t.Errorf("encodeToken(%q) = %q is not one subject token", id, enc)
		}
		dec, err := decodeToken(enc)
		if err != nil || dec != id {
			t.Errorf("decodeToken(%q) = %q, %v; want %q", enc, dec, err, id)
		}
		if other, ok := seen[enc]; ok && other != id {
			t.Errorf("%q and %q both encode to %q", id, other, enc)
		}
		seen[enc] = id
	}
	for _, bad := range []string{"a.b", "=2", "=2e", "=zz", "=41" /* 'A' needs no escape */, "a b", "=", "ab="} {
		if got, err := decodeToken(bad); err == nil {
			t.Errorf("decodeToken(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzTokenEncoding(f *testing.F) {
	for _, id := range composeIDForms() {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := encodeToken(s)
		dec, err := decodeToken(enc)
		if err != nil || dec != s {
			t.Fatalf("round trip of %q: %q, %v", s, dec, err)
		}
		if s != "" && !kvKeyPattern.MatchString(enc) {
			t.Fatalf("%q encodes to %q", s, enc)
		}
		if d, err := decodeToken(s); err == nil && encodeToken(d) != s {
			t.Fatalf("decodeToken(%q) = %q does not encode back", s, d)
		}
	})
}

func TestEventMsgID(t *testing.T) {
	a := Event{Kind: KindComposeStatus, ComposeID: "Fedora-44-20261010.1", Status: "FINISHED", Source: SourceAMQP}
	b := a
	b.Source, b.At = SourcePoll, time.Now() // who and when do not matter
	if eventMsgID(a) != eventMsgID(b) {
		t.Error("the same status of the same compose has two ids")
	}
	c := a
	c.Status = "DOOMED"
	if eventMsgID(a) == eventMsgID(c) {
		t.Error("two statuses share an id")
	}
	d, e := a, a
	d.MessageID, e.MessageID = "uuid-1\r\nX-Evil: 1", "uuid-2"
	if eventMsgID(d) == eventMsgID(e) || eventMsgID(d) == eventMsgID(a) {
		t.Error("message ids not told apart")
	}
	if strings.ContainsAny(eventMsgID(d), "\r\n ") {
		t.Errorf("message id reaches the header raw: %q", eventMsgID(d))
	}
}

func TestTaskID(t *testing.T) {
	tk := task{ComposeID: "Fedora-Rawhide-20261122.n.0", Gen: 42, Stage: StageAwaitComplete, Attempt: 3}
	if got, want := tk.id(), "Fedora-Rawhide-20261122=2En=2E0/42/await-complete/3"; got != want {
		t.Errorf("id = %q, want %q", got, want)
	}
	next := tk
	next.Attempt++
	if next.id() == tk.id() {
		t.Error("a new attempt reuses the message id")
	}
}
