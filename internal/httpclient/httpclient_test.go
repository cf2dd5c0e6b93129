package httpclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name      string
		responses []int // status of each attempt; the last repeats
		wantCode  int
		wantHits  int32
		failures  int64
	}{
		{"ok", []int{200}, 200, 1, 0},
		{"404 is an answer", []int{404}, 404, 1, 1},
		{"400 is an answer", []int{400}, 400, 1, 1},
		{"503 then ok", []int{503, 503, 200}, 200, 3, 2},
		{"502 gives up", []int{502}, 502, 4, 4}, // 1 + RetryMax 3
		{"429 retried", []int{429, 200}, 200, 2, 1},
		{"501 not retried", []int{501}, 501, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			var ua atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := int(hits.Add(1)) - 1
				ua.Store(r.Header.Get("User-Agent"))
				code := tt.responses[min(n, len(tt.responses)-1)]
				if code == 429 {
					w.Header().Set("Retry-After", "3600") // must be clamped to RetryWaitMax
				}
				w.WriteHeader(code)
			}))
			defer srv.Close()
			c := New(Options{RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond})
			req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL, nil)
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || hits.Load() != tt.wantHits {
				t.Errorf("status %d after %d attempts, want %d after %d", resp.StatusCode, hits.Load(), tt.wantCode, tt.wantHits)
			}
			if c.RoundTrips() != int64(tt.wantHits) || c.Failures() != tt.failures {
				t.Errorf("RoundTrips() = %d, Failures() = %d, want %d, %d", c.RoundTrips(), c.Failures(), tt.wantHits, tt.failures)
			}
			if ua.Load() != "composeci" {
				t.Errorf("User-Agent %q", ua.Load())
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("Retry-After was not clamped")
			}
		})
	}
}

func TestTransportErrorsAndContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close() // connection refused from now on
	c := New(Options{RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	req, _ := retryablehttp.NewRequest(http.MethodGet, url, nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("no error from a closed server")
	}
	if c.RoundTrips() != 3 || c.Failures() != 3 {
		t.Errorf("transport errors retried %d times (%d failures), want 3 attempts, all failed", c.RoundTrips(), c.Failures())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ = retryablehttp.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if _, err := c.Do(req); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := New(Options{Timeout: 50 * time.Millisecond, RetryMax: -1})
	req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("a hung server did not time out")
	}
	if c.RoundTrips() != 1 {
		t.Errorf("RetryMax -1 made %d attempts", c.RoundTrips())
	}
}

func TestStatusError(t *testing.T) {
	err := error(&StatusError{URL: "http://x/y", Code: 404})
	if !errors.Is(err, ErrNotFound) || err.Error() != "GET http://x/y: HTTP 404 Not Found" {
		t.Errorf("%v", err)
	}
	if errors.Is(&StatusError{Code: 500}, ErrNotFound) {
		t.Error("500 matches ErrNotFound")
	}
}

func TestWithRedirectCheck(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/here" {
			return
		}
		target := other.URL + "/x"
		if r.URL.Path == "/local" {
			target = "/here"
		}
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer srv.Close()
	base := New(Options{RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
	refused := errors.New("refused")
	c := base.WithRedirectCheck(func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != strings.TrimPrefix(srv.URL, "http://") {
			return refused
		}
		return nil
	})
	for _, tt := range []struct {
		path string
		want error
	}{{"/local", nil}, {"/away", refused}} {
		req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		resp, err := c.Do(req)
		if resp != nil {
			resp.Body.Close()
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.path, err, tt.want)
		}
	}
	if elsewhere.Load() != 0 {
		t.Error("the refused redirect was followed")
	}
	// The counters are shared, a refusal is not retried, and the original
	// client still follows redirects.
	if c.RoundTrips() != 3 || base.RoundTrips() != 3 {
		t.Errorf("round trips %d and %d, want 3 for both", c.RoundTrips(), base.RoundTrips())
	}
	req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL+"/away", nil)
	if resp, err := base.Do(req); err != nil || elsewhere.Load() != 1 {
		t.Errorf("the original client: %v, %d requests elsewhere", err, elsewhere.Load())
	} else {
		resp.Body.Close()
	}
}

