// Package reports turns the findings of the checks on one compose into the
// compose check report: a versioned JSON model (docs/report-schema.md),
// plain text and HTML renderings (from the templates package), an archive of
// reports on disk, and email routed per release stream and subvariant.
//
// The flow for one compose, as the check command and the pipeline's check
// and report stages run it:
//
//	f := checks.Run(checks.Input{...})                 // pure: no I/O
//	r := reports.Build(f, reports.Meta{Status: status, Location: url, GeneratedAt: now})
//	w, err := reports.DataArchive(dataDir).Write(ctx, r) // report.{json,txt,html} + index.json
//	rt, err := reports.LoadRouting(routingFile)          // or reports.OverrideRouting(mailTo)
//	m, err := reports.NewMailer(mailConfig, logger)
//	sent, err := m.Send(ctx, r, rt.Recipients(r))       // reports.Retryable(err) says if worth retrying
//
// RenderText, RenderHTML, RenderJSON and Subject print a report anywhere
// else (a terminal, a web page).
package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
)

// SchemaVersion is the version of the report JSON this package writes. It
// grows when a field changes meaning or goes away; added fields do not
// change it. docs/report-schema.md documents every version. Version 2: a
// failure composeci re-ran has job_id the first try and rerun_job_id the
// re-run (version 1 had only the newest job); new failures say whether
// they are confirmed; flaky tests, known issues and re-runs are listed.
const SchemaVersion = 2

// ErrSchemaVersion is wrapped when a report's schema_version is newer than
// this code reads.
var ErrSchemaVersion = errors.New("unsupported report schema version")

// Report is the compose check report of one compose. Every slice is
// non-nil and sorted and no field is a map, so the JSON of two reports diffs
// line by line.
type Report struct {
	SchemaVersion int    `json:"schema_version"`
	ComposeID     string `json:"compose_id"`
	// Label is a candidate compose's label (RC-1.2, Beta-1.3), from its
	// composeinfo.json; absent for composes without one (nightlies).
	Label string `json:"label,omitempty"`
	// PreviousComposeID is the compose compared against, "" when there was
	// none (then nothing is fixed or known and there is no image diff).
	PreviousComposeID string `json:"previous_compose_id"`
	Stream            Stream `json:"stream"`
	// Release names the archive directory of the report's stream
	// ("rawhide", "44", ...); see ReleaseOf.
	Release string `json:"release"`
	// Status is the compose's Pungi STATUS (FINISHED, FINISHED_INCOMPLETE,
	// ...), "" when unknown.
	Status string `json:"status"`
	// Location is the compose's URL, "" when unknown.
	Location    string    `json:"location"`
	GeneratedAt time.Time `json:"generated_at"`
	// Problem is true when an expected image is missing or a test newly
	// fails: what "error" recipient lists are mailed.
	Problem bool    `json:"problem"`
	Summary Summary `json:"summary"`
	// Subvariants are the compose's subvariants (and those of missing
	// expected images), for mail routing.
	Subvariants     []string          `json:"subvariants"`
	MissingExpected []MissingImage    `json:"missing_expected"`
	Diff            fedfind.ImageDiff `json:"diff"`
	OpenQA          OpenQA            `json:"openqa"`
	// Gating is the gating check: what Greenwave decided of the compose
	// at a gating point; absent when Greenwave was not asked.
	Gating *Gating `json:"gating,omitempty"`
	// Doomed is set when the compose ended without a result (STATUS
	// DOOMED or TERMINATED): it has no images to check or test, the
	// report holds the evidence instead, and PreviousComposeID is the
	// previous good compose of the stream.
	Doomed *Doomed `json:"doomed,omitempty"`
	// Reruns are the openQA re-runs composeci made of the compose's jobs,
	// oldest first: who asked, when, why, and the old and new job.
	Reruns []Rerun `json:"reruns"`
	// Packages are the source packages the compose added, removed,
	// upgraded and downgraded against the previous compose; nil when they
	// were not compared (no previous compose, or a compose without
	// rpms.json), and then PackagesNote says why.
	Packages     *Packages `json:"packages"`
	PackagesNote string    `json:"packages_note,omitempty"`
}

