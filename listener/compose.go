package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/composeci/composeci/checks"
	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/reports"
)

// These are the compose operations that span the domain packages — what the
// pipeline's stages do and what the CLI's schedule and check commands do —
// written once.

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

// CheckDeps is what a compose check reads from.
type CheckDeps struct {
	Fedfind *fedfind.Client
	// OpenQA is nil to leave openQA out.
	OpenQA *openqa.Client
	// Expected are the expected-image lists; nil means the built-in ones.
	Expected fedfind.ExpectedImages
	Logger   *slog.Logger
}

// BuildReport runs the compose checks on cm — missing expected images, the
// image diff against the previous compose (previous, or else the previous
// successful compose of the stream), openQA failures classed against it —
// and builds the report.
func BuildReport(ctx context.Context, d CheckDeps, cm *fedfind.Compose, previous *fedfind.Compose) (reports.Report, error) {
	ff := d.Fedfind
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exp := d.Expected
	if exp == nil {
		exp = fedfind.DefaultExpectedImages()
	}
	images, err := ff.Images(ctx, cm)
	if err != nil {
		return reports.Report{}, err
	}
	status, err := ff.Status(ctx, cm)
	if errors.Is(err, fedfind.ErrComposeNotFound) {
		// The tree is gone; its images came from the metadata archive.
		status, err = "UNKNOWN (tree garbage-collected; metadata from the archive)", nil
	}
	if err != nil {
		return reports.Report{}, err
	}
	in := checks.Input{Compose: cm.ID, Images: images, Expected: exp[cm.Stream.Kind]}
	if previous == nil && cm.Stream.Dir != "" {
		res, err := ff.Previous(ctx, cm, fedfind.PreviousOptions{})
		switch {
		case errors.Is(err, fedfind.ErrNoPrevious):
			log.InfoContext(ctx, "no previous compose: nothing to compare with", "compose", cm.ID, "err", err)
		case err != nil:
			return reports.Report{}, fmt.Errorf("finding the previous compose of %s: %w", cm.ID, err)
		default:
			previous = res.Compose
		}
	}
	if d.OpenQA != nil {
		if in.Jobs, err = d.OpenQA.BuildJobs(ctx, cm.ID.String()); err != nil {
			return reports.Report{}, fmt.Errorf("openQA jobs of %s: %w", cm.ID, err)
		}
	}
	if previous != nil {
		p := &checks.Previous{Compose: previous.ID}
		if p.Images, err = ff.Images(ctx, previous); err != nil {
			return reports.Report{}, fmt.Errorf("previous compose: %w", err)
		}
		if d.OpenQA != nil {
			if p.Jobs, err = d.OpenQA.BuildJobs(ctx, previous.ID.String()); err != nil {
				return reports.Report{}, fmt.Errorf("openQA jobs of %s: %w", previous.ID, err)
			}
		}
		in.Previous = p
	}
	return reports.Build(checks.Run(in), reports.Meta{Status: string(status), Location: cm.Location}), nil
}

// MailOnce mails a report to its recipients unless the archive's mail
// ledger shows it already went to exactly them (same Message-ID), and
// records the mail. It reports the Message-ID and whether it was sent now.
// With no recipients it sends nothing.
func MailOnce(ctx context.Context, archive reports.Archive, m *reports.Mailer, to []string, r reports.Report, force bool) (messageID string, sent bool, err error) {
	if len(to) == 0 {
		return "", false, nil
	}
	id := m.MessageID(r.ComposeID, to)
	if _, ok, err := archive.SentMail(ctx, r.ComposeID, id); err != nil {
		return id, false, err
	} else if ok && !force {
		return id, false, nil
	}
	s, err := m.Send(ctx, r, to)
	if err != nil {
		return id, false, err
	}
	if err := archive.RecordMail(ctx, r.ComposeID, reports.MailRecord{MessageID: s.MessageID, Recipients: s.Recipients, SentAt: time.Now().UTC()}); err != nil {
		return s.MessageID, true, fmt.Errorf("mailed (Message-ID %s), but recording it failed: %w", s.MessageID, err)
	}
	return s.MessageID, true, nil
}
