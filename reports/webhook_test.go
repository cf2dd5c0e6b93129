package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/backoff"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/testenv"
)

const hookSecret = "correct horse battery staple"

// fastWebhooks is a sender with short waits, recording in archive.
func fastWebhooks(archive Archive, log *slog.Logger) *WebhookSender {
	return NewWebhookSender(WebhookOptions{Timeout: 200 * time.Millisecond, Attempts: 4,
		Backoff: backoff.Policy{Base: time.Millisecond, Max: 10 * time.Millisecond, Jitter: true}, Logger: log}, archive)
}

func hookTo(rcv *fakefedora.WebhookReceiver) Webhook {
	return Webhook{URL: rcv.URL() + "?token=t0ken", Secret: hookSecret, When: WhenChange}
}

// exampleNotification is the notification of the example report, as if
// the compose had changed.
func exampleNotification(t *testing.T) Notification {
	r := exampleReport(t)
	return NewNotification(r, Changes(nil, r), ReportLinks("https://composeci.example.org", r))
}

// TestWebhookRetriedThenDelivered is the case: the endpoint checks
// the signature, fails twice with 503, then accepts — one delivery is
// recorded, and delivering the same version again sends nothing.
func TestWebhookRetriedThenDelivered(t *testing.T) {
	rcv := fakefedora.NewWebhookReceiver(hookSecret, fakefedora.WebhookAnswer{Status: 503}, fakefedora.WebhookAnswer{Status: 503})
	defer rcv.Close()
	archive := Archive{Dir: t.TempDir()}
	var logs bytes.Buffer
	s := fastWebhooks(archive, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	n, w := exampleNotification(t), hookTo(rcv)

	d, sent, err := s.Deliver(t.Context(), w, n)
	if err != nil || !sent {
		t.Fatalf("Deliver = %+v, %v, %v", d, sent, err)
	}
	reqs := rcv.Requests()
	if len(reqs) != 3 || len(rcv.Accepted()) != 1 {
		t.Fatalf("the endpoint saw %d requests, accepted %d; want 3 and 1", len(reqs), len(rcv.Accepted()))
	}
	wantID := DeliveryID(ChannelWebhook, w.URL, n.ComposeID, n.Version)
	body, _ := n.JSON()
	for i, q := range reqs {
		if !q.SignatureOK || q.Signature != SignWebhook([]byte(hookSecret), q.Body) {
			t.Errorf("request %d: signature %q does not verify", i, q.Signature)
		}
		if q.Method != "POST" || q.ContentType != "application/json" || q.UserAgent != "composeci" ||
			q.Event != "compose.check.complete" || q.Delivery != wantID || !bytes.Equal(q.Body, body) {
			t.Errorf("request %d = %+v %s", i, q, q.Body)
		}
	}
	if d.ID != wantID || d.Attempts != 3 || d.Status != 200 || d.Channel != ChannelWebhook || d.Version != n.Version ||
		d.Endpoint != rcv.URL()+"?…" || d.DeliveredAt.IsZero() {
		t.Errorf("delivery = %+v", d)
	}
	recs, err := archive.DeliveriesOf(t.Context(), n.ComposeID)
	if err != nil || len(recs) != 1 || recs[0] != d {
		t.Fatalf("ledger = %+v, %v; want exactly %+v", recs, err, d)
	}

	again, sent, err := s.Deliver(t.Context(), w, n)
	if err != nil || sent || again != d {
		t.Errorf("second Deliver = %+v, %v, %v; want the first delivery, not sent", again, sent, err)
	}
	if got := len(rcv.Requests()); got != 3 {
		t.Errorf("the second delivery of the same version made %d more requests", got-3)
	}
	if strings.Contains(logs.String(), hookSecret) || strings.Contains(logs.String(), "t0ken") {
		t.Errorf("the log holds the secret or the URL's token:\n%s", logs.String())
	}
}

func TestWebhookFailures(t *testing.T) {
	tests := []struct {
		name     string
		answers  []fakefedora.WebhookAnswer
		secret   Secret
		wantErr  error
		requests int
	}{
		{"400 is not retried", []fakefedora.WebhookAnswer{{Status: 400}}, hookSecret, ErrWebhookRejected, 1},
		{"404 is not retried", []fakefedora.WebhookAnswer{{Status: 404}}, hookSecret, ErrWebhookRejected, 1},
		{"a redirect is not followed", []fakefedora.WebhookAnswer{{Status: 307, Location: "/elsewhere"}}, hookSecret, ErrWebhookRejected, 1},
		{"a wrong secret is refused by the endpoint", nil, "not the secret", ErrWebhookRejected, 1},
		{"501 is not retried", []fakefedora.WebhookAnswer{{Status: 501}}, hookSecret, ErrWebhookRejected, 1},
		{"5xx until the attempts run out", []fakefedora.WebhookAnswer{{Status: 500}, {Status: 502}, {Status: 503}, {Status: 504}},
			hookSecret, ErrWebhookGaveUp, 4},
		{"429 is retried", []fakefedora.WebhookAnswer{{Status: 429, RetryAfter: "1"}}, hookSecret, nil, 2},
		{"a timeout is retried", []fakefedora.WebhookAnswer{{Stall: 5 * time.Second}}, hookSecret, nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := fakefedora.NewWebhookReceiver(hookSecret, tt.answers...)
			defer rcv.Close()
			archive := Archive{Dir: t.TempDir()}
			w := hookTo(rcv)
			w.Secret = tt.secret
			n := exampleNotification(t)
			d, sent, err := fastWebhooks(archive, nil).Deliver(t.Context(), w, n)
			switch {
			case tt.wantErr == nil && (err != nil || !sent || d.Attempts != tt.requests):
				t.Errorf("Deliver = %+v, %v, %v; want delivered in %d attempts", d, sent, err, tt.requests)
			case tt.wantErr != nil && (!errors.Is(err, tt.wantErr) || sent):
				t.Errorf("Deliver = %v, sent %v; want %v", err, sent, tt.wantErr)
			}
			testWaitRequests(t, rcv, tt.requests)
			recs, _ := archive.DeliveriesOf(t.Context(), n.ComposeID)
			if want := map[bool]int{true: 1, false: 0}[tt.wantErr == nil]; len(recs) != want {
				t.Errorf("ledger = %+v, want %d record(s)", recs, want)
			}
			if err != nil && strings.Contains(err.Error(), "t0ken") {
				t.Errorf("the error quotes the URL's token: %v", err)
			}
		})
	}
}

