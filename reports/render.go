package reports

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/composeci/composeci/templates"
)

// Renderer renders reports with the embedded templates, parsed once. It is
// safe for concurrent use.
type Renderer struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// NewRenderer parses the templates.
func NewRenderer() (*Renderer, error) {
	t, err := templates.Text()
	if err != nil {
		return nil, err
	}
	h, err := templates.HTML()
	if err != nil {
		return nil, err
	}
	return &Renderer{text: t, html: h}, nil
}

// Text writes the plain-text report, for email and terminals.
func (rd *Renderer) Text(w io.Writer, r Report) error {
	if err := rd.text.ExecuteTemplate(w, templates.ReportText, newView(r)); err != nil {
		return fmt.Errorf("rendering text report of %s: %w", r.ComposeID, err)
	}
	return nil
}

// HTML writes the HTML report: the same content as Text, every value
// escaped by html/template.
func (rd *Renderer) HTML(w io.Writer, r Report) error {
	if err := rd.html.ExecuteTemplate(w, templates.ReportHTML, newView(r)); err != nil {
		return fmt.Errorf("rendering HTML report of %s: %w", r.ComposeID, err)
	}
	return nil
}

// RenderText writes the plain-text report. It parses the templates on every
// call; use a Renderer to render many reports.
func RenderText(w io.Writer, r Report) error {
	rd, err := NewRenderer()
	if err != nil {
		return err
	}
	return rd.Text(w, r)
}

// RenderHTML writes the HTML report. It parses the templates on every call;
// use a Renderer to render many reports.
func RenderHTML(w io.Writer, r Report) error {
	rd, err := NewRenderer()
	if err != nil {
		return err
	}
	return rd.HTML(w, r)
}

// RenderJSON writes the report's JSON, as the archive stores it.
func RenderJSON(w io.Writer, r Report) error {
	b, err := r.JSON()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Rendered is a report in its three forms.
type Rendered struct {
	JSON, Text, HTML []byte
}

// Render renders r in every form.
func (rd *Renderer) Render(r Report) (Rendered, error) {
	var out Rendered
	var err error
	if out.JSON, err = r.JSON(); err != nil {
		return Rendered{}, err
	}
	var b bytes.Buffer
	if err := rd.Text(&b, r); err != nil {
		return Rendered{}, err
	}
	out.Text = bytes.Clone(b.Bytes())
	b.Reset()
	if err := rd.HTML(&b, r); err != nil {
		return Rendered{}, err
	}
	out.HTML = b.Bytes()
	return out, nil
}

// view is what the templates see: the report, plus its failure lists
// grouped by arch and flavor with a note on each job saying how it compares
// with the previous compose.
type view struct {
	Report
	Subject string
	// Line is the summary line; Rule underlines the title.
	Line string
	Rule string

	New, Known, Fixed, Soft, Incomplete, Skipped, Cancelled, Pending []group
}

// group is the jobs of one (arch, flavor), the unit check-compose lists
// failures by.
type group struct {
	Arch, Flavor string
	Jobs         []jobView
}

type jobView struct {
	Job
	Note string
}

func newView(r Report) view {
	o := r.OpenQA
	prev := r.PreviousComposeID
	return view{
		Report:  r,
		Subject: Subject(r),
		Line:    r.SummaryLine(),
		Rule:    strings.Repeat("-", len(r.ComposeID)+len(" compose check report")),
		New: groups(o.NewFailures, func(j Job) string {
			switch {
			case prev == "":
				return retried(j, "")
			case j.PreviousJobID == 0:
				return retried(j, "not run in the previous compose")
			}
			return retried(j, j.PreviousResult+" in job "+strconv.FormatInt(j.PreviousJobID, 10))
		}),
		Known: groups(o.KnownFailures, func(j Job) string {
			return retried(j, "failed in job "+strconv.FormatInt(j.PreviousJobID, 10)+" too")
		}),
		Fixed: groups(o.Fixed, func(j Job) string {
			return "now " + j.Result + ", failed in job " + strconv.FormatInt(j.PreviousJobID, 10)
		}),
		Soft:       groups(o.SoftFailures, func(j Job) string { return retried(j, "") }),
		Incomplete: groups(o.Incomplete, func(j Job) string { return retried(j, j.Result) }),
		Skipped:    groups(o.Skipped, func(j Job) string { return j.Result }),
		Cancelled:  groups(o.Cancelled, func(j Job) string { return j.Result }),
		Pending: groups(o.Pending, func(j Job) string {
			if j.CloneMissing {
				return "restarted; the restart is not in the results"
			}
			return j.State
		}),
	}
}

// retried adds to a note that the job is a restart: the failure survived a
// retry, which makes it more credible.
func retried(j Job, note string) string {
	if !j.Restarted {
		return note
	}
	if note == "" {
		return "after a restart"
	}
	return note + "; after a restart"
}

// groups splits a list sorted by arch and flavor into runs of one (arch,
// flavor).
func groups(jobs []Job, note func(Job) string) []group {
	var out []group
	for _, j := range jobs {
		if n := len(out); n == 0 || out[n-1].Arch != j.Arch || out[n-1].Flavor != j.Flavor {
			out = append(out, group{Arch: j.Arch, Flavor: j.Flavor})
		}
		g := &out[len(out)-1]
		g.Jobs = append(g.Jobs, jobView{Job: j, Note: note(j)})
	}
	return out
}
