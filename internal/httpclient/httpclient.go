// Package httpclient builds the one retrying HTTP client every remote call of
// composeci goes through: the compose mirror, Koji and openQA.
//
// It wraps go-retryablehttp with the policy composeci wants everywhere:
// retries with exponential backoff on transport errors, 5xx and 429 (never on
// other 4xx: a 404 is an answer), a Retry-After that is clamped to the
// maximum wait, a per-request timeout, a slog logger instead of the library's
// stderr logger, and a round-trip counter so callers can say how many
// requests an answer cost.
//
// An answer whose body is cut short (the connection closed before the
// Content-Length was read, a timeout mid-body) is a failed round trip like
// a reset connection, and retried like one, for every body of up to
// EagerBodyLimit bytes: those are read within the round trip. Longer bodies
// are streamed to the caller, who sees the cut as a read error.
//
// A request whose method is not idempotent (POST, PATCH) may have been acted
// on when its answer is lost, so it is never sent again after one unless
// nothing reached the server (the connection could not be made) or the
// server said it did nothing (429, 503), or the caller marked it as safe to
// repeat with Replayable (a read sent as POST, like an XML-RPC query).
package httpclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Options configures a Client. The zero value is usable: it gets the defaults
// documented on each field.
type Options struct {
	// Timeout bounds one attempt (connect, headers and body). Default 30s.
	Timeout time.Duration
	// RetryMax is the number of retries after the first attempt. Default 4.
	// A negative value disables retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff. Defaults 200ms and 5s.
	RetryWaitMin, RetryWaitMax time.Duration
	// Logger receives retry decisions at debug level. Default: discard.
	Logger *slog.Logger
	// UserAgent is sent on every request. Default "composeci".
	UserAgent string
	// Transport is the underlying round tripper. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
}

// Client is a retrying HTTP client that counts its round trips and the
// ones that failed.
type Client struct {
	*retryablehttp.Client
	roundTrips, failures *atomic.Int64
}

// New returns a Client with opts applied.
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = 4
	}
	if opts.RetryMax < 0 {
		opts.RetryMax = 0
	}
	if opts.RetryWaitMin <= 0 {
		opts.RetryWaitMin = 200 * time.Millisecond
	}
	if opts.RetryWaitMax <= 0 {
		opts.RetryWaitMax = 5 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "composeci"
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	counter, failures := &atomic.Int64{}, &atomic.Int64{}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{
		Timeout:   opts.Timeout,
		Transport: &countingTransport{next: base, n: counter, failures: failures, userAgent: opts.UserAgent},
	}
	rc.RetryMax = opts.RetryMax
	rc.RetryWaitMin = opts.RetryWaitMin
	rc.RetryWaitMax = opts.RetryWaitMax
	rc.CheckRetry = CheckRetry
	rc.Backoff = clampedBackoff
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	if opts.Logger != nil {
		rc.Logger = leveled{opts.Logger}
	} else {
		rc.Logger = nil
	}
	return &Client{Client: rc, roundTrips: counter, failures: failures}
}

// WithRedirectCheck returns a client that shares c's transport, retry
// policy, timeout and counters but decides on redirects with check, as
// http.Client.CheckRedirect does (check returns an error to refuse one; the
// refused redirect's target is never requested, and a refusal is an answer,
// never retried). c itself is unchanged.
func (c *Client) WithRedirectCheck(check func(req *http.Request, via []*http.Request) error) *Client {
	o := c.Client
	hc := *o.HTTPClient
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := check(req, via); err != nil {
			return &redirectRefused{err}
		}
		return nil
	}
	rc := &retryablehttp.Client{HTTPClient: &hc, Logger: o.Logger, RetryWaitMin: o.RetryWaitMin, RetryWaitMax: o.RetryWaitMax,
		RetryMax: o.RetryMax, RequestLogHook: o.RequestLogHook, ResponseLogHook: o.ResponseLogHook, CheckRetry: o.CheckRetry,
		Backoff: o.Backoff, ErrorHandler: o.ErrorHandler, PrepareRetry: o.PrepareRetry}
	return &Client{Client: rc, roundTrips: c.roundTrips, failures: c.failures}
}

// Do sends req under the retry policy (see CheckRetry). A request that may
// not be repeated and whose answer was lost fails with a *LostAnswerError,
// whatever error the attempt ended with (http.Client replaces a transport
// error with its own when its timeout fires).
func (c *Client) Do(req *retryablehttp.Request) (*http.Response, error) {
	st := &attemptState{}
	req = req.WithContext(context.WithValue(req.Context(), attemptKey{}, st))
	resp, err := c.Client.Do(req)
	if la := (*LostAnswerError)(nil); err != nil && st.lost.Load() && !errors.As(err, &la) {
		err = &LostAnswerError{Method: req.Method, Err: err}
	}
	return resp, err
}

// attemptState is what the transport tells the retry policy of a request
// sent by Client.Do: its answer was lost when it may not be repeated.
type attemptState struct{ lost atomic.Bool }

type attemptKey struct{}

// RoundTrips reports how many HTTP requests went out, retries included.
func (c *Client) RoundTrips() int64 { return c.roundTrips.Load() }

// Failures reports how many round trips failed: no answer (a transport
// error, a timeout) or an HTTP status of 400 or more.
func (c *Client) Failures() int64 { return c.failures.Load() }

