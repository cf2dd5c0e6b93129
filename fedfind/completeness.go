package fedfind

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/composeci/composeci/fedfind/koji"
)

//go:embed completeness.toml
var defaultCompletenessTOML []byte

// Verdict is the answer to "is this compose done?".
type Verdict string

// The verdicts.
const (
	// VerdictPending: no STATUS yet; Pungi has not started (or the compose
	// is not in the tree yet).
	VerdictPending Verdict = "pending"
	// VerdictRunning: Pungi runs, or STATUS is final but Koji still builds
	// (or shows no image task of the compose yet).
	VerdictRunning Verdict = "running"
	// VerdictDone: STATUS FINISHED or FINISHED_INCOMPLETE and, where the
	// stream builds images in Koji, at least one image task and none FREE,
	// OPEN or ASSIGNED.
	VerdictDone Verdict = "done"
	// VerdictDoomed: STATUS DOOMED or TERMINATED; the compose will never be
	// done.
	VerdictDoomed Verdict = "doomed"
)

// CompletenessRules is the data behind the verdict (completeness.toml).
type CompletenessRules struct {
	Methods      []string                  `toml:"methods"`
	WindowBefore duration                  `toml:"window-before"`
	WindowAfter  duration                  `toml:"window-after"`
	Owner        string                    `toml:"owner"`
	Streams      map[StreamKind]streamRule `toml:"streams"`
}

type streamRule struct {
	Koji bool `toml:"koji"`
}

type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) (err error) {
	d.Duration, err = time.ParseDuration(string(b))
	return err
}

// NeedsKoji reports whether composes of stream kind k are checked in Koji.
func (r CompletenessRules) NeedsKoji(k StreamKind) bool { return r.Streams[k].Koji }

// DefaultCompletenessRules returns the built-in rules: a copy of its own
// each time, which the caller may change.
func DefaultCompletenessRules() CompletenessRules {
	r, err := defaultCompleteness()
	if err != nil {
		panic(err) // the embedded file is tested
	}
	r.Methods = slices.Clone(r.Methods)
	r.Streams = maps.Clone(r.Streams)
	return r
}

// defaultCompleteness parses the embedded rules once, on first use: not at
// start-up, where every command would pay for it (docs/performance.md,
// "Start-up"), and not at every verdict. The parsed rules are never handed
// out, only copied, so the cache is an immutable value.
var defaultCompleteness = sync.OnceValues(func() (CompletenessRules, error) {
	return ParseCompletenessRules(bytes.NewReader(defaultCompletenessTOML), "completeness.toml")
})

