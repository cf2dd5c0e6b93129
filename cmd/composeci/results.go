package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/stages"
)

// Exit codes of results beyond the shared ones.
const (
	exitPending = 3 // some jobs are not finished (or --wait timed out)
	exitNoJobs  = 4 // openQA has no jobs for the build
)

type resultsOpts struct {
	oq       openqaFlags
	wait     bool
	interval time.Duration
	grace    time.Duration
	timeout  time.Duration
}

const resultsLong = `Show the openQA results of a compose: for every test of the build the newest
job, restarted and automatically re-run jobs followed to their last clone, with
a summary line. The jobs API is read in full, page by page.

COMPOSE is a compose ID (openQA's BUILD), or a compose URL or stream
(rawhide, branched, ...) resolved through the compose tree.

--wait polls until every job is finished and stays so for --grace (openQA
re-runs an incomplete job a moment after finishing it), showing progress on
stderr: one updating line on a terminal, a line per change otherwise. A
failure that may pass — openQA not answering, timing out, or answering 5xx
or 429 — does not end the wait: stderr says so once, and once more when
openQA answers again, and polling goes on until --timeout. Any other answer
(a refusal, a bad request) ends it at once with exit 2.

--json prints {"build", "version", "overview_url", "jobs": [{"id", "test",
"flavor", "arch", "machine", "state", "result", "url"}, ...], "summary": {"total",
"pending", "by_result", "ok", "not_ok", "all_final"}}.

Exit codes: 0 every job finished and passed or soft-failed, 1 some job failed
(or was incomplete, cancelled, ...), 2 error, 3 some jobs are still pending
(or --timeout passed), 4 openQA has no jobs for this build.`