// MissingImage is an expected image the compose lacks: the expected-image
// list's subvariant, type and arch, and the identity the image is known
// by, as the image diff and `composeci expected` name images
// ("Server-boot-iso"). Reports written before the identity existed lack
// it; NameOf names their images as the list alone allows.
type MissingImage struct {
	fedfind.ExpectedImage
	Identity string `json:"identity,omitempty"`
}

// NameOf is the identity of m: its own, or for a report written before
// identities, the one fedfind.ExpectedImage.Identity gives without the
// compose's images.
func (m MissingImage) NameOf() string {
	if m.Identity != "" {
		return m.Identity
	}
	return m.ExpectedImage.Identity(nil)
}

// expectedOf returns the expected-image entries of missing.
func expectedOf(missing []MissingImage) []fedfind.ExpectedImage {
	out := make([]fedfind.ExpectedImage, 0, len(missing))
	for _, m := range missing {
		out = append(out, m.ExpectedImage)
	}
	return out
}

// Rerun is one openQA job composeci restarted, from the compose's audit
// trail.
type Rerun struct {
	At time.Time `json:"at"`
	// By is who asked: a person's login, or "composeci" for the automatic
	// confirmation of new failures.
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Scope is what was asked for: "new-failures", "failed", "job",
	// "image", "test" or "confirm".
	Scope      string `json:"scope"`
	JobID      int64  `json:"job_id"`
	RerunJobID int64  `json:"rerun_job_id"`
	Test       string `json:"test"`
	Flavor     string `json:"flavor"`
	Arch       string `json:"arch"`
}

// KnownIssueRef is the registry entry a failure matched.
type KnownIssueRef struct {
	ID     int64  `json:"id"`
	Reason string `json:"reason"`
	Bug    string `json:"bug,omitempty"`
	// Expires is when the entry stops matching; absent: never.
	Expires time.Time `json:"expires,omitzero"`
}

// Doomed is the evidence of a compose that ended without a result.
type Doomed struct {
	// Reasons are the completeness verdict's: the STATUS and, where Koji
	// builds the stream's images, what became of its image tasks.
	Reasons []string `json:"reasons"`
	// FailedTasks are the ids of the compose's Koji image tasks that
	// failed, when Koji was asked.
	FailedTasks []int `json:"failed_tasks,omitempty"`
}

// Stream is the compose's release stream.
type Stream struct {
	Kind    string `json:"kind"`
	Short   string `json:"short"`
	Version string `json:"version"`
	Dir     string `json:"dir"`
	// Name is the stream for people: "Fedora Rawhide", "Fedora 44".
	Name string `json:"name"`
}

// Summary holds the counts of every finding, so dashboards and the archive
// index need not count lists.
type Summary struct {
	Images          int `json:"images"`
	ExpectedImages  int `json:"expected_images"`
	MissingExpected int `json:"missing_expected"`
	ImagesAdded     int `json:"images_added"`
	ImagesRemoved   int `json:"images_removed"`
	ImagesChanged   int `json:"images_changed"`
	// Jobs is the number of distinct openQA jobs; Superseded of them were
	// replaced by a clone or a newer job of the same scenario, and Tests is
	// the number of scenarios that remain (each counted once below).
	Jobs          int `json:"jobs"`
	Superseded    int `json:"superseded"`
	Tests         int `json:"tests"`
	Passed        int `json:"passed"`
	Failed        int `json:"failed"`
	NewFailures   int `json:"new_failures"`
	KnownFailures int `json:"known_failures"`
	Fixed         int `json:"fixed"`
	SoftFailures  int `json:"soft_failures"`
	Incomplete    int `json:"incomplete"`
	Skipped       int `json:"skipped"`
	Cancelled     int `json:"cancelled"`
	Pending       int `json:"pending"`
	// Flaky is how many failures passed on composeci's re-run;
	// KnownIssues how many failures the registry of known issues matched.
	Flaky       int `json:"flaky"`
	KnownIssues int `json:"known_issues"`
	// ResultsComplete is false while any test is pending: the report is a
	// snapshot and a later one may differ.
	ResultsComplete bool `json:"results_complete"`
}

