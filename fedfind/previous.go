package fedfind

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/composeci/composeci/internal/httpclient"
)

// PreviousOptions bounds the search for a previous compose.
type PreviousOptions struct {
	// MaxDaysBack bounds probing when the tree offers no listing; default 14.
	MaxDaysBack int
	// MaxCandidates bounds how many composes' STATUS are read; default 30.
	MaxCandidates int
}

// PreviousResult is the previous compose and what finding it cost.
type PreviousResult struct {
	Compose *Compose
	Status  Status
	// Requests is the number of HTTP requests the search made.
	Requests int64
	// Method is "listing", "series" or "probing".
	Method string
}

// ErrNoPrevious is wrapped when no earlier successful compose exists within
// the search bounds.
var ErrNoPrevious = errors.New("no previous successful compose")

// Previous finds the previous successful (FINISHED or FINISHED_INCOMPLETE)
// compose of cm's series: same prefix and compose type, ordered as productmd
// orders composes.
//
// It reads the stream directory's listing once and then the STATUS of the
// candidates from the newest down: usually two requests in all. Streams
// that are not nightlies are looked up in their series file in the
// metadata archive where the server offers no listing or the listing shows
// no earlier successful compose (a garbage-collected candidate is in the
// archive, not the tree); where there is no listing, failing that, it probes
// compose directories day by day,
// reading STATUS directly (one request per probe, where fedfind spends a
// directory GET plus a STATUS GET) and climbing respins upward from 0 until
// one is missing (fedfind starts at respin 5 and walks down, so a normal day
// costs it six probes and respins above 5 are never seen).
func (c *Client) Previous(ctx context.Context, cm *Compose, opts PreviousOptions) (PreviousResult, error) {
	if opts.MaxDaysBack <= 0 {
		opts.MaxDaysBack = 14
	}
	if opts.MaxCandidates <= 0 {
		opts.MaxCandidates = 30
	}
	if cm.Stream.Dir == "" {
		return PreviousResult{}, fmt.Errorf("%w: %s belongs to no known stream; previous compose unknown", ErrInvalidInput, cm.ID)
	}
	start := c.RoundTrips()
	res, err := c.previousByListing(ctx, cm, opts)
	if errors.Is(err, ErrNoPrevious) && !cm.Stream.Nightly() {
		// A candidate's predecessors are often gone from the tree
		// (garbage-collected) while its series file and the metadata
		// archive still know them.
		if sres, serr := c.previousBySeries(ctx, cm, opts); serr == nil {
			sres.Requests = c.RoundTrips() - start
			return sres, nil
		} else {
			c.log.Debug("series file", "stream", cm.Stream.Dir, "err", serr)
		}
	}
	var se *httpclient.StatusError
	if errors.As(err, &se) && (se.Code == 403 || se.Code == 404) {
		c.log.Debug("no directory listing", "stream", cm.Stream.Dir, "err", err)
		if !cm.Stream.Nightly() {
			// Candidates and other composes are days or weeks apart:
			// their series file lists them.
			res, err = c.previousBySeries(ctx, cm, opts)
		}
		if !cm.Stream.Nightly() && err == nil {
			res.Requests = c.RoundTrips() - start
			return res, nil
		}
		c.log.Debug("probing", "stream", cm.Stream.Dir, "err", err)
		res, err = c.previousByProbing(ctx, cm, opts)
	}
	res.Requests = c.RoundTrips() - start
	return res, err
}

func (c *Client) previousByListing(ctx context.Context, cm *Compose, opts PreviousOptions) (PreviousResult, error) {
	ids, err := c.ListComposes(ctx, cm.Stream)
	if err != nil {
		return PreviousResult{}, err
	}
	tried := 0
	for _, id := range ids { // newest first
		if !id.SameSeries(cm.ID) || id.Compare(cm.ID) >= 0 {
			continue
		}
		if tried++; tried > opts.MaxCandidates {
			break
		}
		p, st, ok, err := c.successful(ctx, id)
		if err != nil {
			return PreviousResult{}, err
		}
		if ok {
			return PreviousResult{Compose: p, Status: st, Method: "listing"}, nil
		}
	}
	return PreviousResult{Method: "listing"}, fmt.Errorf("%w: before %s in %s/%s (%d candidates read)", ErrNoPrevious, cm.ID, c.root, cm.Stream.Dir, min(tried, opts.MaxCandidates))
}

// successful reads id's STATUS and reports whether it is a success. A
// missing compose is not an error.
func (c *Client) successful(ctx context.Context, id ComposeID) (*Compose, Status, bool, error) {
	p, err := c.Locate(id)
	if err != nil {
		return nil, "", false, err
	}
	st, err := c.Status(ctx, p)
	if errors.Is(err, ErrComposeNotFound) {
		return p, "", false, nil
	}
	var me *MetadataError
	if errors.As(err, &me) {
		c.log.Warn("unreadable STATUS; skipping compose", "compose", id, "err", err)
		return p, "", false, nil
	}
	if err != nil {
		return nil, "", false, err
	}
	return p, st, st.Success(), nil
}

// previousByProbing walks back from cm: first the lower respins of its own
// day, then earlier days, each from respin 0 upward until a respin is
// missing, keeping the highest successful one.
func (c *Client) previousByProbing(ctx context.Context, cm *Compose, opts PreviousOptions) (PreviousResult, error) {
	probe := func(date string, respin int) (*Compose, Status, bool, bool, error) {
		id := cm.ID
		id.Date, id.Respin = date, respin
		p, err := c.Locate(id)
		if err != nil {
			return nil, "", false, false, err
		}
		st, err := c.Status(ctx, p)
		switch {
		case errors.Is(err, ErrComposeNotFound):
			return nil, "", false, false, nil
		case err != nil:
			var me *MetadataError
			if errors.As(err, &me) {
				return p, "", true, false, nil
			}
			return nil, "", false, false, err
		}
		return p, st, true, st.Success(), nil
	}
	probes := 0
	for r := cm.ID.Respin - 1; r >= 0; r-- {
		probes++
		p, st, _, ok, err := probe(cm.ID.Date, r)
		if err != nil {
			return PreviousResult{}, err
		}
		if ok {
			return PreviousResult{Compose: p, Status: st, Method: "probing"}, nil
		}
	}
	day := cm.ID.Time()
	for d := 1; d <= opts.MaxDaysBack && probes < opts.MaxCandidates; d++ {
		date := day.Add(-time.Duration(d) * 24 * time.Hour).Format("20060102")
		var best *Compose
		var bestStatus Status
		for r := 0; probes < opts.MaxCandidates; r++ {
			probes++
			p, st, exists, ok, err := probe(date, r)
			if err != nil {
				return PreviousResult{}, err
			}
			if !exists {
				break
			}
			if ok {
				best, bestStatus = p, st
			}
		}
		if best != nil {
			return PreviousResult{Compose: best, Status: bestStatus, Method: "probing"}, nil
		}
	}
	return PreviousResult{Method: "probing"}, fmt.Errorf("%w: before %s within %d days (%d probes)", ErrNoPrevious, cm.ID, opts.MaxDaysBack, probes)
}