func newResultsCmd(a *app) *cobra.Command {
	var o resultsOpts
	cmd := &cobra.Command{
		Use:   "results COMPOSE",
		Short: "Show a compose's openQA results, clones followed",
		Long:  resultsLong,
		Example: `  composeci results Fedora-Rawhide-20261123.n.0
  composeci results rawhide --wait --timeout 8h
  composeci results Fedora-Rawhide-20261123.n.0 --json | jq '.jobs[] | select(.result == "failed") | .url'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResults(cmd, a, &o, args[0])
		},
	}
	o.oq.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.wait, "wait", false, "wait until every job has finished")
	fl.DurationVar(&o.interval, "interval", 30*time.Second, "with --wait: time between polls")
	fl.DurationVar(&o.grace, "grace", 10*time.Second, "with --wait: how long all jobs must stay finished (clones of incomplete jobs appear late)")
	fl.DurationVar(&o.timeout, "timeout", 0, "with --wait: give up after this long (0: never)")
	return cmd
}

// buildOf turns the argument into a BUILD: a compose ID as it is, else a
// compose URL or stream resolved with fedfind.
func buildOf(ctx context.Context, a *app, ref string) (string, error) {
	if id, err := fedfind.ParseComposeID(ref); err == nil {
		return id.String(), nil
	}
	ff, err := a.fedfindClient()
	if err != nil {
		return "", err
	}
	cm, err := ff.Resolve(ctx, ref)
	if err != nil {
		return "", err
	}
	return cm.ID.String(), nil
}

func runResults(cmd *cobra.Command, a *app, o *resultsOpts, ref string) error {
	ctx := cmd.Context()
	build, err := buildOf(ctx, a, ref)
	if err != nil {
		return err
	}
	oq, err := o.oq.client(cmd, a)
	if err != nil {
		return err
	}
	var r *openqa.Results
	if o.wait {
		if o.interval <= 0 {
			return withCode(exitError, errors.New("--interval must be positive"))
		}
		wctx := ctx
		if o.timeout > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithTimeout(ctx, o.timeout)
			defer cancel()
		}
		p := newWaitProgress(a.stderr)
		grace := o.grace
		if grace == 0 {
			grace = -1 // the library reads 0 as its default
		}
		until := "until interrupted"
		if o.timeout > 0 {
			until = "until --timeout " + o.timeout.String()
		}
		out := newOutages(p.note, fmt.Sprintf("every %s %s", o.interval, until))
		r, err = oq.Wait(wctx, build, openqa.WaitOptions{Interval: o.interval, Grace: grace,
			Progress: func(r *openqa.Results) { out.answered("openQA"); p.update(r) },
			Retrying: func(err error) { out.failed("openQA", err) }})
		p.done()
		timedOut := errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil && ctx.Err() == nil
		if timedOut && r == nil {
			return fmt.Errorf("--timeout %s passed without an answer from openQA: %w", o.timeout, err)
		}
		if err != nil && !timedOut {
			return err
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "composeci: --timeout %s passed; showing the results so far\n", o.timeout)
		}
	} else if r, err = (stages.AwaitResults{OpenQA: oq}).Results(ctx, build); err != nil { // the pipeline's await-results, by hand
		return err
	}
	if a.g.json {
		if err := a.printJSON(resultsJSON(r)); err != nil {
			return err
		}
	} else if err := printResults(a.stdout, oq, r); err != nil {
		return err
	}
	switch s := r.Summary; {
	case s.Total == 0:
		return withCode(exitNoJobs, nil)
	case s.Pending > 0:
		return withCode(exitPending, nil)
	case s.NotOK > 0:
		return negative()
	}
	return nil
}

// jobJSON is one job of `results --json`, a stable interface for scripts.
type jobJSON struct {
	ID      int64  `json:"id"`
	Test    string `json:"test"`
	Flavor  string `json:"flavor"`
	Arch    string `json:"arch"`
	Machine string `json:"machine"`
	State   string `json:"state"`
	Result  string `json:"result"`
	URL     string `json:"url"`
}

type resultsDoc struct {
	Build       string         `json:"build"`
	Version     string         `json:"version,omitempty"`
	OverviewURL string         `json:"overview_url,omitempty"`
	Jobs        []jobJSON      `json:"jobs"`
	Summary     openqa.Summary `json:"summary"`
}

func resultsJSON(r *openqa.Results) resultsDoc {
	d := resultsDoc{Build: r.Build, Version: r.Version, OverviewURL: r.OverviewURL, Jobs: []jobJSON{}, Summary: r.Summary}
	for _, j := range r.Jobs {
		d.Jobs = append(d.Jobs, jobJSON{ID: j.ID, Test: j.Test, Flavor: j.Flavor(), Arch: j.Arch(),
			Machine: j.Machine(), State: j.State, Result: j.Result, URL: j.URL})
	}
	return d
}

func printResults(w io.Writer, oq *openqa.Client, r *openqa.Results) error {
	fmt.Fprintf(w, "%s on %s: %s\n", r.Build, oq.BaseURL(), plural(r.Summary.Total, "job", "jobs"))
	if r.Summary.Total > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "FLAVOR\tARCH\tTEST\tMACHINE\tRESULT\tURL")
		for _, j := range r.Jobs {
			res := j.Result
			if j.Pending() {
				res = j.State
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", j.Flavor(), j.Arch(), j.Test, j.Machine(), res, j.URL)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, summaryLine(r.Summary))
	if r.Superseded > 0 {
		fmt.Fprintf(w, "(%s left out: restarted or re-run by openQA; the newest of each is shown.)\n", plural(r.Superseded, "older job", "older jobs"))
	}
	if r.OverviewURL != "" {
		fmt.Fprintf(w, "Overview: %s\n", r.OverviewURL)
	}
	return nil
}

// summaryLine is e.g. "Summary: 19 passed, 1 failed, 1 softfailed; 2 pending".
func summaryLine(s openqa.Summary) string {
	if s.Total == 0 {
		return "Summary: no jobs for this build."
	}
	keys := make([]string, 0, len(s.ByResult))
	for k := range s.ByResult {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", s.ByResult[k], k))
	}
	line := "Summary: "
	if len(parts) > 0 {
		line += strings.Join(parts, ", ") + "; "
	}
	if s.AllFinal {
		return line + "all finished."
	}
	return line + fmt.Sprintf("%d pending.", s.Pending)
}

// waitProgress shows --wait's progress on stderr: a line rewritten in place on
// a terminal, a new line per change otherwise (logs stay readable).
type waitProgress struct {
	w    io.Writer
	tty  bool
	last string
}

func newWaitProgress(w io.Writer) *waitProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &waitProgress{w: w, tty: tty}
}

func (p *waitProgress) update(r *openqa.Results) {
	s := r.Summary
	line := fmt.Sprintf("waiting for %s: %d/%d finished, %d failed so far", r.Build, s.Total-s.Pending, s.Total, s.NotOK)
	if s.Total == 0 {
		line = fmt.Sprintf("waiting for %s: no jobs yet", r.Build)
	}
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

// note prints a line of its own: above the progress line on a terminal.
func (p *waitProgress) note(line string) {
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	if p.last != "" {
		fmt.Fprint(p.w, p.last)
	}
}

func (p *waitProgress) done() {
	if p.tty && p.last != "" {
		fmt.Fprintln(p.w)
	}
}