// OpenQA holds the openQA findings. Every list is sorted by arch, flavor,
// test and machine.
type OpenQA struct {
	// LeftOut is true when the check ran without openQA: the lists are
	// empty because nobody asked, not because nothing failed.
	LeftOut bool `json:"left_out,omitempty"`
	// OverviewURL is the build's overview page in openQA; absent when
	// unknown.
	OverviewURL string `json:"overview_url,omitempty"`
	// PreviousJobs is the number of openQA jobs of the previous compose; 0
	// with a previous compose means it has no results to compare with.
	PreviousJobs  int   `json:"previous_jobs"`
	NewFailures   []Job `json:"new_failures"`
	KnownFailures []Job `json:"known_failures"`
	Fixed         []Job `json:"fixed"`
	SoftFailures  []Job `json:"soft_failures"`
	Incomplete    []Job `json:"incomplete"`
	Skipped       []Job `json:"skipped"`
	Cancelled     []Job `json:"cancelled"`
	Pending       []Job `json:"pending"`
	// Flaky failed for the first time and passed (or soft-failed) when
	// composeci re-ran them: job_id the first try, rerun_job_id the re-run.
	Flaky []Job `json:"flaky"`
	// ExpiredKnownIssues are registry entries that would have matched a
	// failure had they not expired.
	ExpiredKnownIssues []KnownIssueRef `json:"expired_known_issues"`
	// ByArch and ByFlavor count outcomes per arch and per (arch, flavor).
	ByArch    []ArchCounts   `json:"by_arch"`
	ByFlavor  []FlavorCounts `json:"by_flavor"`
	Durations Durations      `json:"durations"`
}

// Job is one scenario's newest openQA job.
type Job struct {
	Test    string `json:"test"`
	Flavor  string `json:"flavor"`
	Arch    string `json:"arch"`
	Machine string `json:"machine"`
	JobID   int64  `json:"job_id"`
	URL     string `json:"url"`
	State   string `json:"state"`
	Result  string `json:"result"`
	// Restarted is true when this job is a clone of an earlier try.
	Restarted bool `json:"restarted,omitempty"`
	// CloneMissing is true for a restarted job whose clone is unknown.
	CloneMissing bool `json:"clone_missing,omitempty"`
	// PreviousJobID and PreviousResult are the same scenario in the
	// previous compose; absent when it did not run there.
	PreviousJobID  int64  `json:"previous_job_id,omitempty"`
	PreviousResult string `json:"previous_result,omitempty"`
	PreviousURL    string `json:"previous_url,omitempty"`
	Seconds        int64  `json:"seconds,omitempty"`
	// Confirmed, on a new failure, is true when composeci re-ran it and it
	// failed again; false when it was not re-run (confirmation off, capped,
	// or not yet). Absent on other lists.
	Confirmed *bool `json:"confirmed,omitempty"`
	// RerunJobID and RerunURL are composeci's re-run of the job; JobID and
	// URL are then its first try.
	RerunJobID int64  `json:"rerun_job_id,omitempty"`
	RerunURL   string `json:"rerun_url,omitempty"`
	// KnownIssue is the registry entry that matches the failure: a known
	// issue raises no alarm.
	KnownIssue *KnownIssueRef `json:"known_issue,omitempty"`
	// UpgradedPackages, on a new failure when the source packages were
	// compared, are the packages upgraded in the variant and arch of its
	// image (UpgradedTree, "Variant/arch"; "" when the image or its tree
	// is unknown and the list is the whole compose's): those whose names
	// occur in the test's name or a module it failed in first, then the
	// rest by name, at most MaxFailurePackages; UpgradedMore counts the
	// rest. Absent on other lists, and [] when nothing was upgraded there.
	UpgradedPackages []UpgradedPackage `json:"upgraded_packages,omitzero"`
	UpgradedMore     int               `json:"upgraded_packages_more,omitempty"`
	UpgradedTree     string            `json:"upgraded_packages_tree,omitempty"`
	// Gating is true when a requirement of the gating check that the
	// compose does not meet is this job (or its re-run): the job is why
	// the gating check fails. Absent otherwise.
	Gating bool `json:"gating,omitempty"`
}

