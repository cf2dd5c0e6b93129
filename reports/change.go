package reports

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/composeci/composeci/fedfind"
)

// ChangeKind names one way a compose's state differs from its previous
// compose's. The values are stable: they are sent in notification bodies
// (docs/messages.md).
type ChangeKind string

// The kinds of change, in the order Change lists them.
const (
	// ChangeFirst: there was no previous report to compare with (the first
	// compose of a stream, or the previous compose was never checked), so
	// composeci cannot tell that nothing changed and says it did.
	ChangeFirst ChangeKind = "first"
	// ChangeDoomed: the compose ended without a result (DOOMED or
	// TERMINATED). Every doomed compose is news, even after another one.
	ChangeDoomed ChangeKind = "doomed"
	// ChangeStatus: the compose's Pungi STATUS differs from the previous
	// compose's (both known).
	ChangeStatus ChangeKind = "status"
	// ChangeNewFailures: a test fails that did not fail in the previous
	// compose (the report's new failures).
	ChangeNewFailures ChangeKind = "new_failures"
	// ChangeFixed: a test that failed in the previous compose passes (or
	// soft-fails) now.
	ChangeFixed ChangeKind = "fixed"
	// ChangeMissingImages: an expected image is missing that was not
	// missing from the previous compose.
	ChangeMissingImages ChangeKind = "missing_images"
	// ChangeReturningImages: an expected image missing from the previous
	// compose is back.
	ChangeReturningImages ChangeKind = "returning_images"
)

// Scenario is what makes "the same test" across composes: openQA's TEST,
// FLAVOR, ARCH and MACHINE.
type Scenario struct {
	Test    string `json:"test"`
	Flavor  string `json:"flavor"`
	Arch    string `json:"arch"`
	Machine string `json:"machine"`
}

// ScenarioOf returns the scenario of a report's job.
func ScenarioOf(j Job) Scenario {
	return Scenario{Test: j.Test, Flavor: j.Flavor, Arch: j.Arch, Machine: j.Machine}
}

// String prints the scenario as people name it: test on flavor, arch,
// machine.
func (s Scenario) String() string {
	return s.Test + " (" + s.Flavor + " " + s.Arch + " " + s.Machine + ")"
}

func compareScenarios(a, b Scenario) int {
	return cmp.Or(cmp.Compare(a.Arch, b.Arch), cmp.Compare(a.Flavor, b.Flavor),
		cmp.Compare(a.Test, b.Test), cmp.Compare(a.Machine, b.Machine))
}

// Change says whether and how a compose's report differs from its previous
// compose's: what `when = "change"` routing entries are told about. Every
// list is sorted and non-nil.
type Change struct {
	// Kinds are the ways the state changed, in the order of the ChangeKind
	// constants; empty when nothing changed.
	Kinds []ChangeKind `json:"kinds"`
	// Previous is the compose of the previous report compared with; ""
	// when there was none.
	Previous string `json:"previous"`
	// NewFailures and Fixed are the scenarios of the report's new failures
	// and fixed tests.
	NewFailures []Scenario `json:"new_failures"`
	Fixed       []Scenario `json:"fixed"`
	// MissingImages are expected images missing now and not from the
	// previous compose; ReturningImages the other way round. Without a
	// previous report every missing image counts as newly missing.
	MissingImages   []fedfind.ExpectedImage `json:"missing_images"`
	ReturningImages []fedfind.ExpectedImage `json:"returning_images"`
	// StatusFrom and StatusTo are the previous and current STATUS when
	// they differ; both "" otherwise.
	StatusFrom string `json:"status_from,omitempty"`
	StatusTo   string `json:"status_to,omitempty"`
}

// Changed reports whether the compose's state changed.
func (c Change) Changed() bool { return len(c.Kinds) > 0 }

// Has reports whether the change includes kind k.
func (c Change) Has(k ChangeKind) bool { return slices.Contains(c.Kinds, k) }

// String says the change in words, for logs and notes: "no change", or for
// example "2 new failures, 1 fixed, status FINISHED → FINISHED_INCOMPLETE".
func (c Change) String() string {
	if !c.Changed() {
		return "no change"
	}
	var parts []string
	for _, k := range c.Kinds {
		switch k {
		case ChangeFirst:
			parts = append(parts, "no previous report to compare with")
		case ChangeDoomed:
			parts = append(parts, "the compose is doomed")
		case ChangeStatus:
			parts = append(parts, "status "+printable(c.StatusFrom)+" → "+printable(c.StatusTo))
		case ChangeNewFailures:
			parts = append(parts, plural(len(c.NewFailures), "new failure", "new failures"))
		case ChangeFixed:
			parts = append(parts, plural(len(c.Fixed), "fixed", "fixed"))
		case ChangeMissingImages:
			parts = append(parts, plural(len(c.MissingImages), "image newly missing", "images newly missing"))
		case ChangeReturningImages:
			parts = append(parts, plural(len(c.ReturningImages), "image back", "images back"))
		}
	}
	return strings.Join(parts, ", ")
}

