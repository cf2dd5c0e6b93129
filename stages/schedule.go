package stages

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
)

// Schedule posts the compose's openQA jobs. openqa.Schedule reads the
// build's live jobs first and skips every (flavor, arch) that has some, so
// running the stage again posts nothing twice.
type Schedule struct {
	Fedfind *fedfind.Client
	// OpenQA is nil to leave openQA out: the stage then passes at once.
	OpenQA *openqa.Client
	// Options are the scheduling rules, release numbers, and (for the CLI)
	// Force and DryRun.
	Options openqa.ScheduleOptions
}

// Post describes cm for openQA and schedules it: what `composeci schedule`
// runs. It returns the description with the per-flavor results; an error
// with results means some flavors failed and the others were scheduled.
func (s Schedule) Post(ctx context.Context, cm *fedfind.Compose) (openqa.Compose, []openqa.Scheduled, error) {
	comp, err := OpenQACompose(ctx, s.Fedfind, cm)
	if err != nil {
		return openqa.Compose{}, nil, err
	}
	res, err := s.OpenQA.Schedule(ctx, comp, s.Options)
	return comp, res, err
}

// Run schedules the compose and advances.
func (s Schedule) Run(ctx context.Context, cm *fedfind.Compose, st State) (Outcome, error) {
	if s.OpenQA == nil {
		return Outcome{Advance: true, Note: "openQA not configured"}, nil
	}
	_, res, err := s.Post(ctx, cm)
	if errors.Is(err, openqa.ErrNoImages) {
		return Outcome{Advance: true, Note: "nothing to test in openQA: " + err.Error(), Data: map[string]string{DataJobs: "0"}}, nil
	}
	if errors.Is(err, openqa.ErrAuthRefused) {
		// The key is wrong, missing or not an operator's: no retry
		// mends that, and each would post to be refused again.
		return Outcome{}, permanent(err)
	}
	if err != nil && (ctx.Err() != nil || len(res) == 0 || anyTemporary(res)) {
		return Outcome{}, err // retried; products already posted are skipped next time
	}
	// err != nil here: every failure is openQA's final answer (400, a
	// text/plain 403 for an asset host it does not allow): posting again
	// would be refused again, so the compose goes on without them.
	posted, skipped, untested, jobs := 0, 0, 0, 0
	var refused []string
	for _, r := range res {
		jobs += len(r.JobIDs)
		switch {
		case r.NotConfigured:
			untested++
		case r.Error != "":
			refused = append(refused, r.Flavor+" "+r.Arch+": "+r.Error)
		case r.Skipped:
			skipped++
		default:
			posted++
		}
	}
	data := map[string]string{DataJobs: strconv.Itoa(jobs)}
	if posted > 0 && st.Data[DataScheduledAt] == "" {
		data[DataScheduledAt] = stamp(time.Now())
	}
	note := fmt.Sprintf("openQA: %s posted, %d already scheduled, %s", plural(posted, "product", "products"), skipped, plural(jobs, "job", "jobs"))
	if untested > 0 {
		note += fmt.Sprintf("; %d without job templates in openQA", untested)
	}
	if len(refused) > 0 {
		note += fmt.Sprintf("; %d refused by openQA, not posted again: %s", len(refused), strings.Join(refused, "; "))
	}
	return Outcome{Advance: true, Note: note, Data: data}, nil
}

// anyTemporary reports whether some product failed in a way that posting
// again may mend.
func anyTemporary(res []openqa.Scheduled) bool {
	return slices.ContainsFunc(res, func(r openqa.Scheduled) bool { return r.Temporary })
}

// OpenQACompose describes a compose for openQA scheduling: its images, the
// version openQA knows it by, its label and whether it has a generic tree.
func OpenQACompose(ctx context.Context, ff *fedfind.Client, cm *fedfind.Compose) (openqa.Compose, error) {
	images, err := ff.Images(ctx, cm)
	if err != nil {
		return openqa.Compose{}, err
	}
	ci, err := ff.ComposeInfo(ctx, cm)
	if err != nil {
		return openqa.Compose{}, err
	}
	return openqa.Compose{
		ID:       cm.ID.String(),
		Version:  cm.Stream.Version,
		Location: cm.Location,
		Label:    ci.Compose.Label,
		// A full compose has the generic "Everything" tree; an image-only
		// compose (Cloud, Container, ...) has not.
		HasGenericTree: ci.HasVariant("Everything"),
		ELN:            cm.Stream.Kind == fedfind.StreamELN,
		Candidate:      cm.Stream.Kind == fedfind.StreamProduction,
		Images:         images,
	}, nil
}