// Gating is the gating check of check-compose: whether the compose would
// pass the gating of a decision context, as Greenwave decides it
// (docs/protocols.md, section (j)).
type Gating struct {
	DecisionContext string `json:"decision_context"`
	ProductVersion  string `json:"product_version"`
	// Outcome is "passed", "failed", "no-policy" (no policy of the
	// context applies to the compose) or "error" (Greenwave could not be
	// asked); Passed is true for "passed" only.
	Outcome string `json:"outcome"`
	Passed  bool   `json:"passed"`
	// Summary is Greenwave's own line; absent without a decision.
	Summary string `json:"summary,omitempty"`
	// Error is Greenwave's message (no-policy) or what went wrong (error).
	Error string `json:"error,omitempty"`
	// Required is the number of required tests; Failed of them failed (or
	// errored: unsatisfied, not waived, not missing); Missing have no
	// result.
	Required int `json:"required"`
	Failed   int `json:"failed"`
	Missing  int `json:"missing"`
	// Unsatisfied are the requirements not met, sorted by test case,
	// scenario and type.
	Unsatisfied []GatingRequirement `json:"unsatisfied"`
}

// GatingRequirement is a requirement of the gating check the compose does
// not meet.
type GatingRequirement struct {
	// Type is Greenwave's: test-result-failed, test-result-missing,
	// test-result-errored, ...
	Type     string `json:"type"`
	Testcase string `json:"testcase"`
	// Scenario is "<DISTRI>.<FLAVOR>.<ARCH>.<MACHINE>"; absent when
	// Greenwave gave none.
	Scenario    string `json:"scenario,omitempty"`
	ErrorReason string `json:"error_reason,omitempty"`
	// JobID and URL are the compose's openQA job of the test and
	// scenario; absent when there is none.
	JobID int64  `json:"job_id,omitempty"`
	URL   string `json:"url,omitempty"`
}

// Counts are the outcomes of a set of tests.
type Counts struct {
	Total      int `json:"total"`
	Passed     int `json:"passed"`
	Failed     int `json:"failed"`
	SoftFailed int `json:"softfailed"`
	Incomplete int `json:"incomplete"`
	Skipped    int `json:"skipped"`
	Cancelled  int `json:"cancelled"`
	Pending    int `json:"pending"`
	Flaky      int `json:"flaky"`
}

// ArchCounts are the outcomes on one arch.
type ArchCounts struct {
	Arch string `json:"arch"`
	Counts
}

// FlavorCounts are the outcomes of one flavor on one arch.
type FlavorCounts struct {
	Arch   string `json:"arch"`
	Flavor string `json:"flavor"`
	Counts
}

// Durations are the jobs' running times.
type Durations struct {
	TotalSeconds   int64     `json:"total_seconds"`
	LongestSeconds int64     `json:"longest_seconds"`
	LongestJobID   int64     `json:"longest_job_id,omitempty"`
	SpanSeconds    int64     `json:"span_seconds"`
	FirstStarted   time.Time `json:"first_started,omitzero"`
	LastFinished   time.Time `json:"last_finished,omitzero"`
	TimedJobs      int       `json:"timed_jobs"`
}

// Meta is what the report says about the compose beyond the findings.
type Meta struct {
	// Label is the compose's label, "" when it has none.
	Label string
	// Status is the compose's Pungi STATUS.
	Status string
	// Location is the compose's URL.
	Location string
	// GeneratedAt stamps the report; zero means now. Golden tests and
	// re-renders of archived inputs pass a fixed time.
	GeneratedAt time.Time
	// Reruns are the compose's re-runs, from its audit trail.
	Reruns []Rerun
	// Packages are the two composes' source packages, for the packages
	// section and the upgraded packages of each new failure; nil when they
	// were not read, and then PackagesNote says why ("no previous compose
	// to compare with", "... has no rpms.json").
	Packages     *PackageInput
	PackagesNote string
	// OpenQALeftOut is true when the check ran without openQA (--no-openqa):
	// the report says so, and knows less than one with openQA results.
	OpenQALeftOut bool
	// OverviewURL is the build's overview page in openQA.
	OverviewURL string
}