// testWaitRequests waits until the receiver has recorded n requests (a
// stalled request is recorded when the client gives up on it) and checks
// there are no more.
func testWaitRequests(t *testing.T, rcv *fakefedora.WebhookReceiver, n int) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "the endpoint's requests", func() error {
		if got := len(rcv.Requests()); got < n {
			return fmt.Errorf("%d requests", got)
		}
		return nil
	})
	if got := len(rcv.Requests()); got != n {
		t.Errorf("the endpoint saw %d requests, want %d", got, n)
	}
}

func TestWebhookStopsRetryingWhenCancelled(t *testing.T) {
	rcv := fakefedora.NewWebhookReceiver(hookSecret, fakefedora.WebhookAnswer{Status: 503})
	defer rcv.Close()
	s := NewWebhookSender(WebhookOptions{Timeout: time.Second, Attempts: 3,
		Backoff: backoff.Policy{Base: time.Minute, Max: time.Minute}}, Archive{Dir: t.TempDir()})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, sent, err := s.Deliver(ctx, hookTo(rcv), exampleNotification(t))
	if !errors.Is(err, context.DeadlineExceeded) || sent {
		t.Errorf("Deliver = %v, sent %v; want the context's error", err, sent)
	}
	if len(rcv.Requests()) != 1 {
		t.Errorf("%d requests, want 1", len(rcv.Requests()))
	}
}

