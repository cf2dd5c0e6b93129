package web

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
)

// The data keys the stages keep in a workflow that the web reads. They are
// stages.Data*: repeated here as strings so that the web reads the store
// without importing the stages (and through them every domain client).
const (
	keyStatus     = "status"
	keyFinishedAt = "finished_at"
	keyReportedAt = "reported_at"
	keyReport     = "report"
	keyProblem    = "problem"
	keySummary    = "summary"
	keyCounts     = "counts"
	keyReasons    = "verdict_reasons"
	keyFailed     = "koji_failed_tasks"
	keyKojiTasks  = "koji_tasks"
)

// composeInfo is what the web knows of one compose: its workflow, its
// entry in the report archive's index, or both.
type composeInfo struct {
	ID       fedfind.ComposeID
	Release  string
	Workflow *workflow.Workflow
	Entry    *reports.IndexEntry
}

// status is the compose's Pungi STATUS, as the report or the workflow
// last saw it.
func (c composeInfo) status() string {
	if c.Entry != nil && c.Entry.Status != "" {
		return c.Entry.Status
	}
	if c.Workflow != nil {
		return c.Workflow.Data[keyStatus]
	}
	return ""
}

// summary is the report's counts, from the index or the workflow.
func (c composeInfo) summary() (reports.Summary, bool) {
	if c.Entry != nil {
		return c.Entry.Summary, true
	}
	if c.Workflow != nil {
		var s reports.Summary
		if err := json.Unmarshal([]byte(c.Workflow.Data[keyCounts]), &s); err == nil {
			return s, true
		}
	}
	return reports.Summary{}, false
}

func (c composeInfo) problem() bool {
	if c.Entry != nil {
		return c.Entry.Problem
	}
	return c.Workflow != nil && c.Workflow.Data[keyProblem] == "true"
}

// hasReport reports whether the archive has (or the workflow wrote) a
// report of the compose.
func (c composeInfo) hasReport() bool {
	return c.Entry != nil || (c.Workflow != nil && c.Workflow.Data[keyReport] != "")
}

// state says where the compose stands, for people: the workflow's stage or
// end, or "reported" for a report made by hand.
func (c composeInfo) state() string {
	if w := c.Workflow; w != nil {
		if w.State == workflow.StateActive {
			return string(w.Stage)
		}
		return w.State
	}
	return "reported"
}

// updated is when anything last happened to the compose.
func (c composeInfo) updated() time.Time {
	var t time.Time
	if c.Workflow != nil {
		t = c.Workflow.UpdatedAt
	}
	if c.Entry != nil && c.Entry.GeneratedAt.After(t) {
		t = c.Entry.GeneratedAt
	}
	return t
}

// toReport is the time from the compose's STATUS first seen final to its
// report, when the workflow recorded both.
func (c composeInfo) toReport() (time.Duration, bool) {
	if c.Workflow == nil {
		return 0, false
	}
	f, err1 := time.Parse(time.RFC3339Nano, c.Workflow.Data[keyFinishedAt])
	r, err2 := time.Parse(time.RFC3339Nano, c.Workflow.Data[keyReportedAt])
	if err1 != nil || err2 != nil || r.Before(f) {
		return 0, false
	}
	return r.Sub(f), true
}

// stream groups composes by release, as the report archive does.
type stream struct {
	Release string
	Name    string // "Fedora Rawhide", "Fedora 45"
	Watched bool
	// Composes are newest first.
	Composes []composeInfo
}

func (s stream) latest() (composeInfo, bool) {
	if len(s.Composes) == 0 {
		return composeInfo{}, false
	}
	return s.Composes[0], true
}

func (s stream) inFlight() []composeInfo {
	var out []composeInfo
	for _, c := range s.Composes {
		if c.Workflow != nil && c.Workflow.State == workflow.StateActive {
			out = append(out, c)
		}
	}
	return out
}

