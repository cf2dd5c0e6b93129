package reports

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Store keeps compose check reports — every version of each compose's
// report, and its canonical one — with the ledgers of who was told of
// them. Archive keeps them in a directory (one host, and the one-shot CLI);
// listener/kvstore keeps them in NATS JetStream (an Object Store bucket for
// the files, key-value buckets for the rest), so that every host of a
// deployment reads and writes the same. A contract suite
// (reports/reportstest) holds both to the same behaviour.
type Store interface {
	// Write stores r as a version of its compose's report (the version is
	// ContentKey(r): writing the same findings again is the same version)
	// and makes it the canonical report unless it knows less than the
	// canonical one (see KnowsLess): a check without openQA, or with
	// results still pending, never replaces one that had them. r.Release
	// must be the compose's release.
	Write(ctx context.Context, r Report) (Written, error)
	// Read returns a compose's canonical report; ErrNotFound when it has
	// none.
	Read(ctx context.Context, composeID string) (Report, error)
	// ReadVersion returns one version of a compose's report.
	ReadVersion(ctx context.Context, composeID, version string) (Report, error)
	// ReadFile returns a file (FileJSON, FileText, FileHTML) of a version
	// of a compose's report; version "" is the canonical one.
	ReadFile(ctx context.Context, composeID, version, name string) ([]byte, error)
	// Versions lists the versions of a compose's report, oldest first.
	Versions(ctx context.Context, composeID string) ([]Version, error)
	// Index returns the index of a release's canonical reports.
	Index(ctx context.Context, release string) (Index, error)
	// Releases lists the releases that have reports, sorted.
	Releases(ctx context.Context) ([]string, error)
	MailLedger
	Deliveries
}

// MailLedger records the mails sent of each compose's report.
type MailLedger interface {
	// MailsOf returns every mail recorded of a compose's report, oldest
	// first.
	MailsOf(ctx context.Context, composeID string) ([]MailRecord, error)
	// RecordMail notes a mail (replacing one with the same Message-ID).
	RecordMail(ctx context.Context, composeID string, rec MailRecord) error
}

// Version is one version of a compose's report, as Versions lists it.
type Version struct {
	// Version is the report's ContentKey.
	Version     string    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// WrittenAt is when it was last written.
	WrittenAt time.Time `json:"written_at"`
	// Canonical is true for the version Read returns.
	Canonical bool `json:"canonical"`
	// Knowledge ranks what it knows (see KnowsLess): 0 no openQA, 1 results
	// pending, 2 complete.
	Knowledge   int    `json:"knowledge"`
	SummaryLine string `json:"summary_line"`
}

// Knowledge ranks how much a report knows: 0 when the check ran without
// openQA, 1 when openQA results were still pending, 2 when it knows every
// result (or the compose was doomed: nothing more will come).
func (r Report) Knowledge() int {
	switch {
	case r.Doomed != nil:
		return 2
	case r.OpenQA.LeftOut:
		return 0
	case !r.Summary.ResultsComplete:
		return 1
	}
	return 2
}

// KnowsLess reports whether r knows less than the canonical report c, and
// why: then r is kept as a version but does not replace c.
func KnowsLess(r, c Report) (bool, string) {
	if r.Knowledge() >= c.Knowledge() {
		return false, ""
	}
	switch r.Knowledge() {
	case 0:
		return true, fmt.Sprintf("it was made without openQA, and the report of %s has openQA results", c.GeneratedAt.UTC().Format(time.RFC3339))
	default:
		return true, fmt.Sprintf("its openQA results are incomplete (%d pending), and the report of %s has them all",
			r.Summary.Pending, c.GeneratedAt.UTC().Format(time.RFC3339))
	}
}

// VersionList is a compose's list of versions, as the stores keep it.
type VersionList struct {
	ComposeID string    `json:"compose_id"`
	Canonical string    `json:"canonical"`
	Versions  []Version `json:"versions"`
}

// Add records a version of r written at now and decides whether it becomes
// canonical (given the canonical report, nil when there is none); it
// returns the reason when it does not.
func (d *VersionList) Add(r Report, version string, now time.Time, canonical *Report) (bool, string) {
	v := Version{Version: version, GeneratedAt: r.GeneratedAt, WrittenAt: now.UTC(), Knowledge: r.Knowledge(), SummaryLine: r.SummaryLine()}
	if i := slices.IndexFunc(d.Versions, func(x Version) bool { return x.Version == version }); i >= 0 {
		d.Versions = slices.Delete(d.Versions, i, i+1)
	}
	d.Versions = append(d.Versions, v)
	makeCanonical, why := true, ""
	if canonical != nil && d.Canonical != version {
		if less, reason := KnowsLess(r, *canonical); less {
			makeCanonical, why = false, reason
		}
	}
	if makeCanonical {
		d.Canonical = version
	}
	for i := range d.Versions {
		d.Versions[i].Canonical = d.Versions[i].Version == d.Canonical
	}
	return makeCanonical, why
}
