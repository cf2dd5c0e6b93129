package openqa

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
)

// ScheduleOptions tunes Schedule.
type ScheduleOptions struct {
	// Rules decide the products; nil means DefaultRules().
	Rules *Rules
	// Releases override the rules' release numbers (zero fields do not):
	// numbers given by hand.
	Releases Releases
	// ReleaseData, when set, gives the release numbers Releases leaves
	// zero: Fedora QA's release data, current = the highest stable
	// release, Rawhide = the highest release known + 1. When it cannot be
	// read the rules' numbers stand in.
	ReleaseData ReleaseSource
	// Force posts every product even when it has live jobs. openQA then
	// obsoletes the pending jobs of the product and starts a fresh set.
	Force bool
	// DryRun plans and checks the existing jobs but posts nothing.
	DryRun bool
	// CandidateGroup is the job group in which a candidate compose's
	// build is tagged important (tag:<ID>:important:candidate, as
	// fedora_openqa posts to group 1); 0 tags nothing.
	CandidateGroup int
}

// ReleaseSource gives Fedora's release data; *fedfind.ReleaseSource is
// one. Get logs its own failures (once, not per call): Schedule falls back
// on the rules without a word.
type ReleaseSource interface {
	Get(ctx context.Context) (fedfind.ReleaseData, error)
}

// ReleaseNumbers are the release numbers a schedule with these options
// posts (CURRREL, RAWREL): Releases where set, then the release data, then
// the rules' (rules nil: the built-in ones).
func (o ScheduleOptions) ReleaseNumbers(ctx context.Context, rules *Rules) Releases {
	rel := o.Releases
	if o.ReleaseData != nil && (rel.Current == 0 || rel.Rawhide == 0) {
		if d, err := o.ReleaseData.Get(ctx); err == nil {
			if rel.Current == 0 {
				rel.Current = d.Current()
			}
			if rel.Rawhide == 0 {
				rel.Rawhide = d.Rawhide()
			}
		}
	}
	if rules == nil {
		rules = DefaultRules()
	}
	if rel.Current == 0 {
		rel.Current = rules.Releases.Current
	}
	if rel.Rawhide == 0 {
		rel.Rawhide = rules.Releases.Rawhide
	}
	return rel
}

// Scheduled is the outcome for one product. Its JSON form is the interface
// of `composeci schedule --json`.
type Scheduled struct {
	Flavor string `json:"flavor"`
	Arch   string `json:"arch"`
	// JobIDs are the jobs created, or with Skipped the live jobs found.
	JobIDs []int64 `json:"job_ids"`
	// Skipped: the product already had live jobs and was not posted.
	Skipped bool `json:"skipped"`
	// DryRun: the product would have been posted.
	DryRun bool `json:"dry_run,omitempty"`
	// Recovered: a POST failed or timed out, yet the check that followed
	// found that it had created the jobs.
	Recovered bool `json:"recovered,omitempty"`
	// Attempts is the number of POSTs sent for the product.
	Attempts int `json:"attempts,omitempty"`
	// NotConfigured: openQA has no job templates for the product — it
	// answered 200 with "no products found for …" or count 0, or 404 "no
	// templates found" — so it created no jobs. fedora_openqa carries on
	// in the same case: an instance tests the flavors its operators set
	// up, and a product it has no tests for is not an error.
	NotConfigured bool `json:"not_configured,omitempty"`
	// Error is why the product could not be scheduled, or with
	// NotConfigured openQA's words.
	Error string `json:"error,omitempty"`
	// Temporary: the failure may pass (openQA answered 5xx or 429, or not
	// at all); scheduling again may succeed.
	Temporary bool `json:"temporary,omitempty"`
	// Params are the parameters posted (or that would be).
	Params map[string]string `json:"-"`
}

