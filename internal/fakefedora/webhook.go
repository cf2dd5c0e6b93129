package fakefedora

// This file is a webhook receiver: an HTTP endpoint that takes composeci's
// compose check notifications as docs/messages.md describes them — a JSON
// POST signed with HMAC-SHA256 in X-Composeci-Signature ("sha256=<hex>"),
// X-Composeci-Event and X-Composeci-Delivery — checks the signature with
// its own code (never composeci's: a misreading of the format must not
// pass on both sides), and answers as scripted, so tests can make an
// endpoint fail, stall or refuse.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// WebhookAnswer is how the receiver answers one request.
type WebhookAnswer struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Stall waits this long before answering, or until the client gives
	// up: longer than the client's timeout, it simulates a hung endpoint.
	Stall time.Duration
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Location, when set, is sent as the Location header (with a 3xx
	// Status, a redirect).
	Location string
}

// WebhookRequest is one request as the receiver saw it.
type WebhookRequest struct {
	Method, Path               string
	ContentType, UserAgent     string
	Event, Delivery, Signature string
	Body                       []byte
	// SignatureOK is true when Signature is the body's HMAC-SHA256 under
	// the receiver's secret.
	SignatureOK bool
	// Status is what the receiver answered; 0 when the client went away
	// during a stall.
	Status int
}

// WebhookReceiver is a webhook endpoint on 127.0.0.1. A request whose
// signature does not verify, or that is not a JSON POST, is answered 401
// or 400 whatever the script says; the others get the scripted answers in
// turn, then 200.
type WebhookReceiver struct {
	srv    *httptest.Server
	secret []byte

	mu       sync.Mutex
	answers  []WebhookAnswer
	requests []WebhookRequest
}

// NewWebhookReceiver starts a receiver that verifies signatures with
// secret and answers validly signed requests with answers, in turn, then
// 200. Close it when done.
func NewWebhookReceiver(secret string, answers ...WebhookAnswer) *WebhookReceiver {
	r := &WebhookReceiver{secret: []byte(secret), answers: answers}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL returns the endpoint's URL, e.g. http://127.0.0.1:41234/hook.
func (r *WebhookReceiver) URL() string { return r.srv.URL + "/hook" }

// Close shuts the receiver down.
func (r *WebhookReceiver) Close() { r.srv.Close() }

// Script replaces the answers still to give.
func (r *WebhookReceiver) Script(answers ...WebhookAnswer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = answers
}

// Requests returns every request received, in order.
func (r *WebhookReceiver) Requests() []WebhookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]WebhookRequest(nil), r.requests...)
}

// Accepted returns the requests answered with a 2xx status.
func (r *WebhookReceiver) Accepted() []WebhookRequest {
	var out []WebhookRequest
	for _, q := range r.Requests() {
		if q.Status >= 200 && q.Status < 300 {
			out = append(out, q)
		}
	}
	return out
}

func (r *WebhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	q := WebhookRequest{Method: req.Method, Path: req.URL.Path, ContentType: req.Header.Get("Content-Type"),
		UserAgent: req.Header.Get("User-Agent"), Event: req.Header.Get("X-Composeci-Event"),
		Delivery: req.Header.Get("X-Composeci-Delivery"), Signature: req.Header.Get("X-Composeci-Signature"), Body: body}
	q.SignatureOK = verifyHMAC(r.secret, body, q.Signature)
	var a WebhookAnswer
	switch {
	case !q.SignatureOK:
		a.Status = http.StatusUnauthorized
	case req.Method != http.MethodPost || !strings.HasPrefix(q.ContentType, "application/json") || !json.Valid(body):
		a.Status = http.StatusBadRequest
	default:
		r.mu.Lock()
		if len(r.answers) > 0 {
			a, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	if a.Stall > 0 {
		t := time.NewTimer(a.Stall)
		select {
		case <-req.Context().Done():
			t.Stop()
			r.record(q) // the client went away: no answer
			return
		case <-t.C:
		}
	}
	q.Status = a.Status
	r.record(q)
	if a.RetryAfter != "" {
		w.Header().Set("Retry-After", a.RetryAfter)
	}
	if a.Location != "" {
		w.Header().Set("Location", a.Location)
	}
	w.WriteHeader(a.Status)
}

func (r *WebhookReceiver) record(q WebhookRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, q)
}

// verifyHMAC checks a "sha256=<hex>" signature of body, in constant time.
func verifyHMAC(secret, body []byte, signature string) bool {
	hexSum, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}