// Build makes the report of findings f.
func Build(f checks.Findings, meta Meta) Report {
	at := meta.GeneratedAt
	if at.IsZero() {
		at = time.Now()
	}
	st := fedfind.StreamOf(f.Compose)
	release, _ := releaseOf(f.Compose) // a parsed ID always has one
	r := Report{
		SchemaVersion:   SchemaVersion,
		ComposeID:       f.Compose.String(),
		Label:           printable(meta.Label),
		Stream:          Stream{Kind: string(st.Kind), Short: st.Short, Version: st.Version, Dir: st.Dir, Name: st.String()},
		Release:         release,
		Status:          meta.Status,
		Location:        meta.Location,
		GeneratedAt:     at.UTC().Truncate(time.Second),
		Problem:         f.Problem(),
		Subvariants:     nonNil(f.Subvariants),
		MissingExpected: make([]MissingImage, 0, len(f.MissingExpected)),
		Diff: fedfind.ImageDiff{Added: nonNil(f.Diff.Added), Removed: nonNil(f.Diff.Removed),
			Changed: nonNil(f.Diff.Changed)},
	}
	for _, m := range f.MissingExpected {
		r.MissingExpected = append(r.MissingExpected, MissingImage{ExpectedImage: m.ExpectedImage, Identity: m.Identity})
	}
	if f.HasPrevious() {
		r.PreviousComposeID = f.Previous.String()
	}
	o := f.OpenQA
	r.OpenQA = OpenQA{
		LeftOut:            meta.OpenQALeftOut,
		OverviewURL:        meta.OverviewURL,
		PreviousJobs:       o.PreviousJobs,
		NewFailures:        jobsOf(o.NewFailures),
		KnownFailures:      jobsOf(o.KnownFailures),
		Fixed:              jobsOf(o.Fixed),
		SoftFailures:       jobsOf(o.SoftFailures),
		Incomplete:         jobsOf(o.Incomplete),
		Skipped:            jobsOf(o.Skipped),
		Cancelled:          jobsOf(o.Cancelled),
		Pending:            jobsOf(o.Pending),
		Flaky:              jobsOf(o.Flaky),
		ExpiredKnownIssues: knownRefs(o.ExpiredKnownIssues),
		ByArch:             make([]ArchCounts, 0, len(o.ByArch)),
		ByFlavor:           make([]FlavorCounts, 0, len(o.ByFlavor)),
		Durations: Durations{TotalSeconds: o.Durations.TotalSeconds, LongestSeconds: o.Durations.LongestSeconds,
			LongestJobID: o.Durations.LongestJobID, SpanSeconds: o.Durations.SpanSeconds,
			FirstStarted: o.Durations.FirstStarted, LastFinished: o.Durations.LastFinished, TimedJobs: o.Durations.Timed},
	}
	for _, a := range o.ByArch {
		r.OpenQA.ByArch = append(r.OpenQA.ByArch, ArchCounts{Arch: a.Arch, Counts: Counts(a.Counts)})
	}
	for _, fl := range o.ByFlavor {
		r.OpenQA.ByFlavor = append(r.OpenQA.ByFlavor, FlavorCounts{Arch: fl.Arch, Flavor: fl.Flavor, Counts: Counts(fl.Counts)})
	}
	r.Summary = Summary{
		Images: f.Images, ExpectedImages: f.Expected, MissingExpected: len(f.MissingExpected),
		ImagesAdded: len(f.Diff.Added), ImagesRemoved: len(f.Diff.Removed), ImagesChanged: len(f.Diff.Changed),
		Jobs: o.Jobs, Superseded: o.Superseded, Tests: o.Counts.Total,
		Passed: o.Counts.Passed, Failed: o.Counts.Failed,
		NewFailures: len(o.NewFailures), KnownFailures: len(o.KnownFailures), Fixed: len(o.Fixed),
		SoftFailures: len(o.SoftFailures), Incomplete: len(o.Incomplete), Skipped: len(o.Skipped),
		Cancelled: len(o.Cancelled), Pending: len(o.Pending), ResultsComplete: o.Complete(),
		Flaky: len(o.Flaky), KnownIssues: knownCount(o.KnownFailures),
	}
	for i := range r.OpenQA.NewFailures {
		confirmed := r.OpenQA.NewFailures[i].RerunJobID != 0
		r.OpenQA.NewFailures[i].Confirmed = &confirmed
	}
	if g := f.Gating; g != nil {
		r.Gating = gatingOf(g)
		r.OpenQA.markGating(g.JobIDs())
	}
	r.Reruns = nonNil(meta.Reruns)
	r.PackagesNote = meta.PackagesNote
	if in := meta.Packages; in != nil && in.Old != nil && in.New != nil {
		var x packageIndex
		r.Packages, x = packagesOf(in)
		for i := range r.OpenQA.NewFailures {
			j := &r.OpenQA.NewFailures[i]
			// The modules of the job that failed: the first try, and
			// composeci's re-run of it.
			modules := slices.Concat(in.FailedModules[j.JobID], in.FailedModules[j.RerunJobID])
			x.upgradesOf(j, modules)
		}
	}
	return r
}

