package koji_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
)

// testNow is the hub's (and client's) clock in most tests.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// fastHTTP is the retrying transport with test-sized waits.
func fastHTTP(retryMax int) *httpclient.Client {
	return httpclient.New(httpclient.Options{
		Timeout:      10 * time.Second,
		RetryMax:     retryMax,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
	})
}

// newHub starts a fake hub on 127.0.0.1 with its clock at testNow.
func newHub(t testing.TB) *fakefedora.KojiHub {
	t.Helper()
	h := fakefedora.NewKojiHub(fakefedora.KojiHubOptions{})
	h.SetNow(testNow)
	h.Start()
	t.Cleanup(h.Close)
	return h
}

// newClient returns a client of url; opts.URL and unset HTTP are filled in.
func newClient(t testing.TB, url string, opts koji.Options) *koji.Client {
	t.Helper()
	opts.URL = url
	if opts.HTTP == nil {
		opts.HTTP = fastHTTP(3)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	if opts.OfflineWait == 0 {
		opts.OfflineWait = time.Millisecond
	}
	c, err := koji.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// cannedServer answers every POST with body (HTTP 200, text/xml) and
// counts requests: for response shapes the fake hub, being faithful, never
// produces.
func cannedServer(t testing.TB, status int, body string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// response wraps one value's XML in a methodResponse as the hub writes it.
func response(value string) string {
	return "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n" + value + "\n</param>\n</params>\n</methodResponse>\n"
}
