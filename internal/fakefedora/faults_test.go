package fakefedora

import (
	"net/http"
	"strings"
	"testing"
)

// TestOutagesAnswerWithRetryAfter: the injected outages of the mirror, the
// Koji hub and openQA answer 503 with the Retry-After set, then serve as
// before.
func TestOutagesAnswerWithRetryAfter(t *testing.T) {
	m := NewMirror()
	m.MustAddCompose(ComposeSpec{ID: "Fedora-Rawhide-20261122.n.0", Status: "FINISHED"})
	root := m.Start()
	defer m.Close()
	m.SetRetryAfter("0")
	m.FailHTTP(2, http.StatusServiceUnavailable)

	hub := NewKojiHub(KojiHubOptions{})
	hubURL := hub.Start()
	defer hub.Close()
	hub.SetRetryAfter("0")
	hub.FailHTTP(2, http.StatusServiceUnavailable)

	oq := NewOpenQA(OpenQAOptions{})
	defer oq.Close()
	oq.InjectFault(OpenQAFault{Method: "GET", Path: "/api/v1/jobs", Status: http.StatusServiceUnavailable, RetryAfter: "0", Times: 2})

	for _, tt := range []struct {
		name, method, url, body string
		ok                      int
	}{
		{"mirror", "GET", root + "/rawhide/Fedora-Rawhide-20261122.n.0/STATUS", "", http.StatusOK},
		{"koji", "POST", hubURL, "<?xml version='1.0'?><methodCall><methodName>getAPIVersion</methodName><params></params></methodCall>", http.StatusOK},
		{"openqa", "GET", oq.URL() + "/api/v1/jobs?build=x", "", http.StatusOK},
	} {
		for i := range 3 {
			req, _ := http.NewRequest(tt.method, tt.url, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want, retryAfter := http.StatusServiceUnavailable, "0"
			if i == 2 {
				want, retryAfter = tt.ok, ""
			}
			if resp.StatusCode != want || resp.Header.Get("Retry-After") != retryAfter {
				t.Errorf("%s request %d: HTTP %d, Retry-After %q; want %d, %q", tt.name, i+1, resp.StatusCode, resp.Header.Get("Retry-After"), want, retryAfter)
			}
		}
	}
	if n := m.RequestsOf("failed"); n != 2 {
		t.Errorf("mirror counted %d failed requests, want 2", n)
	}
}
