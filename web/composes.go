package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
)

// composeJSON is a compose as the API shows it: where it stands, its
// report's counts, and links to everything about it.
type composeJSON struct {
	ComposeID string           `json:"compose_id"`
	Release   string           `json:"release"`
	Stream    string           `json:"stream"`
	State     string           `json:"state"`
	Status    string           `json:"status,omitempty"`
	Problem   bool             `json:"problem"`
	Summary   *reports.Summary `json:"summary,omitempty"`
	// FinishedAt is when its STATUS was first seen final; ReportedAt when
	// its report went out (both as the workflow recorded them).
	FinishedAt string            `json:"finished_at,omitempty"`
	ReportedAt string            `json:"reported_at,omitempty"`
	UpdatedAt  time.Time         `json:"updated_at,omitzero"`
	Links      map[string]string `json:"links"`
}

func composeOf(c composeInfo) composeJSON {
	out := composeJSON{ComposeID: c.ID.String(), Release: c.Release, Stream: fedfind.StreamOf(c.ID).String(),
		State: c.state(), Status: c.status(), Problem: c.problem(), UpdatedAt: c.updated(),
		Links: map[string]string{"self": "/api/v1/composes/" + c.ID.String(), "page": "/composes/" + c.ID.String(),
			"done": "/api/v1/composes/" + c.ID.String() + "/done"}}
	if s, ok := c.summary(); ok {
		out.Summary = &s
	}
	if w := c.Workflow; w != nil {
		out.FinishedAt, out.ReportedAt = w.Data[keyFinishedAt], w.Data[keyReportedAt]
		out.Links["workflow"] = "/api/v1/workflows/" + c.ID.String()
	}
	for k, v := range reportLinks(c) {
		out.Links["report_"+k] = v
	}
	return out
}

// streamJSON is one release stream of GET /api/v1/streams.
type streamJSON struct {
	Release  string       `json:"release"`
	Name     string       `json:"name"`
	Watched  bool         `json:"watched"`
	Latest   *composeJSON `json:"latest,omitempty"`
	InFlight []string     `json:"in_flight"`
	Links    struct {
		Page     string `json:"page"`
		Composes string `json:"composes"`
	} `json:"links"`
}

func (h *handler) apiStreams(w http.ResponseWriter, r *http.Request) {
	ss, err := h.streams(r.Context(), "")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]streamJSON, 0, len(ss))
	for _, s := range ss {
		j := streamJSON{Release: s.Release, Name: s.Name, Watched: s.Watched, InFlight: []string{}}
		if c, ok := s.latest(); ok {
			cj := composeOf(c)
			j.Latest = &cj
		}
		for _, c := range s.inFlight() {
			j.InFlight = append(j.InFlight, c.ID.String())
		}
		j.Links.Page, j.Links.Composes = "/streams/"+s.Release, "/api/v1/composes?stream="+s.Release
		out = append(out, j)
	}
	h.writeJSON(w, http.StatusOK, out)
}

// resultJSON is one result of GET /api/v1/composes: a compose whose
// workflow ended (done, doomed or failed), at the feed's sequence.
type resultJSON struct {
	Cursor string    `json:"cursor"`
	At     time.Time `json:"at"`
	composeJSON
}

// composesPage is the answer of GET /api/v1/composes.
type composesPage struct {
	Composes []resultJSON `json:"composes"`
	// Cursor is what to pass as after= to get what comes next: the newest
	// result seen (or the after given, when nothing came).
	Cursor string `json:"cursor"`
	// More is true when after= was given and more results follow this
	// page: ask again with the new cursor at once.
	More bool `json:"more"`
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// apiComposes is the feed of results. Without after, it answers the newest
// results, newest first. With after=<cursor>, it answers the results that
// came after the cursor, oldest first, at most limit, and whether more
// follow: a script that keeps the last cursor misses no result and reads
// none twice.
func (h *handler) apiComposes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			h.badRequest(w, fmt.Sprintf("limit %q: want a number from 1 to %d", v, maxPageSize))
			return
		}
		limit = n
	}
	release := q.Get("stream")
	if release != "" && !reports.ValidRelease(release) {
		h.badRequest(w, fmt.Sprintf("stream %q: want a release as GET /api/v1/streams names them (rawhide, 45, ...)", release))
		return
	}
	keep := func(wf workflow.Workflow) bool {
		rel, err := reports.ReleaseOf(wf.ComposeID)
		return err == nil && (release == "" || rel == release)
	}
	var results []workflow.Result
	var more bool
	var after uint64
	var err error
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			h.badRequest(w, fmt.Sprintf("after %q: want a cursor from an earlier answer", v))
			return
		}
		results, more, err = h.o.Workflows.ResultsAfter(r.Context(), after, limit, keep)
	} else {
		results, err = h.o.Workflows.LatestResults(r.Context(), limit, keep)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	page := composesPage{Composes: make([]resultJSON, 0, len(results)), Cursor: strconv.FormatUint(after, 10), More: more}
	var newest uint64 = after
	for _, res := range results {
		id, err := fedfind.ParseComposeID(res.ComposeID)
		if err != nil {
			continue
		}
		wf := res.Workflow
		rel, _ := reports.ReleaseOf(res.ComposeID)
		c := composeInfo{ID: id, Release: rel, Workflow: &wf}
		page.Composes = append(page.Composes, resultJSON{Cursor: strconv.FormatUint(res.Seq, 10), At: res.At, composeJSON: composeOf(c)})
		newest = max(newest, res.Seq)
	}
	page.Cursor = strconv.FormatUint(newest, 10)
	h.writeJSON(w, http.StatusOK, page)
}

