package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
)

const defaultCompletePoll = 2 * time.Minute

// AwaitComplete waits until the compose is really complete: Pungi's STATUS
// is final and, for streams that build images in Koji, its image tasks
// have all finished. A compose that ended DOOMED or TERMINATED skips to the
// check stage, which writes its short report.
type AwaitComplete struct {
	Fedfind *fedfind.Client
	Koji    *koji.Client
	// Rules are the completeness rules; zero means the built-in ones.
	Rules fedfind.CompletenessRules
	// OwnerID restricts the Koji check to one user id; 0 means any.
	OwnerID int
	// Poll is how long to wait before asking again (default 2 minutes).
	Poll time.Duration
	// KojiWait bounds how long Koji's image tasks may hold up a compose
	// whose STATUS is final (default 2 hours): Pungi waits for its image
	// tasks before it writes FINISHED, so tasks unfinished or not found
	// that long after it mean a stuck task or one the rules do not match,
	// and the compose goes on on its STATUS alone, saying so. Negative:
	// wait for Koji for ever.
	KojiWait time.Duration
	// Timeout bounds the wait for a compose whose STATUS never becomes
	// final (default 24 hours from the stage's first run): a Pungi that
	// died leaves STARTED for ever, and an ID that names no compose
	// never gets a STATUS. The workflow then fails, saying why. Negative:
	// wait for ever.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

const (
	defaultKojiWait        = 2 * time.Hour
	defaultCompleteTimeout = 24 * time.Hour
)

// Verdict says whether cm is done, and why: what `composeci done` prints.
func (a AwaitComplete) Verdict(ctx context.Context, cm *fedfind.Compose) (fedfind.Completeness, error) {
	return a.Fedfind.Completeness(ctx, cm, fedfind.CompletenessOptions{Koji: a.Koji, Rules: a.Rules, OwnerID: a.OwnerID})
}

// Run advances a done compose, sends a doomed one to its report with the
// evidence, and waits for anything else.
func (a AwaitComplete) Run(ctx context.Context, cm *fedfind.Compose, st State) (Outcome, error) {
	c, err := a.Verdict(ctx, cm)
	if err != nil {
		return Outcome{}, err
	}
	last := ""
	if n := len(c.Reasons); n > 0 {
		last = c.Reasons[n-1]
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	data := map[string]string{DataStatus: string(c.Status)}
	if c.Status.Terminal() && st.Data[DataFinishedAt] == "" {
		data[DataFinishedAt] = stamp(now())
	}
	if c.KojiChecked {
		if b, err := json.Marshal(c.Tasks); err == nil {
			data[DataKojiTasks] = string(b)
		}
	}
	since, ok := parseStamp(st.Data[DataCompleteSince])
	if !ok {
		since = now()
		data[DataCompleteSince] = stamp(since)
	}
	switch c.Verdict {
	case fedfind.VerdictDone:
		data[DataCompleteSince] = ""                               // ended: a workflow sent back here waits afresh
		return Outcome{Advance: true, Note: last, Data: data}, nil // "all 9 Koji image tasks finished"
	case fedfind.VerdictDoomed:
		data[DataCompleteSince] = ""
		data[DataDoomed] = "true"
		data[DataReasons] = strings.Join(c.Reasons, "\n")
		var failed []string
		for _, id := range c.TaskIDs[koji.StateFailed.String()] {
			failed = append(failed, strconv.Itoa(id))
		}
		data[DataFailed] = strings.Join(failed, ",")
		return Outcome{Advance: true, Next: StageCheck, Note: "doomed: " + last + "; not tested, reported", Data: data}, nil
	}
	if c.Status.Success() && a.KojiWait >= 0 {
		finished, ok := parseStamp(st.Data[DataFinishedAt])
		if wait := orDefault(a.KojiWait, defaultKojiWait); ok && now().Sub(finished) >= wait {
			data[DataKojiWaived], data[DataCompleteSince] = "true", ""
			return Outcome{Advance: true, Data: data,
				Note: fmt.Sprintf("STATUS %s for %s, yet %s; going on on STATUS alone", c.Status, wait, last)}, nil
		}
	}
	if timeout := orDefault(a.Timeout, defaultCompleteTimeout); a.Timeout >= 0 && !c.Status.Terminal() && now().Sub(since) >= timeout {
		status := "no STATUS"
		if c.Status != "" {
			status = "STATUS " + string(c.Status)
		}
		return Outcome{}, permanent(fmt.Errorf("%w: not complete %s after the pipeline first looked (%s; %s: %s)", ErrStalled, timeout, status, c.Verdict, last))
	}
	return Outcome{RetryAfter: orDefault(a.Poll, defaultCompletePoll), Note: string(c.Verdict) + ": " + last, Data: data}, nil
}

// parseStamp reads a time stamp of the workflow's data.
func parseStamp(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}