func TestTemporary(t *testing.T) {
	refused := func() error {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		u := srv.URL
		srv.Close()
		c := New(Options{RetryMax: -1})
		req, _ := retryablehttp.NewRequest(http.MethodGet, u, nil)
		_, err := c.Do(req)
		return err
	}()
	timeout := func() error {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
		defer srv.Close()
		c := New(Options{Timeout: 20 * time.Millisecond, RetryMax: -1})
		req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL, nil)
		_, err := c.Do(req)
		return err
	}()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", &StatusError{URL: "http://x", Code: 503}, true},
		{"429", fmt.Errorf("reading: %w", &StatusError{URL: "http://x", Code: 429}), true},
		{"408", &StatusError{URL: "http://x", Code: 408}, true},
		{"404 is an answer", &StatusError{URL: "http://x", Code: 404}, false},
		{"400 is an answer", &StatusError{URL: "http://x", Code: 400}, false},
		{"connection refused", refused, true},
		{"connection refused, unwrapped", fmt.Errorf("GET x: %w", errors.Unwrap(refused)), true},
		{"a timeout", timeout, true},
		{"a body cut short", fmt.Errorf("GET x: %w", io.ErrUnexpectedEOF), true},
		{"an unknown host", fmt.Errorf("GET x: %w", &net.DNSError{Err: "no such host", Name: "kojii.example", IsNotFound: true}), false},
		{"cancelled", fmt.Errorf("GET x: %w", &url.Error{Op: "Get", URL: "http://x", Err: context.Canceled}), false},
		{"a body that does not parse", errors.New("images.json: unexpected end of JSON input"), false},
	} {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("%s: Temporary(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestLostAnswers: an answer cut short or never sent is retried for a
// request that may be repeated (GET, or a POST marked Replayable) and never
// for one that may not (a POST): the server may have acted on it. A POST is
// repeated after a 429 or 503 (the server did nothing), not after another
// 5xx.
func TestLostAnswers(t *testing.T) {
	const body = "the whole answer, which is long enough to be cut in two"
	tests := []struct {
		name       string
		method     string
		replayable bool
		fault      string // of the first attempt: "truncate", "hang", "500", "503"
		wantHits   int32
		wantErr    bool
		wantLost   bool
	}{
		{"GET, body cut short", http.MethodGet, false, "truncate", 2, false, false},
		{"GET, hung", http.MethodGet, false, "hang", 2, false, false},
		{"POST, body cut short", http.MethodPost, false, "truncate", 1, true, true},
		{"POST, hung", http.MethodPost, false, "hang", 1, true, true},
		{"POST, 500", http.MethodPost, false, "500", 1, false, false},
		{"POST, 503", http.MethodPost, false, "503", 2, false, false},
		{"replayable POST, body cut short", http.MethodPost, true, "truncate", 2, false, false},
		{"replayable POST, hung", http.MethodPost, true, "hang", 2, false, false},
		{"replayable POST, 500", http.MethodPost, true, "500", 2, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				if hits.Add(1) > 1 {
					_, _ = io.WriteString(w, body)
					return
				}
				switch tt.fault {
				case "truncate":
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					_, _ = io.WriteString(w, body[:10])
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				case "hang":
					<-r.Context().Done()
				case "500":
					w.WriteHeader(http.StatusInternalServerError)
				case "503":
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}))
			defer srv.Close()
			c := New(Options{Timeout: time.Second, RetryMax: 2, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond})
			ctx := context.Background()
			if tt.replayable {
				ctx = Replayable(ctx)
			}
			req, _ := retryablehttp.NewRequestWithContext(ctx, tt.method, srv.URL, strings.NewReader("form=1"))
			resp, err := c.Do(req)
			if hits.Load() != tt.wantHits {
				t.Errorf("%d attempts, want %d", hits.Load(), tt.wantHits)
			}
			var lost *LostAnswerError
			if errors.As(err, &lost) != tt.wantLost {
				t.Errorf("error %v: a lost answer %v, want %v", err, !tt.wantLost, tt.wantLost)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v", err, tt.wantErr)
			}
			if err != nil {
				if !Temporary(err) {
					t.Errorf("a lost answer is not Temporary: %v", err)
				}
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || (resp.StatusCode == 200 && string(got) != body) {
				t.Errorf("HTTP %d, body %q, %v", resp.StatusCode, got, err)
			}
		})
	}
}

// TestLongBodiesStream: a body longer than EagerBodyLimit is not read into
// memory first; the caller streams it.
func TestLongBodiesStream(t *testing.T) {
	size := EagerBodyLimit + 4096
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, size))
	}))
	defer srv.Close()
	c := New(Options{})
	req, _ := retryablehttp.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != int64(size) {
		t.Errorf("read %d bytes (%v), want %d", n, err, size)
	}
}