// ParseCompletenessRules reads rules in the shape of completeness.toml.
func ParseCompletenessRules(r io.Reader, name string) (CompletenessRules, error) {
	var rules CompletenessRules
	md, err := toml.NewDecoder(r).Decode(&rules)
	if err != nil {
		return rules, fmt.Errorf("%s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return rules, fmt.Errorf("%s: unknown keys %v", name, und)
	}
	if len(rules.Methods) == 0 {
		return rules, fmt.Errorf("%s: methods must name at least one Koji task method", name)
	}
	if rules.WindowBefore.Duration < 0 || rules.WindowAfter.Duration <= 0 {
		return rules, fmt.Errorf("%s: window-before must be >= 0 and window-after > 0", name)
	}
	for k := range rules.Streams {
		if !k.Known() {
			return rules, fmt.Errorf("%s: unknown stream %q", name, k)
		}
	}
	return rules, nil
}

// TaskCounts counts a compose's image tasks by state.
type TaskCounts struct {
	Free     int `json:"free"`
	Open     int `json:"open"`
	Assigned int `json:"assigned"`
	Closed   int `json:"closed"`
	Canceled int `json:"canceled"`
	Failed   int `json:"failed"`
	Total    int `json:"total"`
}

// Unfinished is FREE + OPEN + ASSIGNED.
func (t TaskCounts) Unfinished() int { return t.Free + t.Open + t.Assigned }

func (t *TaskCounts) add(s koji.TaskState) {
	t.Total++
	switch s {
	case koji.StateFree:
		t.Free++
	case koji.StateOpen:
		t.Open++
	case koji.StateAssigned:
		t.Assigned++
	case koji.StateClosed:
		t.Closed++
	case koji.StateCanceled:
		t.Canceled++
	case koji.StateFailed:
		t.Failed++
	}
}

// Completeness is a verdict with the facts behind it.
type Completeness struct {
	ComposeID string   `json:"compose_id"`
	Verdict   Verdict  `json:"verdict"`
	Status    Status   `json:"status,omitempty"`
	Reasons   []string `json:"reasons"`
	// KojiChecked says whether Koji was asked (it is not for streams that
	// build no images there, nor for pending composes; for a doomed compose
	// it is asked for the evidence, when a hub is configured).
	KojiChecked bool       `json:"koji_checked"`
	Tasks       TaskCounts `json:"tasks"`
	// KojiRoundTrips is how many HTTP requests to Koji this verdict cost
	// (0 when answered from the cache).
	KojiRoundTrips int64 `json:"koji_round_trips"`
	// TaskIDs lists the image tasks found, by state name.
	TaskIDs map[string][]int `json:"task_ids,omitempty"`
}

// CompletenessOptions are what a verdict needs besides the compose.
type CompletenessOptions struct {
	// Koji is the hub client; required for streams that need the Koji
	// check.
	Koji *koji.Client
	// Rules; zero value means DefaultCompletenessRules.
	Rules CompletenessRules
	// OwnerID restricts tasks to one Koji user id (resolved from
	// Rules.Owner by the caller); 0 means any owner.
	OwnerID int
	// Label is the compose's label when known (candidates): Pungi then
	// gives Koji the label's version as the image release. When empty, a
	// finished production compose's label is read from its composeinfo.json.
	Label string
}

// imageReleaseVersion is what Pungi passes Koji for this compose's images:
// the release "<date><type>.<respin>" (the label's "1.2" for a labelled
// compose) and the version ("Rawhide", "44"; "44_Beta" for a non-RC label).
func imageReleaseVersion(cm *Compose, label string) (release, version string) {
	release, version = cm.ID.ImageRelease(), cm.Stream.Version
	if l, err := ParseLabel(label); err == nil {
		release = l.Version()
		if l.Milestone != "RC" {
			version += "_" + l.Milestone
		}
	}
	return release, version
}

// Completeness decides whether a compose is done, from its Pungi STATUS and,
// for streams that build images in Koji, the compose's Koji image tasks. The
// Koji question is one listTasks per method, all in one multicall, so a cold
// verdict costs one Koji round trip. Once STATUS is final and every image
// task seen since has finished, the Koji client's cache answers a repeated
// or narrower question with no round trip; before that, every verdict asks
// Koji afresh (a cached answer could hide a task created or finished since).
//
// Rawhide and Branched nightlies of one day share the release string
// ("20261122.n.0"); the version in the task request ("Rawhide", "44") tells
// them apart.
func (c *Client) Completeness(ctx context.Context, cm *Compose, opts CompletenessOptions) (Completeness, error) {
	rules := opts.Rules
	if rules.Methods == nil {
		rules = DefaultCompletenessRules()
	}
	res := Completeness{ComposeID: cm.ID.String(), Reasons: []string{}}
	st, err := c.Status(ctx, cm)
	switch {
	case errors.Is(err, ErrComposeNotFound):
		if ci, aerr := c.ComposeInfo(ctx, cm); aerr == nil && ci.Archived {
			res.Verdict, res.Status = VerdictDone, StatusFinishedIncomplete
			res.Reasons = append(res.Reasons, "the tree is garbage-collected but the metadata archive has the compose: it finished long ago (taken as FINISHED_INCOMPLETE, as fedfind does)")
			return res, nil
		}
		res.Verdict = VerdictPending
		res.Reasons = append(res.Reasons, fmt.Sprintf("no STATUS at %s/STATUS: Pungi has not started this compose (or it is not in the tree yet)", cm.Dir))
		return res, nil
	case err != nil:
		return res, err
	}
	res.Status = st
	switch {
	case st.Failed():
		res.Verdict = VerdictDoomed
		res.Reasons = append(res.Reasons, fmt.Sprintf("STATUS is %s: the compose ended without a result", st))
		if rules.NeedsKoji(cm.Stream.Kind) && opts.Koji != nil {
			// The verdict stands whatever Koji says; its image tasks are
			// the evidence of what went wrong.
			if _, _, err := c.askKoji(ctx, cm, st, opts, rules, &res); err != nil {
				res.Reasons = append(res.Reasons, "Koji could not be asked for the image tasks: "+err.Error())
				return res, nil
			}
			tc := res.Tasks
			reason := fmt.Sprintf("Koji image tasks: %d closed, %d failed, %d canceled, %d unfinished", tc.Closed, tc.Failed, tc.Canceled, tc.Unfinished())
			if ids := res.TaskIDs[koji.StateFailed.String()]; len(ids) > 0 {
				list := make([]string, len(ids))
				for i, id := range ids {
					list[i] = strconv.Itoa(id)
				}
				reason += " (failed tasks: " + strings.Join(list, ", ") + ")"
			}
			res.Reasons = append(res.Reasons, reason)
		}
		return res, nil
	case st.Success():
		res.Reasons = append(res.Reasons, fmt.Sprintf("STATUS is %s", st))
	default:
		res.Reasons = append(res.Reasons, fmt.Sprintf("STATUS is %s: Pungi is still running", st))
	}
	if !rules.NeedsKoji(cm.Stream.Kind) {
		if st.Success() {
			res.Verdict = VerdictDone
			res.Reasons = append(res.Reasons, fmt.Sprintf("%s composes build no images in Koji: STATUS alone decides", cm.Stream.Kind))
		} else {
			res.Verdict = VerdictRunning
		}
		return res, nil
	}
	if opts.Koji == nil {
		return res, fmt.Errorf("%w: %s composes need the Koji check and no Koji hub is configured", ErrInvalidInput, cm.Stream.Kind)
	}
	release, version, err := c.askKoji(ctx, cm, st, opts, rules, &res)
	if err != nil {
		return res, err
	}
	tc := res.Tasks
	switch {
	case tc.Total == 0:
		res.Verdict = VerdictRunning
		res.Reasons = append(res.Reasons, fmt.Sprintf("Koji shows no image task with release %s and version %s yet (methods %v)", release, version, rules.Methods))
	case tc.Unfinished() > 0:
		res.Verdict = VerdictRunning
		res.Reasons = append(res.Reasons, fmt.Sprintf("Koji image tasks: %d unfinished (%d free, %d open, %d assigned), %d closed, %d failed, %d canceled",
			tc.Unfinished(), tc.Free, tc.Open, tc.Assigned, tc.Closed, tc.Failed, tc.Canceled))
	case st.Success():
		res.Verdict = VerdictDone
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s finished (%d closed, %d failed, %d canceled)", allImageTasks(tc.Total), tc.Closed, tc.Failed, tc.Canceled))
	default:
		res.Verdict = VerdictRunning
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s so far finished, but Pungi is not done", allImageTasks(tc.Total)))
	}
	return res, nil
}

// askKoji fills res's task counts and ids with the compose's image tasks,
// and returns the release and version they were matched by.
func (c *Client) askKoji(ctx context.Context, cm *Compose, st Status, opts CompletenessOptions, rules CompletenessRules, res *Completeness) (release, version string, err error) {
	label := opts.Label
	if label == "" && cm.Stream.Kind == StreamProduction && st.Success() {
		// A candidate's images carry its label's version as their release
		// ("1.2" for Beta-1.2): read the label from composeinfo.json.
		ci, err := c.ComposeInfo(ctx, cm)
		if err != nil {
			return "", "", fmt.Errorf("reading the label of %s: %w", cm.ID, err)
		}
		label = ci.Compose.Label
	}
	release, version = imageReleaseVersion(cm, label)
	day := cm.ID.Time()
	q := koji.TaskQuery{
		Methods:       rules.Methods,
		Owner:         opts.OwnerID,
		TopLevel:      true,
		CreatedAfter:  day.Add(-rules.WindowBefore.Duration),
		CreatedBefore: day.Add(rules.WindowAfter.Duration),
		Cache:         koji.CacheFinal,
	}
	if st.Success() {
		// Pungi has finished: it creates no more image tasks for this
		// compose. Koji answers fetched since STATUS was first seen final,
		// whose tasks have all finished, can answer again.
		at, _ := c.settled.LoadOrStore(cm.ID.String(), opts.Koji.Now())
		q.Cache, q.SettledAt = koji.CacheSettled, at.(time.Time)
	}
	var trips atomic.Int64
	tasks, err := opts.Koji.ListTasks(koji.WithRoundTripCounter(ctx, &trips), q)
	res.KojiRoundTrips = trips.Load()
	if err != nil {
		return "", "", fmt.Errorf("asking Koji for the image tasks of %s: %w", cm.ID, err)
	}
	res.KojiChecked = true
	res.TaskIDs = map[string][]int{}
	for _, t := range tasks {
		if !taskOfCompose(t, cm.ID, release, version) {
			continue
		}
		res.Tasks.add(t.State)
		name := t.State.String()
		res.TaskIDs[name] = append(res.TaskIDs[name], t.ID)
	}
	return release, version, nil
}

// taskOfCompose reports whether an image task belongs to the compose id,
// whose images carry release and version. The release must match. The
// version must match when the task states one; kiwiBuild's version is an
// optional argument (a kiwi description may carry its own) and Koji's
// older imageBuilderBuild layout has none, so a task without one is
// matched on its release and told apart from the other stream's compose of
// the same day (Rawhide's and Branched's nightlies share "20261122.n.0")
// by the compose IDs its repository and install-tree URLs name: a task
// naming this compose is its own, one naming only another compose is not,
// and one naming none is taken on its release alone.
func taskOfCompose(t koji.Task, id ComposeID, release, version string) bool {
	if t.Release() != release {
		return false
	}
	if v := t.Version(); v != "" {
		return v == version
	}
	own, other := false, false
	t.RequestStrings(func(s string) bool {
		for seg := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == '/' || r == '#' || r == '?' }) {
			if !strings.Contains(seg, "-") {
				continue
			}
			named, err := ParseComposeID(seg)
			switch {
			case err != nil:
			case named == id:
				own = true
				return false
			default:
				other = true
			}
		}
		return true
	})
	return own || !other
}

// allImageTasks is "the 1 Koji image task" or "all 9 Koji image tasks".
func allImageTasks(n int) string {
	if n == 1 {
		return "the 1 Koji image task"
	}
	return fmt.Sprintf("all %d Koji image tasks", n)
}
