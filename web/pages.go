package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/workflow"
	"github.com/composeci/composeci/reports"
)

// The dashboard: server-rendered pages (html/template escapes every value
// a compose or openQA can put in them), one embedded stylesheet, no
// scripts, nothing fetched from elsewhere. A page of a compose in flight
// reloads itself (a meta refresh: no JavaScript needed).

//go:embed ui
var ui embed.FS

// assets serves the stylesheet.
func assets() http.Handler {
	sub, _ := fs.Sub(ui, "ui")
	files := http.FileServerFS(sub)
	return http.StripPrefix("/assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "style.css" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
}

// pageTemplates parses the layout with each page, once.
var pageTemplates = sync.OnceValues(func() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ts":         func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"stateClass": stateClass,
		"link":       linkable,
		"yes":        func(b *bool) bool { return b != nil && *b },
		"no":         func(b *bool) bool { return b != nil && !*b },
		"label":      func(id int64) string { return "#" + strconv.FormatInt(id, 10) },
		"section": func(title, anchor string, jobs []reports.Job, note string) jobSection {
			return jobSection{Title: title, Anchor: anchor, Jobs: jobs, Note: note}
		},
	}
	out := map[string]*template.Template{}
	for _, page := range []string{"home", "stream", "compose"} {
		t, err := template.New(page).Funcs(funcs).ParseFS(ui, "ui/layout.html", "ui/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing the %s page: %w", page, err)
		}
		out[page] = t
	}
	return out, nil
})

