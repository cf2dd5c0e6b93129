package koji

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/composeci/composeci/internal/httpclient"
	"github.com/hashicorp/go-retryablehttp"
	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/singleflight"
)

// Defaults for Options.
const (
	DefaultBatchSize        = 100
	DefaultCacheTTL         = 5 * time.Minute
	DefaultOfflineWait      = 5 * time.Second
	DefaultMaxResponseBytes = 256 << 20
)

// Options configures a Client. Only URL is required.
type Options struct {
	// URL is the hub's XML-RPC endpoint, e.g.
	// https://koji.fedoraproject.org/kojihub.
	URL string
	// HTTP is the retrying transport. Default: httpclient.New with Timeout
	// and Logger. It may be shared with other clients: the Koji client
	// uses its settings and transport through a counting layer of its own,
	// so Stats().RoundTrips counts only Koji's requests.
	HTTP *httpclient.Client
	// Timeout bounds one HTTP attempt when HTTP is nil. Default 60s: a
	// large listTasks on a busy hub is slow. The whole call is bounded by
	// the context.
	Timeout time.Duration
	// Logger receives debug logs. Default: discard.
	Logger *slog.Logger
	// BatchSize is the most calls one multicall request carries. Koji's own
	// tools use 10 to 10000; 100 keeps requests far below the hub's 4 MiB
	// limit. Default 100.
	BatchSize int
	// CacheTTL is how long query answers are kept. Default 5 minutes; a
	// negative value disables the cache.
	CacheTTL time.Duration
	// OfflineRetries is how many times a whole request is repeated after
	// the hub answered fault 1014 ServerOffline (maintenance, database
	// outage), which comes with HTTP 200 and so is never retried by the
	// transport. Default 1; negative disables.
	OfflineRetries int
	// OfflineWait is the pause before such a repeat. Default 5s.
	OfflineWait time.Duration
	// MaxResponseBytes bounds a response body. Default 256 MiB.
	MaxResponseBytes int64
	// Now is the client's clock, used to decide whether a cached answer can
	// still change (CacheFinal). Default time.Now.
	Now func() time.Time
}

// Client talks to one Koji hub. It is safe for concurrent use.
type Client struct {
	url            string
	http           *retryablehttp.Client
	roundTrips     *atomic.Int64
	log            *slog.Logger
	batch          int
	cache          *gocache.Cache // nil when caching is off
	flight         singleflight.Group
	offlineRetries int
	offlineWait    time.Duration
	maxResp        int64
	now            func() time.Time

	requests, calls, faults                 atomic.Int64
	cacheHits, subsumptionHits, cacheMisses atomic.Int64
	sharedFetches                           atomic.Int64
}

// New returns a Client for opts.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("koji: hub URL %q is not an http(s) URL", opts.URL)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := opts.HTTP
	if hc == nil {
		timeout := opts.Timeout
		if timeout <= 0 {
			timeout = 60 * time.Second
		}
		hc = httpclient.New(httpclient.Options{Timeout: timeout, Logger: log})
	}
	trips := &atomic.Int64{}
	c := &Client{
		url:            opts.URL,
		http:           countedCopy(hc, trips),
		roundTrips:     trips,
		log:            log,
		batch:          opts.BatchSize,
		offlineRetries: opts.OfflineRetries,
		offlineWait:    opts.OfflineWait,
		maxResp:        opts.MaxResponseBytes,
		now:            opts.Now,
	}
	if c.batch <= 0 {
		c.batch = DefaultBatchSize
	}
	switch {
	case c.offlineRetries == 0:
		c.offlineRetries = 1
	case c.offlineRetries < 0:
		c.offlineRetries = 0
	}
	if c.offlineWait <= 0 {
		c.offlineWait = DefaultOfflineWait
	}
	if c.maxResp <= 0 {
		c.maxResp = DefaultMaxResponseBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	ttl := opts.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if ttl > 0 {
		// The janitor only reclaims memory (lookups check expiry
		// themselves); it stops when the cache is collected.
		c.cache = gocache.New(ttl, 2*ttl)
	}
	return c, nil
}

// Now returns the time on the client's clock (Options.Now), the clock of
// TaskQuery.SettledAt.
func (c *Client) Now() time.Time { return c.now() }

