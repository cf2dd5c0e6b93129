package fakefedora

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
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

// TestRandomFaults: each kind of random fault fails a request as it says —
// before processing (nothing happened: no jobs), or after (the jobs exist,
// the answer is lost: the client times out or reads a body cut short) — and
// the Koji hub's XML-RPC fault is a 200 with a <fault>, whose repeats the
// hub counts.
func TestRandomFaults(t *testing.T) {
	client := &http.Client{Timeout: 300 * time.Millisecond}
	for _, tt := range []struct {
		kind       FaultKind
		status     int  // answered, when the answer arrives whole
		lost       bool // no whole answer: timeout or body cut short
		jobs       bool // the POST took effect
		retryAfter string
	}{
		{FaultHTTP500, 500, false, false, ""},
		{FaultHTTP502, 502, false, false, ""},
		{FaultHTTP503, 503, false, false, "0"},
		{FaultTooMany, 429, false, false, "0"},
		{FaultTimeout, 0, true, true, ""},
		{FaultTruncated, 0, true, true, ""},
	} {
		t.Run(string(tt.kind), func(t *testing.T) {
			s := newTestOpenQA(t, OpenQAOptions{})
			s.SetRandomFaults(RandomFaultOptions{P: 1, Kinds: []FaultKind{tt.kind}, Hold: 5 * time.Second})
			form := url.Values{"DISTRI": {"fedora"}, "VERSION": {"Rawhide"}, "FLAVOR": {"Server-dvd-iso"}, "ARCH": {"x86_64"},
				"BUILD": {"Fedora-Rawhide-20261123.n.0"}, "ISO": {"x.iso"}}
			req, _ := http.NewRequest(http.MethodPost, s.URL()+"/api/v1/isos", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			sign(req, op())
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			switch {
			case tt.lost && err == nil:
				t.Errorf("HTTP %d, a whole answer; want it lost", resp.StatusCode)
			case !tt.lost && err != nil:
				t.Errorf("no answer: %v", err)
			case !tt.lost && (resp.StatusCode != tt.status || resp.Header.Get("Retry-After") != tt.retryAfter):
				t.Errorf("HTTP %d, Retry-After %q; want %d, %q", resp.StatusCode, resp.Header.Get("Retry-After"), tt.status, tt.retryAfter)
			}
			created := s.JobSetsCreated()["Fedora-Rawhide-20261123.n.0 Server-dvd-iso x86_64"]
			if (created == 1) != tt.jobs || created > 1 {
				t.Errorf("job sets created: %d; want the POST to take effect: %v", created, tt.jobs)
			}
			if n := s.RandomFaultCounts()[tt.kind]; n != 1 {
				t.Errorf("counted %d faults of the kind", n)
			}
		})
	}

	t.Run("koji "+string(FaultXMLRPCFault), func(t *testing.T) {
		hub := NewKojiHub(KojiHubOptions{})
		u := hub.Start()
		defer hub.Close()
		hub.SetRandomFaults(RandomFaultOptions{P: 1, Kinds: []FaultKind{FaultXMLRPCFault}})
		call := "<?xml version='1.0'?><methodCall><methodName>getAPIVersion</methodName><params></params></methodCall>"
		for i := range 2 {
			resp, err := http.Post(u, "text/xml", strings.NewReader(call))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "<fault>") || !strings.Contains(string(b), "<int>1000</int>") {
				t.Errorf("answer %d: HTTP %d\n%s", i, resp.StatusCode, b)
			}
		}
		if n, m := hub.XMLRPCFaultRepeats(0), hub.XMLRPCFaultRepeats(time.Nanosecond); n != 1 || m != 0 {
			t.Errorf("repeats of a faulted call: %d (%d within 1ns), want 1 (0)", n, m)
		}
	})

	t.Run("seeded", func(t *testing.T) {
		seq := func(seed uint64) []FaultKind {
			f := newRandomFaults("mirror", RandomFaultOptions{Seed: seed, P: 0.3})
			var out []FaultKind
			for range 200 {
				out = append(out, f.pick())
			}
			return out
		}
		a, b, c := seq(7), seq(7), seq(8)
		if !slices.Equal(a, b) || slices.Equal(a, c) {
			t.Errorf("seed 7 twice gave different faults, or seed 8 the same as 7")
		}
		hit := 0
		for _, k := range a {
			if k != "" {
				hit++
			}
		}
		if hit < 30 || hit > 90 {
			t.Errorf("%d of 200 requests faulted with P 0.3", hit)
		}
	})
}