// gatingOf is the report's gating check.
func gatingOf(g *checks.Gating) *Gating {
	out := &Gating{DecisionContext: g.Context, ProductVersion: g.ProductVersion, Outcome: g.Outcome, Passed: g.Passed(),
		Summary: g.Summary, Error: g.Error, Required: g.Required, Failed: g.Failed, Missing: g.Missing,
		Unsatisfied: make([]GatingRequirement, 0, len(g.Unsatisfied))}
	for _, u := range g.Unsatisfied {
		out.Unsatisfied = append(out.Unsatisfied, GatingRequirement{Type: u.Type, Testcase: u.Testcase, Scenario: u.Scenario,
			ErrorReason: u.ErrorReason, JobID: u.JobID, URL: u.URL})
	}
	return out
}

// markGating marks the jobs of every list that are (or whose re-run is)
// one of ids.
func (o *OpenQA) markGating(ids map[int64]bool) {
	if len(ids) == 0 {
		return
	}
	for _, list := range [][]Job{o.NewFailures, o.KnownFailures, o.Fixed, o.SoftFailures, o.Incomplete, o.Skipped,
		o.Cancelled, o.Pending, o.Flaky} {
		for i := range list {
			j := &list[i]
			j.Gating = ids[j.JobID] || (j.RerunJobID != 0 && ids[j.RerunJobID])
		}
	}
}

func knownCount(rs []checks.JobResult) int {
	n := 0
	for _, r := range rs {
		if r.KnownIssue != nil {
			n++
		}
	}
	return n
}

func knownRefs(ks []checks.KnownIssue) []KnownIssueRef {
	out := make([]KnownIssueRef, 0, len(ks))
	for _, k := range ks {
		out = append(out, KnownIssueRef{ID: k.ID, Reason: k.Reason, Bug: k.Bug, Expires: k.Expires.UTC()})
	}
	return out
}

// BuildDoomed makes the report of a compose that ended without a result:
// its STATUS, the evidence d, and the previous good compose of its stream
// (zero when none was found).
func BuildDoomed(id fedfind.ComposeID, previous fedfind.ComposeID, d Doomed, meta Meta) Report {
	r := Build(checks.Findings{Compose: id, Previous: previous}, meta)
	d.Reasons = nonNil(d.Reasons)
	r.Doomed = &d
	r.Problem = true
	return r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func jobsOf(rs []checks.JobResult) []Job {
	out := make([]Job, 0, len(rs))
	for _, r := range rs {
		j := Job{Test: r.Test, Flavor: r.Flavor, Arch: r.Arch, Machine: r.Machine,
			JobID: r.JobID, URL: r.URL, State: r.State, Result: r.Result, Restarted: r.Clone,
			CloneMissing: r.CloneMissing, PreviousJobID: r.PreviousJobID, PreviousResult: r.PreviousResult,
			PreviousURL: r.PreviousURL, Seconds: r.Seconds}
		if r.RerunOf != 0 {
			// composeci's re-run: the first try leads, the re-run follows.
			j.JobID, j.URL, j.RerunJobID, j.RerunURL = r.RerunOf, r.RerunOfURL, r.JobID, r.URL
			j.Restarted = false
		}
		if k := r.KnownIssue; k != nil {
			j.KnownIssue = &KnownIssueRef{ID: k.ID, Reason: k.Reason, Bug: k.Bug, Expires: k.Expires.UTC()}
		}
		out = append(out, j)
	}
	return out
}

// JSON returns the report as the archive stores it: indented, with a
// trailing newline.
func (r Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding report of %s: %w", r.ComposeID, err)
	}
	return append(b, '\n'), nil
}

