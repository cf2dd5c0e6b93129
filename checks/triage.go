package checks

import (
	"slices"
	"time"

	"github.com/composeci/composeci/openqa"
)

// KnownIssue is an entry of the registry of known issues as the checks
// match it: a failure of Test — and of Flavor, Arch and failed openQA
// Module where they are given — is a known issue until Expires.
type KnownIssue struct {
	ID     int64
	Test   string
	Flavor string
	Arch   string
	Module string
	Reason string
	Bug    string
	// Expires is when the entry stops matching; zero: never.
	Expires time.Time
}

// Matches reports whether the entry covers a failure of scenario s that
// failed in modules.
func (k KnownIssue) Matches(s Scenario, modules []string) bool {
	return k.Test == s.Test && (k.Flavor == "" || k.Flavor == s.Flavor) && (k.Arch == "" || k.Arch == s.Arch) &&
		(k.Module == "" || slices.Contains(modules, k.Module))
}

// Expired reports whether the entry no longer matches at now (a zero now:
// nothing expires).
func (k KnownIssue) Expired(now time.Time) bool {
	return !k.Expires.IsZero() && !now.IsZero() && !now.Before(k.Expires)
}

// rerunOrigin walks j's clone chain back to the job composeci re-ran, if
// j descends from one of its re-runs: O with reruns[O] on the chain.
func rerunOrigin(j *openqa.Job, byID map[int64]*openqa.Job, reruns map[int64]int64) (*openqa.Job, bool) {
	for cur, steps := j, 0; cur.OriginID != 0 && steps < 64; steps++ {
		if reruns[cur.OriginID] == cur.ID {
			o, ok := byID[cur.OriginID]
			return o, ok
		}
		next, ok := byID[cur.OriginID]
		if !ok {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// knownIssues marks every failure an unexpired registry entry matches,
// and moves new failures so matched to the known failures: a failure with
// a bug filed raises no alarm. Entries that would match but have expired
// are listed, so the report can say so.
func (o *OpenQA) knownIssues(entries []KnownIssue, modules map[int64][]string, now time.Time) {
	o.ExpiredKnownIssues = []KnownIssue{}
	if len(entries) == 0 {
		return
	}
	expired := map[int64]bool{}
	match := func(r *JobResult) bool {
		for _, k := range entries {
			if !k.Matches(r.Scenario, modules[r.JobID]) {
				continue
			}
			if k.Expired(now) {
				if !expired[k.ID] {
					expired[k.ID] = true
					o.ExpiredKnownIssues = append(o.ExpiredKnownIssues, k)
				}
				continue
			}
			r.KnownIssue = &k
			return true
		}
		return false
	}
	var stillNew []JobResult
	for _, r := range o.NewFailures {
		if match(&r) {
			o.KnownFailures = append(o.KnownFailures, r)
			continue
		}
		stillNew = append(stillNew, r)
	}
	o.NewFailures = nonNilResults(stillNew)
	for i := range o.KnownFailures {
		if o.KnownFailures[i].KnownIssue == nil {
			match(&o.KnownFailures[i])
		}
	}
	sortResults(o.KnownFailures)
	slices.SortFunc(o.ExpiredKnownIssues, func(a, b KnownIssue) int { return int(a.ID - b.ID) })
}

func nonNilResults(l []JobResult) []JobResult {
	if l == nil {
		return []JobResult{}
	}
	return l
}
