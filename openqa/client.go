package openqa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/composeci/composeci/internal/httpclient"
)

// DefaultBaseURL is Fedora's openQA instance.
const DefaultBaseURL = "https://openqa.fedoraproject.org"

// Errors callers branch on with errors.Is. Each is matched by an *APIError,
// which carries the details.
var (
	// ErrForbidden: openQA answered 403, JSON (authentication: wrong
	// secret, stale timestamp, no or unknown key, not an operator) or text
	// (an asset host outside the download allow-list).
	ErrForbidden = errors.New("openqa: forbidden")
	// ErrAuthRefused: openQA refused the request's credentials — 401, or
	// a 403 with a JSON body (no key, an unknown key, a wrong secret, a
	// stale timestamp, a key whose user is not an operator), as opposed to
	// the text/plain 403 of an asset host outside the allow-list. No
	// request with the same credentials will fare better.
	ErrAuthRefused = errors.New("openqa: authentication refused")
	// ErrBadRequest: openQA answered 400, e.g. "Error: missing
	// parameters: FLAVOR ARCH".
	ErrBadRequest = errors.New("openqa: bad request")
	// ErrNoJobs: openQA answered 200 but created nothing, with an error
	// ("no products found for ...") or count 0. openQA reports these with
	// a success status, so only the body tells.
	ErrNoJobs = errors.New("openqa: no jobs created")
	// ErrNotFound: openQA answered 404 (no such job, no templates for a
	// product).
	ErrNotFound = errors.New("openqa: not found")
)

// APIError is an answer of openQA that is not the one asked for: a non-2xx
// status, or a 200 whose body carries an error or creates no jobs.
type APIError struct {
	Method     string
	Path       string // path and query of the request
	StatusCode int
	// Message is openQA's own words: the "error" of a JSON body, or the
	// text of a text/plain body.
	Message string
	// JSON tells a JSON error body ({"error": ..., "error_status": ...})
	// from a text/plain one.
	JSON bool
	// NoCredentials is set when the request went out unsigned, so a 403
	// can say what to do about it.
	NoCredentials bool
	// RetryAfter is the wait a 429 or 503 asked for (Retry-After in
	// seconds), or 0.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("openqa: %s %s: HTTP %d: %s", e.Method, e.Path, e.StatusCode, msg)
	if e.StatusCode == http.StatusForbidden && e.NoCredentials {
		s += " (no openQA API key configured: set --openqa-key and --openqa-secret or --openqa-secret-file)"
	}
	return s
}

// Is matches the sentinel errors above.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrAuthRefused:
		return e.StatusCode == http.StatusUnauthorized || (e.StatusCode == http.StatusForbidden && e.JSON)
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrNoJobs:
		return e.StatusCode >= 200 && e.StatusCode < 300
	}
	return false
}

// Temporary reports whether trying again later may succeed (5xx, 429).
func (e *APIError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests
}

// IsTemporary reports whether a request that failed with err may succeed
// later: openQA answered 5xx or 429, or did not answer at all (a refused
// or reset connection, a timeout). Any other answer is final, and so is a
// cancelled context (a caller's deadline is not told from a timeout: check
// the context first).
func IsTemporary(err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	return httpclient.Temporary(err)
}

// Options configures a Client. Only BaseURL is commonly set; the zero value
// talks anonymously to Fedora's instance.
type Options struct {
	// BaseURL of the openQA server, without /api/v1. Default DefaultBaseURL.
	BaseURL string
	// Credentials sign requests; empty means anonymous (reads only).
	Credentials Credentials
	// HTTP configures the retrying client of reads (GET). Its Transport,
	// if set, is wrapped with the signer.
	HTTP httpclient.Options
	// PostTimeout bounds one scheduling POST. openQA creates the jobs
	// synchronously and can take minutes on a busy instance (the Perl
	// client allows 10 minutes of inactivity). Default 10 minutes, the
	// Perl client's: jobs a POST cut short by the client may still be
	// created, after the re-check has looked for them.
	PostTimeout time.Duration
	// PostAttempts bounds how often one product is posted after failures
	// that may be temporary; before each new attempt the build's jobs are
	// checked again. Default 3.
	PostAttempts int
	// RecheckDelay is the wait between a failed POST and the check of the
	// build's jobs, giving a POST that went through but whose answer was
	// lost time to finish. Default 5s; negative means no wait.
	RecheckDelay time.Duration
	// PageSize is the limit asked for per page of jobs. Default 1000.
	PageSize int
	// Logger gets debug and info records. Default: discard.
	Logger *slog.Logger
	// Now is the clock for signatures. Default time.Now.
	Now func() time.Time
}