// ParseReport reads a report's JSON. It refuses a schema_version newer than
// SchemaVersion (wrapping ErrSchemaVersion) rather than misread it, and
// unknown fields are ignored so that older code reads reports with fields
// added later.
func ParseReport(data []byte) (Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return Report{}, fmt.Errorf("reading report: %w", err)
	}
	if r.SchemaVersion < 1 || r.SchemaVersion > SchemaVersion {
		return Report{}, fmt.Errorf("%w: %d (this code reads 1 to %d)", ErrSchemaVersion, r.SchemaVersion, SchemaVersion)
	}
	// Lists a version 1 report did not have read as empty, not null.
	r.Reruns = nonNil(r.Reruns)
	r.OpenQA.Flaky = nonNil(r.OpenQA.Flaky)
	r.OpenQA.ExpiredKnownIssues = nonNil(r.OpenQA.ExpiredKnownIssues)
	if r.Gating != nil {
		r.Gating.Unsatisfied = nonNil(r.Gating.Unsatisfied)
	}
	return r, nil
}

// HasPrevious reports whether a previous compose was compared against.
func (r Report) HasPrevious() bool { return r.PreviousComposeID != "" }

// Name names the compose as release validation does: its ID, and its
// label when it has one ("Fedora-44-20261012.0 (RC-1.2)").
func (r Report) Name() string {
	if l := printable(r.Label); l != "" {
		return r.ComposeID + " (" + l + ")"
	}
	return r.ComposeID
}

// SummaryLine says in one line what needs reading: the counts of missing
// images and of each kind of failure, leaving out kinds there are none of.
// An all-clear compose gets "no missing images, no failures"; one that was
// not tested says "no openQA results" rather than look all clear.
func (r Report) SummaryLine() string {
	parts := r.summaryParts()
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = p.Text
	}
	return strings.Join(texts, ", ")
}

// summaryPart is a piece of the summary line and how it reads: Class is
// "bad" for what makes the report a problem (missing images, new
// failures), "good" for fixes and the all-clear, "" for the rest.
type summaryPart struct {
	Text, Class string
}

// summaryParts are the pieces of SummaryLine, in its order.
func (r Report) summaryParts() []summaryPart {
	if r.Doomed != nil {
		return []summaryPart{{"the compose ended " + printable(r.Status) + ": nothing to test", "bad"}}
	}
	s := r.Summary
	var parts []summaryPart
	add := func(n int, one, many, class string) {
		if n > 0 {
			parts = append(parts, summaryPart{plural(n, one, many), class})
		}
	}
	add(s.MissingExpected, "missing image", "missing images", "bad")
	add(s.NewFailures, "new failure", "new failures", "bad")
	add(s.KnownFailures, "known failure", "known failures", "")
	add(s.Fixed, "fixed", "fixed", "good")
	add(s.Flaky, "flaky", "flaky", "")
	add(s.SoftFailures, "soft failure", "soft failures", "")
	add(s.Incomplete, "incomplete", "incomplete", "")
	add(s.Pending, "pending", "pending", "")
	switch {
	case r.OpenQA.LeftOut:
		parts = append(parts, summaryPart{"openQA left out", ""})
	case s.Tests == 0:
		parts = append(parts, summaryPart{"no openQA results", ""})
	}
	if len(parts) == 0 {
		return []summaryPart{{"no missing images, no failures", "good"}}
	}
	return parts
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Subject is the email subject of the report: the compose (and its label,
// for a candidate), its status, the number of missing images (when any),
// the number of new failures (always: it is what a reader scans the list
// for), and a warning while results are incomplete. For example
// "Fedora-Rawhide-20261122.n.0 compose check: FINISHED_INCOMPLETE, 2
// missing images, 3 new failures", "Fedora-44-20261012.0 (RC-1.2) compose
// check: FINISHED, 0 new failures".
func Subject(r Report) string {
	var b strings.Builder
	b.WriteString(r.Name())
	b.WriteString(" compose check: ")
	status := printable(r.Status)
	if status == "" {
		status = "status unknown"
	}
	b.WriteString(status)
	if r.Doomed != nil {
		b.WriteString(", not tested")
		return b.String()
	}
	if n := r.Summary.MissingExpected; n > 0 {
		b.WriteString(", " + plural(n, "missing image", "missing images"))
	}
	b.WriteString(", " + plural(r.Summary.NewFailures, "new failure", "new failures"))
	if !r.Summary.ResultsComplete {
		b.WriteString(" (results incomplete: " + plural(r.Summary.Pending, "test", "tests") + " pending)")
	}
	return b.String()
}

// printable drops control characters (a STATUS file ends in a newline, and
// a hostile one could hold a header break) and trims spaces.
func printable(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s))
}
