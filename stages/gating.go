package stages

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/greenwave"
)

// DefaultGatingTimeout bounds how long the check stage asks Greenwave,
// retries included.
const DefaultGatingTimeout = 2 * time.Minute

// Gating is check-compose's gating check, made by the check stage once
// the openQA results are in: Greenwave is asked whether a compose would
// pass the gating of a decision context. Its answer — or that no policy
// applies, or that it could not be asked — goes into the report; it never
// fails the check.
type Gating struct {
	Greenwave *greenwave.Client
	// Context is the decision context; default greenwave.DefaultContext.
	Context string
	// Streams are the streams whose composes are asked about; empty means
	// Rawhide's only, as check-compose asked.
	Streams []fedfind.StreamKind
	// Timeout bounds the question, retries included; default
	// DefaultGatingTimeout.
	Timeout time.Duration
}

// Applies reports whether the gating check is made for cm.
func (g *Gating) Applies(cm *fedfind.Compose) bool {
	if g == nil || g.Greenwave == nil {
		return false
	}
	if len(g.Streams) == 0 {
		return cm.Stream.Kind == fedfind.StreamRawhide
	}
	return slices.Contains(g.Streams, cm.Stream.Kind)
}

// Ask asks Greenwave for its decision on cm. It returns the decision, or
// why there is none (no policy applies, Greenwave could not be asked
// within Timeout); the caller checks ctx, whose end is no answer to put
// in a report.
func (g *Gating) Ask(ctx context.Context, cm *fedfind.Compose, log *slog.Logger) *checks.GatingInput {
	log = logOrDiscard(log)
	gctx := g.Context
	if gctx == "" {
		gctx = greenwave.DefaultContext
	}
	q := greenwave.ComposeQuery(gctx, cm.ID.String(), cm.Stream.Version)
	in := &checks.GatingInput{Context: q.DecisionContext, ProductVersion: q.ProductVersion}
	timeout := orDefault(g.Timeout, DefaultGatingTimeout)
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in.Decision, in.Err = g.Greenwave.Decide(actx, q)
	switch {
	case in.Err == nil:
		log.InfoContext(ctx, "gating check", "compose", cm.ID, "context", q.DecisionContext, "product_version", q.ProductVersion,
			"satisfied", in.Decision.PoliciesSatisfied, "summary", in.Decision.Summary)
	case errors.Is(in.Err, greenwave.ErrNoPolicy):
		log.InfoContext(ctx, "gating check: no policy applies", "compose", cm.ID, "context", q.DecisionContext,
			"product_version", q.ProductVersion, "err", in.Err)
	case ctx.Err() != nil:
		// The caller's end, not Greenwave's.
	default:
		if errors.Is(actx.Err(), context.DeadlineExceeded) {
			in.Err = fmt.Errorf("no answer within %s: %w", timeout, in.Err)
		}
		log.WarnContext(ctx, "gating check: Greenwave could not be asked; the report says so", "compose", cm.ID,
			"greenwave", g.Greenwave.BaseURL(), "err", in.Err)
	}
	return in
}