// Changes compares cur with prev, the report of the compose cur was
// compared against (the archived report of cur.PreviousComposeID; nil when
// there is none). It is pure and needs no I/O.
//
// New failures and fixed tests are the report's own: the checks already
// classed cur's openQA results against the previous compose's jobs, with
// known issues and flaky tests taken out, so a failure that goes on failing
// is a known failure and no change. Missing images and the STATUS need the
// previous report: an image missing from both composes, or a STATUS that
// stays the same, is no change. A doomed compose always is one.
//
// With prev nil the result always has ChangeFirst: without a previous
// report composeci cannot show that nothing changed, and staying silent
// about the first compose of a stream would be worse than one report too
// many.
func Changes(prev *Report, cur Report) Change {
	c := Change{Kinds: []ChangeKind{}, NewFailures: scenarios(cur.OpenQA.NewFailures), Fixed: scenarios(cur.OpenQA.Fixed),
		MissingImages: []fedfind.ExpectedImage{}, ReturningImages: []fedfind.ExpectedImage{}}
	add := func(k ChangeKind, ok bool) {
		if ok {
			c.Kinds = append(c.Kinds, k)
		}
	}
	if prev != nil {
		c.Previous = prev.ComposeID
	}
	add(ChangeFirst, prev == nil)
	add(ChangeDoomed, cur.Doomed != nil)
	if prev != nil {
		from, to := printable(prev.Status), printable(cur.Status)
		if from != "" && to != "" && from != to {
			c.StatusFrom, c.StatusTo = from, to
		}
	}
	add(ChangeStatus, c.StatusTo != "")
	add(ChangeNewFailures, len(c.NewFailures) > 0)
	add(ChangeFixed, len(c.Fixed) > 0)
	if cur.Doomed == nil { // a doomed compose has no images to miss
		var before []fedfind.ExpectedImage
		if prev != nil {
			before = expectedOf(prev.MissingExpected)
		}
		now := expectedOf(cur.MissingExpected)
		c.MissingImages = imagesNotIn(now, before)
		c.ReturningImages = imagesNotIn(before, now)
	}
	add(ChangeMissingImages, len(c.MissingImages) > 0)
	add(ChangeReturningImages, len(c.ReturningImages) > 0)
	return c
}

func scenarios(jobs []Job) []Scenario {
	out := make([]Scenario, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, ScenarioOf(j))
	}
	slices.SortFunc(out, compareScenarios)
	return slices.Compact(out)
}

// imageKey is what two spellings of one expected image share (the
// expected-image list is lower-case, a compose's subvariants are not).
func imageKey(im fedfind.ExpectedImage) string {
	return strings.ToLower(im.Arch + "\x00" + im.Subvariant + "\x00" + im.Type)
}

// imagesNotIn returns the images of a that b lacks, sorted by arch,
// subvariant and type.
func imagesNotIn(a, b []fedfind.ExpectedImage) []fedfind.ExpectedImage {
	in := map[string]bool{}
	for _, im := range b {
		in[imageKey(im)] = true
	}
	out := []fedfind.ExpectedImage{}
	for _, im := range a {
		if k := imageKey(im); !in[k] {
			in[k] = true // each image once
			out = append(out, im)
		}
	}
	slices.SortFunc(out, func(x, y fedfind.ExpectedImage) int { return cmp.Compare(imageKey(x), imageKey(y)) })
	return out
}

// contentKeyScheme is folded into every ContentKey: raise it when what
// the key covers changes, so old and new keys never match by accident.
const contentKeyScheme = 1