// Stats are a client's counters since it was made.
type Stats struct {
	// RoundTrips is HTTP requests sent, transport retries included.
	RoundTrips int64
	// Requests is XML-RPC requests (a multicall is one), repeats after
	// fault 1014 included, transport retries not.
	Requests int64
	// Calls is hub method calls, each call inside a multicall counted.
	Calls int64
	// Faults is faults received, top-level and per-call.
	Faults int64
	// CacheHits is per-method task queries (and user look-ups) answered by
	// an identical cached query.
	CacheHits int64
	// SubsumptionHits is per-method task queries answered by filtering a
	// broader cached query.
	SubsumptionHits int64
	// CacheMisses is per-method task queries sent to the hub.
	CacheMisses int64
	// SharedFetches is ListTasks calls that waited for an identical query
	// already in flight instead of sending their own.
	SharedFetches int64
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{
		RoundTrips:      c.roundTrips.Load(),
		Requests:        c.requests.Load(),
		Calls:           c.calls.Load(),
		Faults:          c.faults.Load(),
		CacheHits:       c.cacheHits.Load(),
		SubsumptionHits: c.subsumptionHits.Load(),
		CacheMisses:     c.cacheMisses.Load(),
		SharedFetches:   c.sharedFetches.Load(),
	}
}

// countedCopy returns a retryablehttp client with hc's policy and
// transport plus a layer that counts this client's attempts in n. (The
// struct is rebuilt field by field: it holds sync.Onces and must not be
// copied.)
func countedCopy(hc *httpclient.Client, n *atomic.Int64) *retryablehttp.Client {
	base := hc.Client
	inner := http.Client{}
	if base.HTTPClient != nil {
		inner = *base.HTTPClient
	}
	next := inner.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	inner.Transport = countingTransport{next: next, n: n}
	return &retryablehttp.Client{
		HTTPClient:      &inner,
		Logger:          base.Logger,
		RetryWaitMin:    base.RetryWaitMin,
		RetryWaitMax:    base.RetryWaitMax,
		RetryMax:        base.RetryMax,
		RequestLogHook:  base.RequestLogHook,
		ResponseLogHook: base.ResponseLogHook,
		CheckRetry:      base.CheckRetry,
		Backoff:         base.Backoff,
		ErrorHandler:    base.ErrorHandler,
		PrepareRetry:    base.PrepareRetry,
	}
}

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	if c, ok := r.Context().Value(roundTripsKey{}).(*atomic.Int64); ok {
		c.Add(1)
	}
	return t.next.RoundTrip(r)
}

type roundTripsKey struct{}

// WithRoundTripCounter returns a context under which every HTTP request a
// Client sends, transport retries included, adds one to n. Unlike the
// difference of two Stats, it counts only what one caller's calls cost
// while other goroutines use the same Client; a query answered from the
// cache, or by a fetch another caller had in flight, costs nothing.
func WithRoundTripCounter(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, roundTripsKey{}, n)
}

// do sends one encoded request of ncalls calls and hands the answer's
// body to read, repeating the request after fault 1014 as configured. read
// returns a top-level fault as a *Fault.
func (c *Client) do(ctx context.Context, body []byte, ncalls int, read func([]byte) error) error {
	for attempt := 0; ; attempt++ {
		err := c.post(ctx, body, ncalls, read)
		var f *Fault
		if err == nil || !errors.As(err, &f) || f.Code != FaultServerOffline || attempt >= c.offlineRetries {
			return err
		}
		c.log.DebugContext(ctx, "koji: hub offline, repeating request", "fault", f.String, "wait", c.offlineWait)
		t := time.NewTimer(c.offlineWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("koji: waiting for the hub to come back: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// post is one XML-RPC exchange. The body is a []byte so go-retryablehttp
// can replay it on retries.
func (c *Client) post(ctx context.Context, body []byte, ncalls int, read func([]byte) error) error {
	c.requests.Add(1)
	c.calls.Add(int64(ncalls))
	// Every call composeci makes is a query: the POST may be repeated
	// after a lost answer.
	req, err := retryablehttp.NewRequestWithContext(httpclient.Replayable(ctx), http.MethodPost, c.url, body)
	if err != nil {
		return fmt.Errorf("koji: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("koji: POST %s: %w", c.url, ctx.Err())
		}
		return fmt.Errorf("koji: POST %s: %w: %w", c.url, ErrTransient, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, resp.ContentLength, c.maxResp)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("koji: reading response: %w", ctx.Err())
		}
		return fmt.Errorf("koji: reading response: %w: %w", ErrTransient, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{URL: c.url, Status: resp.StatusCode, Body: snippet(data)}
	}
	if int64(len(data)) > c.maxResp {
		return fmt.Errorf("koji: response larger than %d bytes", c.maxResp)
	}
	err = read(data)
	var f *Fault
	if errors.As(err, &f) {
		c.faults.Add(1)
	}
	return err
}

// readBody reads at most limit+1 bytes of a body: into one buffer of the
// right size when the server said how long the body is (the hub does), so
// that a multicall answer of megabytes is not copied through doubling
// buffers; otherwise as io.ReadAll does.
func readBody(r io.Reader, length, limit int64) ([]byte, error) {
	if length < 0 || length > limit {
		return io.ReadAll(io.LimitReader(r, limit+1))
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// snippet is the start of a body, enough to recognise an error page.
func snippet(b []byte) string {
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}
