package fedfind

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/composeci/composeci/internal/httpclient"
)

// The metadata archive keeps the productmd metadata of composes after their
// trees are garbage-collected from the compose tree (kept about a week), and
// series files that list the composes of a stream with their labels:
//
//	<root>/metadata-archive/<YYYY>/<compose ID>/{composeinfo,images}.json
//	<root>/metadata-archive/series/<short>-<version lower-case>
//
// fedfind 6 reads both; composeci does too: for the images of a compose whose
// tree is gone, for the previous compose of streams that are not nightlies,
// and to find a candidate compose by its label.

const archiveDir = "metadata-archive"

// archiveURL is the directory of a compose's archived metadata.
func (c *Client) archiveURL(id ComposeID) string {
	return c.root + "/" + archiveDir + "/" + id.Date[:4] + "/" + id.String()
}

// SeriesEntry is one line of a series file.
type SeriesEntry struct {
	ID    ComposeID
	Label string // "" when the compose has none
}

// seriesName is the series file of a stream: "<short>-<version lower>".
func seriesName(s Stream) string {
	return s.Short + "-" + strings.ToLower(s.Version)
}

// Series reads the series file of a stream from the metadata archive, in
// file order (oldest first). Lines that do not parse are skipped with a
// warning: one bad line must not hide a stream's history.
func (c *Client) Series(ctx context.Context, s Stream) ([]SeriesEntry, error) {
	if s.Short == "" || s.Version == "" || s.Kind == StreamOther {
		return nil, fmt.Errorf("%w: stream %s has no series file", ErrInvalidInput, s)
	}
	u := c.root + "/" + archiveDir + "/series/" + seriesName(s)
	b, err := c.get(ctx, u, "text/plain", maxListing)
	if errors.Is(err, httpclient.ErrNotFound) {
		return nil, fmt.Errorf("%w: no series file %s", ErrComposeNotFound, u)
	}
	if err != nil {
		return nil, err
	}
	var out []SeriesEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		id, err := ParseComposeID(fields[0])
		if err != nil || len(fields) > 2 {
			c.log.Warn("skipping a malformed series line", "file", u, "line", n)
			continue
		}
		e := SeriesEntry{ID: id}
		if len(fields) == 2 {
			if _, err := ParseLabel(fields[1]); err != nil {
				c.log.Warn("skipping a series line with a malformed label", "file", u, "line", n)
				continue
			}
			e.Label = fields[1]
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// reLabelRef reads a label reference. Regexps are compiled on first use,
// not at start-up (docs/conventions.md); a compiled one is immutable.
var reLabelRef = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([1-9][0-9]{0,3}):(.+)$`) })

// parseLabelRef reads "<release>:<label>", e.g. "44:Beta-1.2".
func parseLabelRef(ref string) (release string, label Label, ok bool, err error) {
	m := reLabelRef().FindStringSubmatch(ref)
	if m == nil {
		return "", Label{}, false, nil
	}
	// fedfind's milestone "Final" is productmd's RC: 44:Final-1.2 is
	// 44:RC-1.2.
	name := m[2]
	if rest, ok := strings.CutPrefix(name, "Final-"); ok {
		name = "RC-" + rest
	}
	l, err := ParseLabel(name)
	if err != nil {
		return "", Label{}, true, err
	}
	return m[1], l, true, nil
}

// ResolveLabel finds the candidate compose of a release that carries a
// label (e.g. 44 and Beta-1.2) through the release's series file.
func (c *Client) ResolveLabel(ctx context.Context, release string, label Label) (*Compose, error) {
	s := StreamSpec{Kind: StreamProduction, Version: release}.Stream()
	entries, err := c.Series(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("finding %s %s: %w", release, label, err)
	}
	for i := len(entries) - 1; i >= 0; i-- { // should a label repeat, the newest wins
		if e := entries[i]; e.Label == label.String() {
			return c.Locate(e.ID)
		}
	}
	return nil, fmt.Errorf("%w: no compose of Fedora %s is labelled %s", ErrComposeNotFound, release, label)
}

// archived fetches a file of a compose's archived metadata and hands it to
// read; httpclient.ErrNotFound when the archive does not have it.
func (c *Client) archived(ctx context.Context, cm *Compose, name string, read func(io.Reader, string) error) error {
	u := c.archiveURL(cm.ID) + "/" + name
	return c.getStream(ctx, u, "application/json", func(r io.Reader) error { return read(r, u) })
}

// previousBySeries finds the previous successful compose of a stream that
// is not a nightly in its series file: the newest earlier entry of the same
// series whose STATUS is a success, or, when its tree is gone but the
// archive has its metadata, which fedfind takes as FINISHED_INCOMPLETE.
func (c *Client) previousBySeries(ctx context.Context, cm *Compose, opts PreviousOptions) (PreviousResult, error) {
	entries, err := c.Series(ctx, cm.Stream)
	if err != nil {
		return PreviousResult{Method: "series"}, err
	}
	tried := 0
	for i := len(entries) - 1; i >= 0 && tried < opts.MaxCandidates; i-- {
		id := entries[i].ID
		if !id.SameSeries(cm.ID) || id.Compare(cm.ID) >= 0 {
			continue
		}
		tried++
		p, st, ok, err := c.successful(ctx, id)
		if err != nil {
			return PreviousResult{}, err
		}
		if ok {
			return PreviousResult{Compose: p, Status: st, Method: "series"}, nil
		}
		if st == "" { // no tree: is it in the archive?
			if _, err := c.ImagesFile(ctx, p); err == nil {
				return PreviousResult{Compose: p, Status: StatusFinishedIncomplete, Method: "series"}, nil
			}
		}
	}
	return PreviousResult{Method: "series"}, fmt.Errorf("%w: before %s in its series file (%d candidates read)", ErrNoPrevious, cm.ID, tried)
}