func TestSignWebhook(t *testing.T) {
	body := []byte(`{"compose_id":"Fedora-Rawhide-20261122.n.0"}`)
	sig := SignWebhook([]byte("key"), body)
	// echo -n '{"compose_id":"Fedora-Rawhide-20261122.n.0"}' | openssl dgst -sha256 -hmac key
	const want = "sha256=f20d8138a63eeda45b2884a1e0c1a702bc23c5cd7fff83d55b0def353ab3995a"
	if sig != want {
		t.Fatalf("SignWebhook = %q, want %q", sig, want)
	}
	for _, tt := range []struct {
		secret, body, sig string
		ok                bool
	}{
		{"key", string(body), sig, true},
		{"other", string(body), sig, false},
		{"key", string(body) + " ", sig, false},
		{"key", string(body), strings.TrimPrefix(sig, "sha256="), false},
		{"key", string(body), "sha256=zz", false},
		{"key", string(body), "sha1=" + strings.TrimPrefix(sig, "sha256="), false},
	} {
		if got := VerifyWebhook([]byte(tt.secret), []byte(tt.body), tt.sig); got != tt.ok {
			t.Errorf("VerifyWebhook(%q, %q, %q) = %v", tt.secret, tt.body, tt.sig, got)
		}
	}
}

func TestDeliveryID(t *testing.T) {
	id := DeliveryID(ChannelWebhook, "https://example.org/hook", curID, "abc")
	if len(id) != 36 || id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
		t.Errorf("DeliveryID = %q, want a version 4 UUID", id)
	}
	if id != DeliveryID(ChannelWebhook, "https://example.org/hook", curID, "abc") {
		t.Error("DeliveryID is not deterministic")
	}
	for _, other := range []string{
		DeliveryID(ChannelAMQP, "https://example.org/hook", curID, "abc"),
		DeliveryID(ChannelWebhook, "https://example.org/hook2", curID, "abc"),
		DeliveryID(ChannelWebhook, "https://example.org/hook", prevID, "abc"),
		DeliveryID(ChannelWebhook, "https://example.org/hook", curID, "abd"),
	} {
		if other == id {
			t.Errorf("two deliveries share the id %s", id)
		}
	}
}

func TestDeliveriesLedger(t *testing.T) {
	a := Archive{Dir: t.TempDir()}
	ctx := t.Context()
	if _, ok, err := a.Delivered(ctx, curID, "x"); ok || err != nil {
		t.Fatalf("an empty archive has a delivery: %v, %v", ok, err)
	}
	d1 := Delivery{ID: "1", Channel: ChannelWebhook, Endpoint: "https://a/", Version: "v1", DeliveredAt: generatedAt, Attempts: 1, Status: 204}
	d2 := Delivery{ID: "2", Channel: ChannelAMQP, Endpoint: "amqp://b/ amq.topic t", Version: "v1", DeliveredAt: generatedAt}
	for _, d := range []Delivery{d1, d2, d1} {
		if err := a.RecordDelivery(ctx, curID, d); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.DeliveriesOf(ctx, curID)
	if err != nil || len(got) != 2 {
		t.Fatalf("DeliveriesOf = %+v, %v", got, err)
	}
	if d, ok, err := a.Delivered(ctx, curID, "2"); !ok || err != nil || d != d2 {
		t.Errorf("Delivered(2) = %+v, %v, %v", d, ok, err)
	}
	if _, ok, _ := a.Delivered(ctx, prevID, "2"); ok {
		t.Error("a delivery of one compose counts for another")
	}
	if err := a.RecordDelivery(ctx, "../../etc", d1); err == nil {
		t.Error("recorded a delivery outside the archive")
	}
	var _ Deliveries = a
	b, err := json.Marshal(got)
	if err != nil || strings.Contains(string(b), "null") {
		t.Errorf("ledger JSON %s, %v", b, err)
	}
}
