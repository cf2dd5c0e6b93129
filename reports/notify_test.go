package reports

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/fakefedora"
)

// TestUnchangedComposeNotifiesNoChangeEntry is the property at the
// library level, with the pieces the report stage puts together — Changes,
// the routing's `when`, ContentKey and the delivery ledger: a second check
// of a compose that finds nothing new delivers nothing again, and the next
// compose, unchanged from it, tells no `change` entry, mail or webhook.
func TestUnchangedComposeNotifiesNoChangeEntry(t *testing.T) {
	hooks := map[When]*fakefedora.WebhookReceiver{}
	for _, w := range []When{WhenChange, WhenAlways, WhenError} {
		hooks[w] = fakefedora.NewWebhookReceiver(hookSecret)
		defer hooks[w].Close()
	}
	dir := t.TempDir()
	writeSecret(t, dir, "hook.secret", hookSecret+"\n")
	doc := fmt.Sprintf(`
[streams.rawhide]
all = ["change@example.org"]

[subvariants.Server]
when = "always"
all = ["always@example.org"]

[subvariants.Workstation]
when = "error"
all = ["error@example.org"]

[[webhook]]
url = %q
secret_file = "hook.secret"

[[webhook]]
url = %q
secret_file = "hook.secret"
when = "always"

[[webhook]]
url = %q
secret_file = "hook.secret"
when = "error"
`, hooks[WhenChange].URL(), hooks[WhenAlways].URL(), hooks[WhenError].URL())
	rt, err := ParseRouting(strings.NewReader(doc), filepath.Join(dir, "routing.toml"))
	if err != nil {
		t.Fatal(err)
	}
	archive := Archive{Dir: t.TempDir()}
	sender := fastWebhooks(archive, nil)

	// notify is what a report stage does with a report and its previous
	// compose's: who is mailed, and which webhooks got a delivery now.
	notify := func(prev *Report, cur Report) (mailed []string, delivered []When) {
		t.Helper()
		ch := Changes(prev, cur)
		n := NewNotification(cur, ch, Links{})
		for _, w := range rt.WebhooksFor(cur, ch.Changed()) {
			_, sent, err := sender.Deliver(t.Context(), w, n)
			if err != nil {
				t.Fatal(err)
			}
			if sent {
				delivered = append(delivered, w.When)
			}
		}
		slices.Sort(delivered)
		return rt.RecipientsWhen(cur, ch.Changed()), delivered
	}
	accepted := func() map[When]int {
		out := map[When]int{}
		for w, h := range hooks {
			out[w] = len(h.Accepted())
		}
		return out
	}

	prev := streamReport(prevID)
	first := streamReport(curID, newFailure("server_cockpit_default", 3001))
	mailed, delivered := notify(&prev, first)
	if want := []string{"always@example.org", "change@example.org", "error@example.org"}; !slices.Equal(mailed, want) {
		t.Errorf("a compose with a new failure mails %v, want %v", mailed, want)
	}
	if want := []When{WhenAlways, WhenChange, WhenError}; !slices.Equal(delivered, want) {
		t.Errorf("a compose with a new failure went to the webhooks %v, want %v", delivered, want)
	}

	// The same compose checked again later: new stamps, a new job id for a
	// clone, the same findings. Same version: nothing is delivered again.
	again := streamReport(curID, newFailure("server_cockpit_default", 3099), func(r *Report) { r.GeneratedAt = r.GeneratedAt.Add(time.Hour) })
	if ContentKey(again) != ContentKey(first) {
		t.Fatal("the second check of the same compose is a new version")
	}
	if _, delivered := notify(&prev, again); len(delivered) != 0 {
		t.Errorf("a second check of the same compose delivered to %v", delivered)
	}
	if got := accepted(); got[WhenChange] != 1 || got[WhenAlways] != 1 || got[WhenError] != 1 {
		t.Errorf("deliveries accepted = %v, want one each", got)
	}

	// The next compose fails as this one did (a known failure now) and
	// changes nothing else: no `change` entry hears of it.
	next := streamReport("Fedora-Rawhide-20261123.n.0", func(r *Report) {
		r.PreviousComposeID = curID
		r.OpenQA.KnownFailures = append(r.OpenQA.KnownFailures, job("server_cockpit_default", 4001, "failed"))
	})
	if ch := Changes(&again, next); ch.Changed() {
		t.Fatalf("the next compose changed: %s", ch)
	}
	mailed, delivered = notify(&again, next)
	if want := []string{"always@example.org"}; !slices.Equal(mailed, want) {
		t.Errorf("an unchanged compose mails %v, want %v", mailed, want)
	}
	if want := []When{WhenAlways}; !slices.Equal(delivered, want) {
		t.Errorf("an unchanged compose went to the webhooks %v, want %v", delivered, want)
	}
	if got := accepted(); got[WhenChange] != 1 || got[WhenError] != 1 || got[WhenAlways] != 2 {
		t.Errorf("deliveries accepted = %v, want the change and error webhooks told once, always twice", got)
	}
	for w, h := range hooks {
		for _, q := range h.Requests() {
			if !q.SignatureOK {
				t.Errorf("the %s webhook got a request whose signature does not verify", w)
			}
		}
	}
}

// TestMailLedgerKeepsTheVersion: a mail record says which version of the
// report went out, and older records without one still read.
func TestMailLedgerKeepsTheVersion(t *testing.T) {
	a := Archive{Dir: t.TempDir()}
	r := streamReport(curID)
	rec := MailRecord{MessageID: "m1", Recipients: []string{"a@example.org"}, SentAt: generatedAt, Version: ContentKey(r)}
	if err := a.RecordMail(t.Context(), curID, rec); err != nil {
		t.Fatal(err)
	}
	got, ok, err := a.SentMail(t.Context(), curID, "m1")
	if err != nil || !ok || got.Version != ContentKey(r) {
		t.Errorf("SentMail = %+v, %v, %v", got, ok, err)
	}
	old := MailRecord{MessageID: "m0", Recipients: []string{"b@example.org"}, SentAt: generatedAt}
	if err := a.RecordMail(t.Context(), curID, old); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := a.SentMail(t.Context(), curID, "m0"); err != nil || !ok || got.Version != "" {
		t.Errorf("a record without a version = %+v, %v, %v", got, ok, err)
	}
}