// composeDetail is GET /api/v1/composes/<ID>.
type composeDetail struct {
	composeJSON
	Workflow *workflowJSON `json:"workflow"`
	// Report holds the report's findings in brief; the whole report is
	// at links.report_json.
	Report *reportBrief `json:"report"`
}

type reportBrief struct {
	GeneratedAt       time.Time              `json:"generated_at"`
	PreviousComposeID string                 `json:"previous_compose_id"`
	SummaryLine       string                 `json:"summary_line"`
	MissingExpected   []reports.MissingImage `json:"missing_expected"`
	NewFailures       []reports.Job          `json:"new_failures"`
	Doomed            *reports.Doomed        `json:"doomed,omitempty"`
}

func (h *handler) apiCompose(w http.ResponseWriter, r *http.Request) {
	id, err := composeIDOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c, rep, err := h.compose(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d := composeDetail{composeJSON: composeOf(c)}
	if c.Workflow != nil {
		wj := withLinks(*c.Workflow)
		d.Workflow = &wj
	}
	if rep != nil {
		d.Report = &reportBrief{GeneratedAt: rep.GeneratedAt, PreviousComposeID: rep.PreviousComposeID, SummaryLine: rep.SummaryLine(),
			MissingExpected: rep.MissingExpected, NewFailures: rep.OpenQA.NewFailures, Doomed: rep.Doomed}
	}
	h.writeJSON(w, http.StatusOK, d)
}

// doneJSON is `composeci done --json`'s object, plus where the answer came
// from.
type doneJSON struct {
	fedfind.Completeness
	// AnsweredFrom is "workflow" when the pipeline's record of a final
	// verdict answered, "live" when STATUS and Koji were asked now.
	AnsweredFrom string `json:"answered_from"`
}

// apiDone answers release engineering's "is compose X done?": from the
// workflow once it holds a final verdict (done or doomed never change), and
// from STATUS and Koji otherwise.
func (h *handler) apiDone(w http.ResponseWriter, r *http.Request) {
	id, err := composeIDOf(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if c, ok := h.verdictFromWorkflow(r, id); ok {
		h.writeJSON(w, http.StatusOK, doneJSON{Completeness: c, AnsweredFrom: "workflow"})
		return
	}
	if h.o.Verdict == nil {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": id.String() + ": no final verdict in the pipeline, and this server does not ask Koji"})
		return
	}
	c, err := h.o.Verdict(r.Context(), id.String())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, http.StatusOK, doneJSON{Completeness: c, AnsweredFrom: "live"})
}

// verdictFromWorkflow reads a final verdict from the compose's workflow:
// past await-complete it is done; ended doomed, it is doomed.
func (h *handler) verdictFromWorkflow(r *http.Request, id fedfind.ComposeID) (fedfind.Completeness, bool) {
	wf, err := h.o.Workflows.Get(r.Context(), id.String())
	if err != nil {
		return fedfind.Completeness{}, false
	}
	c := fedfind.Completeness{ComposeID: id.String(), Status: fedfind.Status(wf.Data[keyStatus]), Reasons: []string{}}
	// The task counts of the verdict that passed await-complete, when Koji
	// was asked (a workflow from before they were kept has none: the
	// answer then says Koji was not checked, as far as it knows).
	if s := wf.Data[keyKojiTasks]; s != "" && json.Unmarshal([]byte(s), &c.Tasks) == nil {
		c.KojiChecked = true
	}
	switch {
	case wf.State == workflow.StateDoomed:
		c.Verdict = fedfind.VerdictDoomed
		if s := wf.Data[keyReasons]; s != "" {
			c.Reasons = strings.Split(s, "\n")
		}
		return c, true
	case passed(wf, "await-complete"):
		c.Verdict = fedfind.VerdictDone
		if c.Status != "" {
			c.Reasons = append(c.Reasons, "STATUS is "+string(c.Status)) // as the live verdict says first
		}
		for _, t := range wf.History {
			if note, ok := strings.CutPrefix(t.Note, "await-complete done: "); ok {
				c.Reasons = append(c.Reasons, note)
			}
		}
		return c, true
	}
	return fedfind.Completeness{}, false
}

// passed reports whether the workflow went through the stage (its history
// says the stage was done).
func passed(wf workflow.Workflow, stage string) bool {
	for _, t := range wf.History {
		if strings.HasPrefix(t.Note, stage+" done") {
			return true
		}
	}
	return false
}

func (h *handler) badRequest(w http.ResponseWriter, msg string) {
	h.writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

// composeIDOf reads and validates the {id} path value.
func composeIDOf(r *http.Request) (fedfind.ComposeID, error) {
	return fedfind.ParseComposeID(r.PathValue("id"))
}
