package stages

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
		return Outcome{Advance: true, Note: "nothing to test in openQA: " + err.Error()}, nil
	}
	if errors.Is(err, openqa.ErrAuthRefused) {
		// The key is wrong, missing or not an operator's: no retry
		// mends that, and each would post to be refused again.
		return Outcome{}, permanent(err)
	}
	if err != nil {
		return Outcome{}, err // retried; products already posted are skipped next time
	}
	posted, skipped, jobs := 0, 0, 0
	for _, r := range res {
		jobs += len(r.JobIDs)
		if r.Skipped {
			skipped++
		} else {
			posted++
		}
	}
	data := map[string]string{DataJobs: strconv.Itoa(jobs)}
	if posted > 0 && st.Data[DataScheduledAt] == "" {
		data[DataScheduledAt] = stamp(time.Now())
	}
	return Outcome{Advance: true, Note: fmt.Sprintf("openQA: %d products posted, %d already scheduled, %s", posted, skipped, plural(jobs, "job", "jobs")),
		Data: data}, nil
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
		Images:         images,
	}, nil
}
