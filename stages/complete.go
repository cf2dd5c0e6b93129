package stages

import (
	"context"
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
	// Now is the clock; default time.Now.
	Now func() time.Time
}

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
	data := map[string]string{DataStatus: string(c.Status)}
	if c.Status.Terminal() && st.Data[DataFinishedAt] == "" {
		now := time.Now
		if a.Now != nil {
			now = a.Now
		}
		data[DataFinishedAt] = stamp(now())
	}
	switch c.Verdict {
	case fedfind.VerdictDone:
		return Outcome{Advance: true, Note: last, Data: data}, nil // "all 9 Koji image tasks finished"
	case fedfind.VerdictDoomed:
		data[DataDoomed] = "true"
		data[DataReasons] = strings.Join(c.Reasons, "\n")
		var failed []string
		for _, id := range c.TaskIDs[koji.StateFailed.String()] {
			failed = append(failed, strconv.Itoa(id))
		}
		data[DataFailed] = strings.Join(failed, ",")
		return Outcome{Advance: true, Next: StageCheck, Note: "doomed: " + last + "; not tested, reported", Data: data}, nil
	}
	return Outcome{RetryAfter: orDefault(a.Poll, defaultCompletePoll), Note: string(c.Verdict) + ": " + last, Data: data}, nil
}