// page is what every page template sees.
type page struct {
	Title   string
	Now     time.Time
	API     string // the page's JSON twin
	Refresh int    // seconds; 0: no reload
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	ts, err := pageTemplates()
	if err != nil {
		h.o.Logger.ErrorContext(r.Context(), "dashboard templates", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := ts[name].ExecuteTemplate(&b, "layout", data); err != nil {
		h.o.Logger.ErrorContext(r.Context(), "rendering a dashboard page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write([]byte(b.String()))
}

// pageError answers a page request that failed: bad input 400, unknown
// compose 404, anything else 500 (logged, not shown).
func (h *handler) pageError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, fedfind.ErrInvalidInput):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, errUnknownCompose), errors.Is(err, workflow.ErrNotFound), errors.Is(err, reports.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		h.o.Logger.ErrorContext(r.Context(), "dashboard request failed", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// composeRow is a compose in a page's table.
type composeRow struct {
	ID        string
	State     string
	Status    string
	Summary   string
	Age       string
	Note      string
	HasCounts bool
	Passed    int
	Failed    int
	New       int
	Fixed     int
	Missing   int
	ToReport  string
	// ReportHTML is the report's address, when there is one.
	ReportHTML string
}

func (h *handler) row(c composeInfo) composeRow {
	r := composeRow{ID: c.ID.String(), State: c.state(), Status: c.status(), Age: ago(h.o.Now().Sub(c.updated()))}
	if s, ok := c.summary(); ok {
		r.HasCounts = true
		r.Passed, r.Failed, r.New, r.Fixed, r.Missing = s.Passed, s.Failed, s.NewFailures, s.Fixed, s.MissingExpected
	}
	if w := c.Workflow; w != nil {
		r.Note = w.Note
		r.Summary = w.Data[keySummary]
	}
	if r.Summary == "" && c.Entry != nil {
		r.Summary = reports.Report{Summary: c.Entry.Summary}.SummaryLine()
	}
	if d, ok := c.toReport(); ok {
		r.ToReport = duration(d)
	}
	r.ReportHTML = reportLinks(c)["html"]
	return r
}

type homePage struct {
	page
	Streams []struct {
		Release, Name string
		Watched       bool
		Latest        composeRow
	}
	InFlight []composeRow
}

func (h *handler) pageHome(w http.ResponseWriter, r *http.Request) {
	ss, err := h.streams(r.Context(), "")
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	p := homePage{page: page{Title: "Composes", Now: h.o.Now(), API: "/api/v1/streams"}}
	for _, s := range ss {
		latest, _ := s.latest()
		p.Streams = append(p.Streams, struct {
			Release, Name string
			Watched       bool
			Latest        composeRow
		}{s.Release, s.Name, s.Watched, h.row(latest)})
		for _, c := range s.inFlight() {
			p.InFlight = append(p.InFlight, h.row(c))
		}
	}
	h.render(w, r, "home", p)
}

// streamPageSize is how many composes a stream's page shows.
const streamPageSize = 30

type streamPage struct {
	page
	Release, Name string
	Composes      []composeRow
	Chart         template.HTML
}

func (h *handler) pageStream(w http.ResponseWriter, r *http.Request) {
	release := r.PathValue("stream")
	if !reports.ValidRelease(release) {
		http.Error(w, fmt.Sprintf("%q is not a release stream (rawhide, 45, 45-updates, ...)", release), http.StatusBadRequest)
		return
	}
	ss, err := h.streams(r.Context(), release)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	if len(ss) == 0 {
		http.Error(w, "no compose of release stream "+release, http.StatusNotFound)
		return
	}
	s := ss[0]
	composes := s.Composes[:min(len(s.Composes), streamPageSize)]
	p := streamPage{page: page{Title: s.Name, Now: h.o.Now(), API: "/api/v1/composes?stream=" + release}, Release: release, Name: s.Name}
	for _, c := range composes {
		p.Composes = append(p.Composes, h.row(c))
	}
	p.Chart = chart(composes)
	h.render(w, r, "stream", p)
}

type composePage struct {
	page
	ID, Stream, State, Status, Summary string
	Problem                            bool
	Links                              map[string]string
	Overview                           string
	Previous                           string
	Verdict                            string
	Reasons                            []string
	Timeline                           []timelineRow
	Report                             *reports.Report
}

type timelineRow struct {
	At, Stage, Took, Note string
}

// jobSection is one list of jobs on a compose's page.
type jobSection struct {
	Title, Anchor, Note string
	Jobs                []reports.Job
}

// JobLabel names a job for people: "#1234".
func (jobSection) JobLabel(id int64) string { return "#" + strconv.FormatInt(id, 10) }

func (h *handler) pageCompose(w http.ResponseWriter, r *http.Request) {
	id, err := composeIDOf(r)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	c, rep, err := h.compose(r.Context(), id)
	if err != nil {
		h.pageError(w, r, err)
		return
	}
	st := fedfind.StreamOf(id)
	p := composePage{page: page{Title: id.String(), Now: h.o.Now(), API: "/api/v1/composes/" + id.String()},
		ID: id.String(), Stream: st.String(), State: c.state(), Status: c.status(), Problem: c.problem(),
		Links: reportLinks(c), Report: rep}
	if p.Links == nil {
		p.Links = map[string]string{}
	}
	if rep != nil {
		p.Summary, p.Previous = rep.SummaryLine(), rep.PreviousComposeID
	}
	if h.o.Overview != nil && st.Version != "" {
		p.Overview = linkable(h.o.Overview(st.Version, id.String()))
	}
	if wf := c.Workflow; wf != nil {
		if wf.State == workflow.StateActive {
			p.Refresh = 15
			p.State = "active"
		}
		p.Timeline = timeline(*wf, h.o.Now())
		switch {
		case wf.State == workflow.StateDoomed:
			p.Verdict = "doomed"
			if s := wf.Data[keyReasons]; s != "" {
				p.Reasons = strings.Split(s, "\n")
			}
		case passed(*wf, "await-complete"):
			p.Verdict = "done"
			for _, t := range wf.History {
				if note, ok := strings.CutPrefix(t.Note, "await-complete done: "); ok {
					p.Reasons = append(p.Reasons, note)
				}
			}
		case wf.State == workflow.StateActive && wf.Stage == "await-complete":
			p.Verdict = "not done yet"
			if wf.Note != "" {
				p.Reasons = []string{wf.Note}
			}
		}
	}
	h.render(w, r, "compose", p)
}

// timeline lists a workflow's transitions with the time each stage took
// (until the next transition, or until now for the one in progress).
func timeline(wf workflow.Workflow, now time.Time) []timelineRow {
	out := make([]timelineRow, 0, len(wf.History))
	for i, t := range wf.History {
		row := timelineRow{At: t.At.UTC().Format("2006-01-02 15:04:05"), Stage: string(t.Stage), Note: t.Note}
		if t.State != workflow.StateActive {
			row.Stage = t.State
		}
		switch {
		case i+1 < len(wf.History):
			row.Took = duration(wf.History[i+1].At.Sub(t.At))
		case wf.State == workflow.StateActive:
			row.Took = duration(now.Sub(t.At)) + " so far"
		}
		out = append(out, row)
	}
	return out
}

func stateClass(state string) string {
	switch state {
	case workflow.StateDone, "reported":
		return "done"
	case workflow.StateDoomed, workflow.StateFailed:
		return state
	}
	return "active"
}

// linkable returns u when a page may link to it: an absolute http or https
// URL. Anything else is shown as text.
func linkable(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

// duration says how long, for people: "42s", "5m 03s", "2h 05m", "3d 4h".
func duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// ago says how long ago, for people.
func ago(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return duration(d) + " ago"
}

// chart draws the passed, failed and new-failure counts of composes
// (newest first; drawn oldest to newest, left to right) as an inline SVG:
// numbers only go into it, so it needs no escaping beyond what
// html/template would do.
func chart(composes []composeInfo) template.HTML {
	type point struct{ passed, failed, new int }
	var pts []point
	for i := len(composes) - 1; i >= 0; i-- {
		if s, ok := composes[i].summary(); ok && s.Tests > 0 {
			pts = append(pts, point{s.Passed, s.Failed, s.NewFailures})
		}
	}
	if len(pts) < 2 {
		return ""
	}
	const w, h, pad = 600.0, 160.0, 24.0
	top := 1
	for _, p := range pts {
		top = max(top, p.passed, p.failed, p.new)
	}
	x := func(i int) float64 { return pad + float64(i)*(w-2*pad)/float64(len(pts)-1) }
	y := func(v int) float64 { return h - pad - float64(v)*(h-2*pad)/float64(top) }
	line := func(class string, v func(point) int) string {
		var b strings.Builder
		for i, p := range pts {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(i), y(v(p)))
		}
		return fmt.Sprintf(`<polyline class="%s" points="%s"/>`, class, strings.TrimSpace(b.String()))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="passed, failed and new failures of the last %d composes">`, w, h, len(pts))
	fmt.Fprintf(&b, `<line class="grid" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, pad, y(0), w-pad, y(0))
	fmt.Fprintf(&b, `<line class="grid" x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f"/>`, pad, y(top), w-pad, y(top))
	fmt.Fprintf(&b, `<text x="2" y="%.1f">%d</text><text x="2" y="%.1f">0</text>`, y(top)+4, top, y(0)+4)
	b.WriteString(line("passed", func(p point) int { return p.passed }))
	b.WriteString(line("failed", func(p point) int { return p.failed }))
	b.WriteString(line("new", func(p point) int { return p.new }))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and fixed markup only
}