// streams gathers every compose the workflows and the report archive know,
// by release: the watched streams first, then the others, each by name.
// With only set, it reads that release alone.
func (h *handler) streams(ctx context.Context, only string) ([]stream, error) {
	byRelease := map[string]map[string]*composeInfo{}
	add := func(id fedfind.ComposeID) (*composeInfo, error) {
		rel, err := reports.ReleaseOf(id.String())
		if err != nil {
			return nil, err
		}
		if only != "" && rel != only {
			return nil, nil
		}
		m := byRelease[rel]
		if m == nil {
			m = map[string]*composeInfo{}
			byRelease[rel] = m
		}
		c := m[id.String()]
		if c == nil {
			c = &composeInfo{ID: id, Release: rel}
			m[id.String()] = c
		}
		return c, nil
	}
	wfs, err := h.o.Workflows.List(ctx)
	if err != nil {
		return nil, err
	}
	for i := range wfs {
		id, err := fedfind.ParseComposeID(wfs[i].ComposeID)
		if err != nil {
			continue
		}
		if c, err := add(id); err == nil && c != nil {
			c.Workflow = &wfs[i]
		}
	}
	if h.o.Reports != nil {
		releases, err := h.o.Reports.Releases(ctx)
		if err != nil {
			return nil, fmt.Errorf("report archive: %w", err)
		}
		for _, rel := range releases {
			if only != "" && rel != only {
				continue
			}
			ix, err := h.o.Reports.Index(ctx, rel)
			if errors.Is(err, reports.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("report archive: %w", err)
			}
			for i := range ix.Reports {
				id, err := fedfind.ParseComposeID(ix.Reports[i].ComposeID)
				if err != nil {
					continue
				}
				if c, err := add(id); err == nil && c != nil {
					c.Entry = &ix.Reports[i]
				}
			}
		}
	}
	watched := h.watchedKinds()
	var out []stream
	for rel, m := range byRelease {
		s := stream{Release: rel}
		for _, c := range m {
			s.Composes = append(s.Composes, *c)
		}
		slices.SortFunc(s.Composes, func(a, b composeInfo) int { return b.ID.Compare(a.ID) })
		st := fedfind.StreamOf(s.Composes[0].ID)
		s.Name, s.Watched = st.String(), watched[st.Kind]
		out = append(out, s)
	}
	// Watched streams first; Rawhide first of all, then the newest
	// releases (45 before 44).
	rank := func(s stream) int {
		switch {
		case s.Watched && s.Release == "rawhide":
			return 0
		case s.Watched:
			return 1
		}
		return 2
	}
	slices.SortFunc(out, func(a, b stream) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(b.Release, a.Release))
	})
	return out, nil
}

// watchedKinds are the stream kinds of Options.Streams.
func (h *handler) watchedKinds() map[fedfind.StreamKind]bool {
	kinds := map[fedfind.StreamKind]bool{}
	for _, w := range h.o.Streams {
		if spec, ok, err := fedfind.ParseStreamSpec(strings.TrimSpace(w)); ok && err == nil {
			kinds[spec.Kind] = true
		}
	}
	return kinds
}

// compose gathers what is known of one compose.
func (h *handler) compose(ctx context.Context, id fedfind.ComposeID) (composeInfo, *reports.Report, error) {
	rel, err := reports.ReleaseOf(id.String())
	if err != nil {
		return composeInfo{}, nil, err
	}
	c := composeInfo{ID: id, Release: rel}
	w, err := h.o.Workflows.Get(ctx, id.String())
	switch {
	case err == nil:
		c.Workflow = &w
	case !errors.Is(err, workflow.ErrNotFound):
		return c, nil, err
	}
	var rep *reports.Report
	if h.o.Reports != nil {
		r, err := h.o.Reports.Read(ctx, id.String())
		switch {
		case err == nil:
			rep = &r
			e := reports.IndexEntry{ComposeID: r.ComposeID, PreviousComposeID: r.PreviousComposeID, GeneratedAt: r.GeneratedAt,
				Status: r.Status, Problem: r.Problem, Summary: r.Summary}
			c.Entry = &e
		case !errors.Is(err, reports.ErrNotFound):
			return c, nil, err
		}
	}
	if c.Workflow == nil && rep == nil {
		return c, nil, fmt.Errorf("%s: %w", id, errUnknownCompose)
	}
	return c, rep, nil
}

// errUnknownCompose: neither a workflow nor a report of the compose.
var errUnknownCompose = errors.New("no workflow and no report for this compose")

// reportLinks are the archive addresses of a compose's report files.
func reportLinks(c composeInfo) map[string]string {
	if !c.hasReport() {
		return nil
	}
	base := "/reports/" + c.Release + "/" + c.ID.String() + "/"
	return map[string]string{"html": base + reports.FileHTML, "json": base + reports.FileJSON, "text": base + reports.FileText}
}