// Schedule posts each product of the compose that has no live jobs yet for
// its BUILD, FLAVOR and ARCH, and returns one Scheduled per product.
//
// It is idempotent, unlike fedora_openqa: the build's jobs are read once
// (GET /api/v1/jobs?build=<ID>, every page) and a product with any live job
// (not cancelled, user_cancelled or obsoleted) is skipped, image-less
// flavors included. Running it twice, or again after a crash between two
// products, posts only what is missing.
//
// A POST is never retried blindly: re-posting with _OBSOLETE would cancel
// the jobs the first POST made and start them again. When a POST fails in a
// way that may not be final (transport error, timeout, 5xx) the build's jobs
// are read again after Options.RecheckDelay; live jobs of the product that
// were not there before mean the POST worked. Only if there are none is the
// product posted again, up to Options.PostAttempts times.
//
// A product openQA has no job templates for (NotConfigured) is no failure:
// it is logged and left out, as fedora_openqa does. One product failing
// does not stop the others: the error returned joins every product's
// failure, and each Scheduled carries its own (Temporary when posting
// again may succeed). Schedule
// stops at the first product when the context ends, and at the first
// refusal of its credentials (ErrAuthRefused): every other POST would be
// refused too. It then returns the products so far, the refused one last.
func (c *Client) Schedule(ctx context.Context, comp Compose, opts ScheduleOptions) ([]Scheduled, error) {
	rules := opts.Rules
	if rules == nil {
		rules = DefaultRules()
	}
	products, err := rules.Products(comp, opts.ReleaseNumbers(ctx, rules))
	if err != nil {
		return nil, err
	}
	existing, err := c.BuildJobs(ctx, comp.ID)
	if err != nil {
		return nil, fmt.Errorf("openqa: checking existing jobs of %s: %w", comp.ID, err)
	}
	out := make([]Scheduled, 0, len(products))
	var errs []error
	for _, p := range products {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		s := Scheduled{Flavor: p.Flavor, Arch: p.Arch, Params: p.Params}
		live := liveJobIDs(existing, p.Flavor, p.Arch, nil)
		switch {
		case len(live) > 0 && !opts.Force:
			s.Skipped, s.JobIDs = true, live
			c.log.Info("openqa: product already has jobs, skipped",
				"build", comp.ID, "flavor", p.Flavor, "arch", p.Arch, "jobs", live)
		case opts.DryRun:
			s.DryRun = true
		default:
			known := map[int64]bool{}
			for _, j := range existing {
				known[j.ID] = true
			}
			err := c.postProduct(ctx, comp.ID, p, known, &s)
			switch {
			case err != nil && (errors.Is(err, ErrNoJobs) || errors.Is(err, ErrNotFound)) && ctx.Err() == nil:
				s.NotConfigured, s.Error = true, err.Error()
				c.log.Warn("openqa: no job templates for the product; nothing scheduled for it",
					"build", comp.ID, "flavor", p.Flavor, "arch", p.Arch, "err", err)
			case err != nil:
				s.Error = err.Error()
				s.Temporary = postMayHaveFailedTransiently(ctx, err)
				errs = append(errs, fmt.Errorf("%s %s: %w", p.Flavor, p.Arch, err))
				if ctx.Err() != nil || errors.Is(err, ErrAuthRefused) {
					out = append(out, s)
					return out, errors.Join(errs...)
				}
			default:
				c.log.Info("openqa: scheduled", "build", comp.ID, "flavor", p.Flavor, "arch", p.Arch,
					"jobs", s.JobIDs, "recovered", s.Recovered)
			}
		}
		if s.JobIDs == nil {
			s.JobIDs = []int64{}
		}
		out = append(out, s)
	}
	if comp.Candidate && !comp.eln() && opts.CandidateGroup > 0 && !opts.DryRun && anyJobs(out) {
		// Not a failure of the schedule when it cannot be posted: the
		// jobs are there; only their protection is missing, and said.
		if err := c.TagImportant(ctx, opts.CandidateGroup, comp.ID, "candidate"); err != nil {
			c.log.Warn("openqa: could not tag the candidate build important; a nightly may obsolete its jobs",
				"build", comp.ID, "group", opts.CandidateGroup, "err", err)
		}
	}
	return out, errors.Join(errs...)
}

// anyJobs reports whether some product has jobs, posted or found.
func anyJobs(res []Scheduled) bool {
	for _, s := range res {
		if len(s.JobIDs) > 0 {
			return true
		}
	}
	return false
}

