package fakefedora

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/composeci/composeci/internal/testenv"
)

func TestWebhookReceiver(t *testing.T) {
	const secret = "s3cret"
	r := NewWebhookReceiver(secret, WebhookAnswer{Status: 503, RetryAfter: "2"}, WebhookAnswer{Status: 400})
	defer r.Close()
	sign := func(key string, body []byte) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	body := []byte(`{"compose_id":"Fedora-Rawhide-20261122.n.0"}`)
	tests := []struct {
		name        string
		sig, ctype  string
		body        []byte
		status      int
		retryAfter  string
		signatureOK bool
	}{
		{"a bad signature is refused, whatever the script", sign("other", body), "application/json", body, 401, "", false},
		{"no signature is refused", "", "application/json", body, 401, "", false},
		{"signed: the first scripted answer", sign(secret, body), "application/json", body, 503, "2", true},
		{"signed but not JSON", sign(secret, []byte("x")), "application/json", []byte("x"), 400, "", true},
		{"signed: the second scripted answer", sign(secret, body), "application/json; charset=utf-8", body, 400, "", true},
		{"signed: then 200", sign(secret, body), "application/json", body, 200, "", true},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.ctype)
		req.Header.Set("X-Composeci-Signature", tt.sig)
		req.Header.Set("X-Composeci-Delivery", "d-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter {
			t.Errorf("%s: %d (Retry-After %q), want %d", tt.name, resp.StatusCode, resp.Header.Get("Retry-After"), tt.status)
		}
	}
	reqs := r.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	for i, q := range reqs {
		if q.SignatureOK != tests[i].signatureOK || q.Status != tests[i].status || q.Delivery != "d-1" || q.Path != "/hook" {
			t.Errorf("%s: recorded %+v", tests[i].name, q)
		}
	}
	if a := r.Accepted(); len(a) != 1 || !bytes.Equal(a[0].Body, body) {
		t.Errorf("Accepted = %+v", a)
	}

	// A stall the client gives up on is recorded without an answer.
	r.Script(WebhookAnswer{Stall: time.Minute})
	req, _ := http.NewRequest(http.MethodPost, r.URL(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Composeci-Signature", sign(secret, body))
	c := &http.Client{Timeout: 50 * time.Millisecond}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a stalled request was answered")
	}
	testenv.WaitFor(t, 5*time.Second, "the stalled request recorded", func() error {
		if reqs := r.Requests(); len(reqs) != len(tests)+1 || reqs[len(tests)].Status != 0 {
			return fmt.Errorf("%d requests, the last %+v", len(reqs), reqs[len(reqs)-1])
		}
		return nil
	})
}