// CheckRetry retries transport errors, 5xx (but 501) and 429, and nothing
// else: a 4xx other than 429 is an answer, not a failure to get one. A
// cancelled or expired context is never retried. Nor is a request that is
// not idempotent and not Replayable, once it may have reached the server:
// after a lost answer (a timeout, a reset, a body cut short) or an answer of
// 5xx other than 503.
func CheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if rr := (*redirectRefused)(nil); errors.As(err, &rr) {
		return false, nil
	}
	if la := (*LostAnswerError)(nil); errors.As(err, &la) {
		return false, nil
	}
	if st, ok := ctx.Value(attemptKey{}).(*attemptState); ok && st.lost.Load() {
		return false, nil
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	unsafe := resp.Request != nil && !mayRepeat(resp.Request)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, nil
	case resp.StatusCode == http.StatusNotImplemented:
		return false, nil
	case resp.StatusCode == http.StatusServiceUnavailable:
		return true, nil
	case resp.StatusCode >= 500:
		return !unsafe, nil
	}
	return false, nil
}

// LostAnswerError is the failure of a request that is not idempotent (and
// not Replayable) after it may have reached the server: the server may have
// acted on it. It is never retried; the caller must find out what happened
// before sending it again.
type LostAnswerError struct {
	Method string
	Err    error
}

func (e *LostAnswerError) Error() string {
	return fmt.Sprintf("%s: answer lost, the server may have acted on it: %v", e.Method, e.Err)
}
func (e *LostAnswerError) Unwrap() error { return e.Err }

type replayableKey struct{}

// Replayable returns a context under which requests are safe to send again
// after a lost answer whatever their method: an XML-RPC query is a POST that
// changes nothing.
func Replayable(ctx context.Context) context.Context {
	return context.WithValue(ctx, replayableKey{}, true)
}

// mayRepeat reports whether r may be sent again after the server may have
// seen it.
func mayRepeat(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	v, _ := r.Context().Value(replayableKey{}).(bool)
	return v
}

// nothingSent reports whether err is a failure to connect, before any byte
// of the request could reach the server.
func nothingSent(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// EagerBodyLimit is the size up to which an answer's body is read within
// its round trip, so that a body cut short is retried as a failed round
// trip. 16 MiB holds any Koji multicall answer of a nightly (300 tasks are
// under 1 MB), a page of 1000 openQA jobs (a few MB) and every productmd
// file but rpms.json, which is streamed.
const EagerBodyLimit = 16 << 20

// redirectRefused is a redirect a check of WithRedirectCheck refused.
type redirectRefused struct{ err error }

func (e *redirectRefused) Error() string { return e.err.Error() }
func (e *redirectRefused) Unwrap() error { return e.err }

// clampedBackoff is retryablehttp's default backoff, except that a
// Retry-After header can never make a client wait longer than max.
func clampedBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	d := retryablehttp.DefaultBackoff(min, max, attempt, resp)
	if d > max {
		d = max
	}
	return d
}

type countingTransport struct {
	next      http.RoundTripper
	n         *atomic.Int64
	failures  *atomic.Int64
	userAgent string
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", t.userAgent)
	}
	resp, err := t.next.RoundTrip(r)
	if err == nil {
		err = readEagerly(r, resp)
	}
	if err != nil && !mayRepeat(r) && !nothingSent(err) {
		err = &LostAnswerError{Method: r.Method, Err: err}
		if st, ok := r.Context().Value(attemptKey{}).(*attemptState); ok {
			st.lost.Store(true)
		}
	}
	if err != nil || resp.StatusCode >= 400 {
		t.failures.Add(1)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// readEagerly reads a body of up to EagerBodyLimit bytes into memory
// (closing the connection's body), so that a body cut short is an error of
// the round trip. A longer body, or one of unknown length that turns out
// longer, is handed on as a stream, its first part read already.
func readEagerly(r *http.Request, resp *http.Response) error {
	if r.Method == http.MethodHead || resp.Body == nil || resp.Body == http.NoBody || resp.ContentLength > EagerBodyLimit {
		return nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, EagerBodyLimit+1))
	if err != nil {
		resp.Body.Close()
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(buf) > EagerBodyLimit {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
		return nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(buf))
	return nil
}

type leveled struct{ l *slog.Logger }

func (l leveled) Error(msg string, kv ...any) { l.l.Debug("http: "+msg, kv...) }
func (l leveled) Info(msg string, kv ...any)  { l.l.Debug("http: "+msg, kv...) }
func (l leveled) Debug(msg string, kv ...any) { l.l.Debug("http: "+msg, kv...) }
func (l leveled) Warn(msg string, kv ...any)  { l.l.Debug("http: "+msg, kv...) }

// StatusError is returned for an HTTP answer that is not the one a caller
// wanted. Callers branch on it with errors.As, or on ErrNotFound with
// errors.Is.
type StatusError struct {
	URL  string
	Code int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

// Is makes a 404 StatusError match ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Code == http.StatusNotFound
}

// ErrNotFound matches a StatusError with code 404.
var ErrNotFound = errors.New("not found")

// Temporary reports whether err is a failure to get an answer that may
// pass by itself, so that a caller who can wait (a poll) tries again later:
// a StatusError of 408, 429 or 5xx, a transport error (a refused or reset
// connection, a timeout) or a body cut short. A host name that does not
// resolve is not: that is a wrong URL more often than an outage. An answer
// (404, 400, ...), a body that does not parse, and a cancelled context are
// not; nor can this tell a timeout from the caller's own deadline passing:
// check the caller's context first.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusRequestTimeout || se.Code == http.StatusTooManyRequests || se.Code >= 500
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Judge what went wrong, not the wrapper (itself a net.Error); a
		// server that closed the connection before answering is EOF.
		if errors.Is(ue.Err, io.EOF) {
			return true
		}
		err = ue.Err
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}
