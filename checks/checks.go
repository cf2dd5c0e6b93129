// Package checks turns what is known about a compose — its images, the
// images its release stream expects, its openQA jobs — and the same facts
// about the previous compose of its stream into findings: missing expected
// images, the image diff, and openQA failures classed new, known or fixed.
//
// Everything here is a pure function of its input: no I/O, no clock, no
// logging. Fetching the inputs is fedfind's and openqa's job; presenting the
// findings is the reports package's. That split keeps every classification
// rule testable with literal jobs, and lets a report be rebuilt from archived
// inputs.
package checks

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
)

// Input is everything the checks look at for one compose.
type Input struct {
	// Compose is the compose being checked.
	Compose fedfind.ComposeID
	// Images are the compose's images (from its images.json).
	Images []fedfind.Image
	// Expected are the images the compose's stream must have; empty when
	// the stream has no expected-image list (nothing can be missing).
	Expected []fedfind.ExpectedImage
	// Jobs are the openQA jobs with BUILD = the compose ID, in any order,
	// superseded clones included or not.
	Jobs []openqa.Job
	// Previous is the previous compose of the stream; nil when there is none
	// (the first compose of a stream, or none could be found). Without it
	// there is no diff, nothing is fixed and every failure is new.
	Previous *Previous
	// DiffOptions sets what counts as a changed image; nil means
	// fedfind.DefaultDiffOptions.
	DiffOptions *fedfind.DiffOptions
	// Reruns are the re-runs composeci made of the compose's jobs, from
	// its audit trail: the failed job's id → its re-run's id. A new failure
	// whose re-run failed again is confirmed; one whose re-run passed is
	// flaky. (Clones openQA made by itself, of incomplete jobs, are not
	// re-runs.)
	Reruns map[int64]int64
	// KnownIssues are the registry's entries: a failure one of them
	// matches is a known issue, not a new failure.
	KnownIssues []KnownIssue
	// FailedModules are the openQA modules each failed job failed in (job
	// id → module names), for the entries that name a module.
	FailedModules map[int64][]string
	// Now decides which known issues have expired; zero means none has.
	Now time.Time
	// Gating is Greenwave's decision on the compose (or why there is
	// none), for the gating check; nil when Greenwave was not asked.
	Gating *GatingInput
}

// Previous is the previous compose of the stream, to compare against.
type Previous struct {
	Compose fedfind.ComposeID
	Images  []fedfind.Image
	// Jobs are the previous compose's openQA jobs. Empty when it was never
	// tested (or its jobs were purged): then every failure counts as new,
	// and the report says the previous compose had no results.
	Jobs []openqa.Job
}

// Findings are the results of every check on one compose. Every slice is
// non-nil and sorted, so a Findings marshals to the same JSON every time.
type Findings struct {
	Compose fedfind.ComposeID
	// Previous is the compose compared against; zero when there was none.
	Previous fedfind.ComposeID
	// Images is the number of images in the compose.
	Images int
	// Expected is the number of expected images the stream lists.
	Expected int
	// Subvariants are the subvariants the compose has images of, plus those
	// of missing expected images (whose people want to hear about it most),
	// sorted and distinct case-insensitively. Mail routing uses them.
	Subvariants []string
	// MissingExpected are the expected images the compose lacks.
	MissingExpected []MissingImage
	// Diff is the image diff against the previous compose; empty when there
	// is no previous compose.
	Diff   fedfind.ImageDiff
	OpenQA OpenQA
	// Gating is the gating check; nil when Greenwave was not asked.
	Gating *Gating
}

// MissingImage is an expected image the compose lacks, and the identity
// it is known by: fedfind.ExpectedImage.Identity over the compose's
// images, as `composeci expected` and the image diff name images
// ("Server-boot-iso").
type MissingImage struct {
	fedfind.ExpectedImage
	Identity string `json:"identity"`
}

// HasPrevious reports whether a previous compose was compared against.
func (f Findings) HasPrevious() bool { return !f.Previous.IsZero() }

// Problem reports whether the findings call for attention: an expected image
// is missing or an openQA test newly fails. This is what check-compose's
// "error" recipient lists are sent; known failures, soft failures and
// incompletes alone are not a problem, or the error lists would hear about
// every nightly. Nor is a failed gating check: it fails on known failures
// as well as new ones, and the new ones are a problem already.
func (f Findings) Problem() bool {
	return len(f.MissingExpected) > 0 || len(f.OpenQA.NewFailures) > 0
}

// Run performs every check on in. It never fails: missing inputs make empty
// findings, which the report states as such.
func Run(in Input) Findings {
	missing := fedfind.MissingExpected(in.Expected, in.Images)
	f := Findings{
		Compose:         in.Compose,
		Images:          len(in.Images),
		Expected:        len(in.Expected),
		MissingExpected: make([]MissingImage, 0, len(missing)),
		Diff:            fedfind.ImageDiff{Added: []fedfind.DiffEntry{}, Removed: []fedfind.DiffEntry{}, Changed: []fedfind.ChangedEntry{}},
	}
	for _, m := range missing {
		f.MissingExpected = append(f.MissingExpected, MissingImage{ExpectedImage: m, Identity: m.Identity(in.Images)})
	}
	var prevJobs []openqa.Job
	if in.Previous != nil {
		f.Previous = in.Previous.Compose
		opts := fedfind.DefaultDiffOptions
		if in.DiffOptions != nil {
			opts = *in.DiffOptions
		}
		f.Diff = fedfind.Diff(in.Previous.Images, in.Images, opts)
		prevJobs = in.Previous.Jobs
	}
	f.Subvariants = subvariants(in.Images, f.MissingExpected)
	f.OpenQA = classify(in.Jobs, prevJobs, in.Previous != nil, in.Reruns)
	f.OpenQA.knownIssues(in.KnownIssues, in.FailedModules, in.Now)
	f.Gating = gatingOf(in.Gating, in.Jobs)
	return f
}

// subvariants lists the distinct subvariants of images and missing expected
// images. An image's own spelling ("Cloud_Base") wins over the expected
// list's lower-case one ("cloud_base").
func subvariants(images []fedfind.Image, missing []MissingImage) []string {
	seen := map[string]string{}
	for _, im := range images {
		if im.Subvariant == "" {
			continue
		}
		k := strings.ToLower(im.Subvariant)
		if _, ok := seen[k]; !ok {
			seen[k] = im.Subvariant
		}
	}
	for _, m := range missing {
		k := strings.ToLower(m.Subvariant)
		if _, ok := seen[k]; !ok {
			seen[k] = m.Subvariant
		}
	}
	out := make([]string, 0, len(seen))
	for _, v := range seen {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a), strings.ToLower(b)), cmp.Compare(a, b))
	})
	return out
}
