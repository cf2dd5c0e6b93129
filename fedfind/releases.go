package fedfind

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/composeci/composeci/internal/httpclient"
)

// DefaultReleaseDataURL is where Fedora QA publishes which Fedora releases
// are stable and which are Branched: the file fedfind's
// get_current_release reads (docs/protocols.md, section (i)).
const DefaultReleaseDataURL = "https://fedorapeople.org/groups/qa/metadata/release.json"

// ReleaseData is what Fedora QA's release.json says of Fedora.
type ReleaseData struct {
	// Stable are the supported stable releases; never empty.
	Stable []int `json:"stable"`
	// Branched are the releases branched from Rawhide and not yet
	// released; often one, empty between a release and the next branching.
	Branched []int `json:"branched"`
}

// Current is the newest stable release: openQA's CURRREL. Like Rawhide, it
// needs data ParseReleaseData accepted (at least one stable release).
func (d ReleaseData) Current() int { return slices.Max(d.Stable) }

// Rawhide is the release Rawhide will become: one above the highest release
// known, stable or branched (openQA's RAWREL; fedora_openqa's
// get_current_release(branched=True) + 1).
func (d ReleaseData) Rawhide() int {
	return max(d.Current(), slices.Max(append([]int{0}, d.Branched...))) + 1
}

// maxReleaseData bounds release.json, a few dozen bytes in Fedora.
const maxReleaseData = 1 << 20

// ParseReleaseData reads release.json, {"fedora": {"stable": [42, 43],
// "branched": [44]}}: stable a non-empty list of release numbers, branched
// a list (absent or null: none). Other keys are ignored; anything else is a
// MetadataError naming file.
func ParseReleaseData(r io.Reader, file string) (ReleaseData, error) {
	var doc struct {
		Fedora *ReleaseData `json:"fedora"`
	}
	dec := json.NewDecoder(io.LimitReader(r, maxReleaseData))
	if err := dec.Decode(&doc); err != nil {
		return ReleaseData{}, jsonErr(file, err)
	}
	if dec.More() {
		return ReleaseData{}, metaErr(file, "more than one JSON value")
	}
	d := doc.Fedora
	switch {
	case d == nil:
		return ReleaseData{}, metaErr(file, `no "fedora" object`)
	case len(d.Stable) == 0:
		return ReleaseData{}, metaErr(file, `"fedora.stable" lists no release`)
	}
	for _, n := range append(slices.Clone(d.Stable), d.Branched...) {
		if n < 1 || n > 9999 {
			return ReleaseData{}, metaErr(file, "%d is not a release number", n)
		}
	}
	if d.Branched == nil {
		d.Branched = []int{}
	}
	return *d, nil
}

// ReleaseSourceOptions configures a ReleaseSource.
type ReleaseSourceOptions struct {
	// URL of release.json; default DefaultReleaseDataURL.
	URL string
	// HTTP is the client; default httpclient.New.
	HTTP *httpclient.Client
	// Logger; default discards.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxAge is how long what was read serves before it is read again;
	// default a day.
	MaxAge time.Duration
	// RetryAfter is how long after a failed read the next is tried; until
	// then the failure (or what was read before it) stands. Default an
	// hour.
	RetryAfter time.Duration
}

// ReleaseSource holds Fedora QA's release data in memory and reads it again
// once a day, so a long-running service follows releases and branchings
// without a restart. It is safe for concurrent use; concurrent callers share
// one read.
type ReleaseSource struct {
	url               string
	http              *httpclient.Client
	log               *slog.Logger
	now               func() time.Time
	maxAge, retryWait time.Duration

	sem      chan struct{} // held while the state below is used
	data     ReleaseData
	readAt   time.Time // when data was read; zero: never
	err      error     // the last read's failure, until a read succeeds
	failedAt time.Time
	warned   bool // a warning was logged for this run of failures
}

// NewReleaseSource returns a source for the release data at opts.URL; it
// reads nothing until asked.
func NewReleaseSource(opts ReleaseSourceOptions) (*ReleaseSource, error) {
	raw := opts.URL
	if raw == "" {
		raw = DefaultReleaseDataURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: release data %q is not an http(s) URL", ErrInvalidInput, raw)
	}
	s := &ReleaseSource{url: raw, http: opts.HTTP, log: opts.Logger, now: opts.Now, maxAge: opts.MaxAge, retryWait: opts.RetryAfter,
		sem: make(chan struct{}, 1)}
	if s.http == nil {
		s.http = httpclient.New(httpclient.Options{Logger: opts.Logger})
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxAge <= 0 {
		s.maxAge = 24 * time.Hour
	}
	if s.retryWait <= 0 {
		s.retryWait = time.Hour
	}
	return s, nil
}

// URL is where the source reads release.json.
func (s *ReleaseSource) URL() string { return s.url }

// Get returns the release data: what was read less than MaxAge ago, or what
// it reads now. When a read fails, what was read before (however old) is
// returned; with nothing read before, the error is, and callers fall back
// on numbers of their own. Get logs a failure itself, as one warning per
// run of failures (not once per call), and reads again only RetryAfter
// after a failure.
func (s *ReleaseSource) Get(ctx context.Context) (ReleaseData, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ReleaseData{}, ctx.Err()
	}
	defer func() { <-s.sem }()
	now := s.now()
	if !s.readAt.IsZero() && now.Sub(s.readAt) < s.maxAge {
		return s.data, nil
	}
	if s.err != nil && now.Sub(s.failedAt) < s.retryWait {
		return s.held()
	}
	d, err := s.read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ReleaseData{}, err // the caller gave up: no failure of the data
		}
		s.err, s.failedAt = err, now
		if s.warned {
			s.log.Debug("release data still unreadable", "url", s.url, "err", err)
		} else {
			s.warned = true
			if s.readAt.IsZero() {
				s.log.Warn("release data unreadable: CURRREL and RAWREL come from the scheduling rules (or --openqa-current-release and --openqa-rawhide-release) until it is read",
					"url", s.url, "err", err, "retry_in", s.retryWait)
			} else {
				s.log.Warn("release data unreadable: keeping what was read before", "url", s.url, "err", err,
					"read_at", s.readAt, "current", s.data.Current(), "rawhide", s.data.Rawhide(), "retry_in", s.retryWait)
			}
		}
		return s.held()
	}
	if s.warned {
		s.log.Info("release data readable again", "url", s.url)
	}
	if s.readAt.IsZero() || !slices.Equal(d.Stable, s.data.Stable) || !slices.Equal(d.Branched, s.data.Branched) {
		s.log.Info("release data", "url", s.url, "stable", d.Stable, "branched", d.Branched, "current", d.Current(), "rawhide", d.Rawhide())
	}
	s.data, s.readAt, s.err, s.warned = d, now, nil, false
	return d, nil
}

// held is what Get returns while reading fails: the data read before, or
// the failure.
func (s *ReleaseSource) held() (ReleaseData, error) {
	if !s.readAt.IsZero() {
		return s.data, nil
	}
	return ReleaseData{}, fmt.Errorf("reading the release data: %w", s.err)
}

func (s *ReleaseSource) read(ctx context.Context) (ReleaseData, error) {
	var d ReleaseData
	err := (&Client{http: s.http, log: s.log}).getStream(ctx, s.url, "application/json", func(r io.Reader) (err error) {
		d, err = ParseReleaseData(r, s.url)
		return err
	})
	return d, err
}