// Client talks to one openQA server.
type Client struct {
	base   *url.URL
	creds  Credentials
	get    *httpclient.Client // retrying: reads are idempotent
	post   *httpclient.Client // never retries by itself: see Schedule
	log    *slog.Logger
	opts   Options
	apiURL string
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("openqa: base URL %q: want http(s)://host", opts.BaseURL)
	}
	if base.Path != "" {
		// openQA would prepend its base_url path to the signed string;
		// composeci signs the request target as sent, so a path prefix
		// is not supported.
		return nil, fmt.Errorf("openqa: base URL %q: a path prefix is not supported", opts.BaseURL)
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = 10 * time.Minute
	}
	if opts.PostAttempts <= 0 {
		opts.PostAttempts = 3
	}
	if opts.RecheckDelay < 0 {
		opts.RecheckDelay = 0
	} else if opts.RecheckDelay == 0 {
		opts.RecheckDelay = 5 * time.Second
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 1000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	inner := opts.HTTP.Transport
	if inner == nil {
		inner = http.DefaultTransport.(*http.Transport).Clone()
	}
	signer := &signingTransport{creds: opts.Credentials, now: opts.Now, next: inner}
	getOpts := opts.HTTP
	getOpts.Transport = signer
	if getOpts.Logger == nil {
		getOpts.Logger = opts.Logger
	}
	postOpts := getOpts
	postOpts.RetryMax = -1
	postOpts.Timeout = opts.PostTimeout
	return &Client{
		base:   base,
		creds:  opts.Credentials,
		get:    httpclient.New(getOpts),
		post:   httpclient.New(postOpts),
		log:    opts.Logger,
		opts:   opts,
		apiURL: base.String() + "/api/v1",
	}, nil
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

// RoundTrips reports how many HTTP requests the client sent, retries
// included.
func (c *Client) RoundTrips() int64 { return c.get.RoundTrips() + c.post.RoundTrips() }

// Failures reports how many of those failed: no answer, or an HTTP status
// of 400 or more (a refused key, a server error).
func (c *Client) Failures() int64 { return c.get.Failures() + c.post.Failures() }

// JobURL returns the web page of a job: {base}/tests/{id}.
func (c *Client) JobURL(id int64) string {
	return c.base.String() + "/tests/" + strconv.FormatInt(id, 10)
}

// HasCredentials reports whether the client signs its requests: writes
// (scheduling, restarting) need it.
func (c *Client) HasCredentials() bool { return !c.creds.Empty() }

// OverviewURL returns the web overview of a build, as fedora_openqa
// builds it: {base}/tests/overview?distri=fedora&version=<v>&build=<b>.
func (c *Client) OverviewURL(version, build string) string {
	return c.base.String() + "/tests/overview?distri=fedora&version=" + url.QueryEscape(version) +
		"&build=" + url.QueryEscape(build)
}

// Get sends a signed GET /api/v1/<path>?<query> (retried on transport
// errors, 5xx and 429) and decodes the JSON answer into out.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	target := c.apiURL + "/" + strings.TrimLeft(path, "/")
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	_, err := c.getURL(ctx, target, out)
	return err
}

// getURL GETs an absolute URL on the server and returns the response
// headers.
func (c *Client) getURL(ctx context.Context, target string, out any) (http.Header, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("openqa: %w", err)
	}
	return c.do(c.get, req, out)
}

// Post sends a signed POST /api/v1/<path> with form as an
// application/x-www-form-urlencoded body, so the signed string is just the
// path. It is never retried automatically: a POST that creates jobs must be
// checked, not repeated (see Schedule).
func (c *Client) Post(ctx context.Context, path string, form url.Values, out any) error {
	target := c.apiURL + "/" + strings.TrimLeft(path, "/")
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("openqa: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = c.do(c.post, req, out)
	return err
}

// maxBody bounds what is read of an answer; a build's jobs page of 1000
// jobs is a few MB.
const maxBody = 256 << 20

func (c *Client) do(hc *httpclient.Client, req *retryablehttp.Request, out any) (http.Header, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("openqa: %s %s: %w", req.Method, req.URL.RequestURI(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("openqa: %s %s: reading answer: %w", req.Method, req.URL.RequestURI(), err)
	}
	apiErr := &APIError{
		Method: req.Method, Path: req.URL.RequestURI(), StatusCode: resp.StatusCode,
		NoCredentials: c.creds.Empty(),
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			if n, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && n > 0 {
				apiErr.RetryAfter = time.Duration(n) * time.Second
			}
		}
		apiErr.JSON = isJSON
		apiErr.Message = errorMessage(body, isJSON)
		return nil, apiErr
	}
	if !isJSON {
		apiErr.Message = "answer is not JSON (" + mt + "): " + snippet(body)
		return nil, apiErr
	}
	// A 200 can still be a failure: openQA puts "no products found" and
	// similar in an "error" field with a success status.
	var probe struct {
		Error any `json:"error"`
	}
	if err := json.Unmarshal(body, &probe); err == nil && probe.Error != nil && probe.Error != "" {
		apiErr.JSON, apiErr.Message = true, fmt.Sprint(probe.Error)
		return nil, apiErr
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return nil, fmt.Errorf("openqa: %s %s: decoding answer: %w", req.Method, req.URL.RequestURI(), err)
		}
	}
	return resp.Header, nil
}

// errorMessage extracts openQA's words from an error body.
func errorMessage(body []byte, isJSON bool) string {
	if isJSON {
		var e struct {
			Error any `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != nil {
			return fmt.Sprint(e.Error)
		}
	}
	return snippet(body)
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 500 {
		b = append(b[:500:500], "…"...)
	}
	return string(b)
}