// Comment is a comment of an openQA job group or job.
type Comment struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
}

// GroupComments lists the comments of a job group (GET
// /api/v1/groups/<id>/comments).
func (c *Client) GroupComments(ctx context.Context, group int) ([]Comment, error) {
	var out []Comment
	if err := c.Get(ctx, fmt.Sprintf("groups/%d/comments", group), nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// TagImportant marks build important in a job group with the comment
// tag:<build>:important[:<description>], unless the group has such a tag
// of the build already: openQA then keeps the build's logs longer and
// never obsoletes its jobs. Running it twice posts one comment.
func (c *Client) TagImportant(ctx context.Context, group int, build, description string) error {
	comments, err := c.GroupComments(ctx, group)
	if err != nil {
		return fmt.Errorf("openqa: reading the comments of group %d: %w", group, err)
	}
	for _, cm := range comments {
		if strings.HasPrefix(cm.Text, "tag:"+build+":important") {
			return nil
		}
	}
	text := "tag:" + build + ":important"
	if description != "" {
		text += ":" + description
	}
	var res Comment
	if err := c.Post(ctx, fmt.Sprintf("groups/%d/comments", group), url.Values{"text": {text}}, &res); err != nil {
		return fmt.Errorf("openqa: tagging %s important in group %d: %w", build, group, err)
	}
	c.log.Info("openqa: build tagged important", "build", build, "group", group, "comment", res.ID)
	return nil
}

// postProduct posts one product; see Schedule for the re-check rule.
func (c *Client) postProduct(ctx context.Context, build string, p Product, known map[int64]bool, s *Scheduled) error {
	for {
		s.Attempts++
		res, err := c.PostISOs(ctx, p.Params)
		if err == nil {
			s.JobIDs = slices.Clone(res.IDs)
			slices.Sort(s.JobIDs)
			return nil
		}
		if !postMayHaveFailedTransiently(ctx, err) {
			return err
		}
		c.log.Warn("openqa: POST failed; checking whether it created jobs before trying again",
			"build", build, "flavor", p.Flavor, "arch", p.Arch, "attempt", s.Attempts, "err", err)
		if err := sleepCtx(ctx, c.recheckWait(err)); err != nil {
			return err
		}
		jobs, gerr := c.BuildJobs(ctx, build)
		if gerr != nil {
			// Without knowing, posting again could double the job set.
			return fmt.Errorf("%w; and the check for jobs it may have created failed, so it was not posted again: %w", err, gerr)
		}
		if ids := liveJobIDs(jobs, p.Flavor, p.Arch, known); len(ids) > 0 {
			s.JobIDs, s.Recovered = ids, true
			return nil
		}
		if s.Attempts >= c.opts.PostAttempts {
			return fmt.Errorf("after %d attempts: %w", s.Attempts, err)
		}
		for _, j := range jobs {
			known[j.ID] = true
		}
	}
}

// maxPostRetryAfter caps the Retry-After a POST's 429 or 503 can make the
// client wait before it checks and posts again.
const maxPostRetryAfter = time.Minute

// recheckWait is how long to wait after a failed POST before checking
// whether it took effect: Options.RecheckDelay, or the Retry-After of a
// 429 or 503 when longer (at most maxPostRetryAfter).
func (c *Client) recheckWait(err error) time.Duration {
	d := c.opts.RecheckDelay
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > d {
		d = min(ae.RetryAfter, maxPostRetryAfter)
	}
	return d
}

// postMayHaveFailedTransiently tells a failure worth a check-and-retry
// (transport error, timeout, 5xx, 429) from an answer (4xx, a 200 with an
// error) and from the caller giving up.
func postMayHaveFailedTransiently(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	return true // no answer at all: transport error or timeout
}

// liveJobIDs returns the ids of the live jobs of (flavor, arch), sorted,
// leaving out those in skip.
func liveJobIDs(jobs []Job, flavor, arch string, skip map[int64]bool) []int64 {
	var ids []int64
	for _, j := range jobs {
		if j.Flavor() == flavor && j.Arch() == arch && j.Live() && !skip[j.ID] {
			ids = append(ids, j.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