// ContentKey returns the version of a report: 32 hex digits of a SHA-256
// over what the report says, and nothing that merely stamps it. Two checks
// of a compose that find the same things give the same key, so a
// notification already delivered for that version is not delivered again;
// a finding that changes — a pending test that ends, a failure confirmed
// by a re-run, a known issue matched — gives a new key.
//
// It covers the compose and the compose compared with, the STATUS, the
// problem flag, the doom evidence, the image counts, the missing expected
// images, the image diff (by arch, identity and disc), the scenarios in
// every class of openQA result (with a new failure's confirmation and the
// known issue a failure matched), and the expired known issues. It leaves
// out generated_at, the location, job ids and URLs, durations, job states
// while pending, the per-arch counts (they follow from the lists) and the
// re-run audit trail: re-checking a compose whose clones got new job ids
// is not a new version. It leaves out the source packages too: they are
// context, fixed for a pair of composes, not a finding. A report with a
// gating check adds its outcome and the requirements not met (by type,
// test case and scenario; not Greenwave's wording, nor an error's): a
// report without one keeps the key it always had.
func ContentKey(r Report) string {
	type doomed struct {
		Reasons     []string `json:"reasons"`
		FailedTasks []int    `json:"failed_tasks"`
	}
	type gating struct {
		Context     string   `json:"context"`
		Outcome     string   `json:"outcome"`
		Unsatisfied []string `json:"unsatisfied"`
	}
	k := struct {
		Scheme             int                 `json:"scheme"`
		ComposeID          string              `json:"compose_id"`
		PreviousComposeID  string              `json:"previous_compose_id"`
		Status             string              `json:"status"`
		Problem            bool                `json:"problem"`
		Doomed             *doomed             `json:"doomed"`
		Images             int                 `json:"images"`
		ExpectedImages     int                 `json:"expected_images"`
		Missing            []string            `json:"missing"`
		Diff               map[string][]string `json:"diff"`
		OpenQA             map[string][]string `json:"openqa"`
		ExpiredKnownIssues []int64             `json:"expired_known_issues"`
		OpenQALeftOut      bool                `json:"openqa_left_out,omitempty"`
		Gating             *gating             `json:"gating,omitempty"`
	}{
		Scheme: contentKeyScheme, ComposeID: r.ComposeID, PreviousComposeID: r.PreviousComposeID,
		Status: printable(r.Status), Problem: r.Problem, OpenQALeftOut: r.OpenQA.LeftOut,
		Images: r.Summary.Images, ExpectedImages: r.Summary.ExpectedImages,
	}
	if r.Doomed != nil {
		d := doomed{Reasons: slices.Sorted(slices.Values(r.Doomed.Reasons)), FailedTasks: slices.Sorted(slices.Values(r.Doomed.FailedTasks))}
		k.Doomed = &d
	}
	if g := r.Gating; g != nil {
		k.Gating = &gating{Context: g.DecisionContext + "\x00" + g.ProductVersion, Outcome: g.Outcome, Unsatisfied: []string{}}
		for _, u := range g.Unsatisfied {
			k.Gating.Unsatisfied = append(k.Gating.Unsatisfied, u.Type+"\x00"+u.Testcase+"\x00"+u.Scenario)
		}
		slices.Sort(k.Gating.Unsatisfied)
	}
	for _, im := range r.MissingExpected {
		k.Missing = append(k.Missing, imageKey(im.ExpectedImage))
	}
	slices.Sort(k.Missing)
	k.Missing = slices.Compact(k.Missing)
	entry := func(e fedfind.DiffEntry) string { return e.Arch + "\x00" + e.Identity + "\x00" + strconv.Itoa(e.Disc) }
	k.Diff = map[string][]string{}
	for _, e := range r.Diff.Added {
		k.Diff["added"] = append(k.Diff["added"], entry(e))
	}
	for _, e := range r.Diff.Removed {
		k.Diff["removed"] = append(k.Diff["removed"], entry(e))
	}
	for _, e := range r.Diff.Changed {
		k.Diff["changed"] = append(k.Diff["changed"], entry(e.DiffEntry))
	}
	o := r.OpenQA
	k.OpenQA = map[string][]string{}
	for class, jobs := range map[string][]Job{
		"new_failures": o.NewFailures, "known_failures": o.KnownFailures, "fixed": o.Fixed,
		"soft_failures": o.SoftFailures, "incomplete": o.Incomplete, "skipped": o.Skipped,
		"cancelled": o.Cancelled, "pending": o.Pending, "flaky": o.Flaky,
	} {
		for _, j := range jobs {
			s := ScenarioOf(j)
			line := s.Arch + "\x00" + s.Flavor + "\x00" + s.Test + "\x00" + s.Machine
			if j.Confirmed != nil && *j.Confirmed {
				line += "\x00confirmed"
			}
			if j.KnownIssue != nil {
				line += "\x00known:" + strconv.FormatInt(j.KnownIssue.ID, 10)
			}
			k.OpenQA[class] = append(k.OpenQA[class], line)
		}
	}
	for _, m := range []map[string][]string{k.Diff, k.OpenQA} {
		for class := range m {
			slices.Sort(m[class])
			m[class] = slices.Compact(m[class])
		}
	}
	for _, e := range o.ExpiredKnownIssues {
		k.ExpiredKnownIssues = append(k.ExpiredKnownIssues, e.ID)
	}
	slices.Sort(k.ExpiredKnownIssues)
	// encoding/json writes map keys sorted: the encoding is canonical.
	b, err := json.Marshal(k)
	if err != nil {
		panic(fmt.Sprintf("reports: encoding a content key: %v", err)) // strings, ints and bools only
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
