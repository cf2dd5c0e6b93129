package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/fedfind/koji"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/stages"
)

const defaultKojiURL = "https://koji.fedoraproject.org/kojihub"

// exitDoomed is done's exit code for a compose that ended without result.
const exitDoomed = 3

// kojiFlags are the flags of commands that talk to Koji.
type kojiFlags struct {
	url       string
	owner     string
	batch     int
	cacheTTL  time.Duration
	rulesFile string
}

func (k *kojiFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&k.url, "koji", defaultKojiURL, "Koji hub XML-RPC URL")
	fl.StringVar(&k.owner, "koji-owner", "", "only count image tasks of this Koji user (default: the rules' owner, usually any)")
	fl.IntVar(&k.batch, "koji-batch", koji.DefaultBatchSize, "most calls in one Koji multicall request")
	fl.DurationVar(&k.cacheTTL, "koji-cache-ttl", koji.DefaultCacheTTL, "how long Koji answers are cached (negative: not cached)")
	fl.StringVar(&k.rulesFile, "completeness-file", "", "TOML file replacing the built-in completeness rules")
}

func (a *app) kojiClient(k kojiFlags) (*koji.Client, error) {
	c, err := koji.New(koji.Options{URL: k.url, HTTP: a.httpClient(), Logger: a.log, BatchSize: k.batch, CacheTTL: k.cacheTTL})
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--koji: %w", err))
	}
	return c, nil
}

func (k kojiFlags) rules() (fedfind.CompletenessRules, error) {
	if k.rulesFile == "" {
		return fedfind.DefaultCompletenessRules(), nil
	}
	f, err := os.Open(k.rulesFile)
	if err != nil {
		return fedfind.CompletenessRules{}, fmt.Errorf("--completeness-file: %w", err)
	}
	defer f.Close()
	r, err := fedfind.ParseCompletenessRules(f, k.rulesFile)
	if err != nil {
		return r, fmt.Errorf("--completeness-file: %w", err)
	}
	return r, nil
}

// awaitComplete builds the await-complete stage from the Koji flags: what
// `done` runs by hand and the pipeline runs for every compose.
func awaitComplete(ctx context.Context, a *app, k kojiFlags) (stages.AwaitComplete, error) {
	ff, err := a.fedfindClient()
	if err != nil {
		return stages.AwaitComplete{}, err
	}
	kc, err := a.kojiClient(k)
	if err != nil {
		return stages.AwaitComplete{}, err
	}
	rules, err := k.rules()
	if err != nil {
		return stages.AwaitComplete{}, withCode(exitError, err)
	}
	ac := stages.AwaitComplete{Fedfind: ff, Koji: kc, Rules: rules}
	owner := k.owner
	if owner == "" {
		owner = rules.Owner
	}
	if owner != "" {
		u, err := kc.GetUser(ctx, owner)
		if err != nil {
			return stages.AwaitComplete{}, fmt.Errorf("--koji-owner %s: %w", owner, err)
		}
		ac.OwnerID = u.ID
	}
	return ac, nil
}

func newDoneCmd(a *app) *cobra.Command {
	var k kojiFlags
	var wait bool
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "done COMPOSE...",
		Short: "Is a compose really complete? (STATUS plus its Koji image tasks)",
		Long: `Decide whether each compose is done, and say why.

A compose is named by its ID, a URL in its tree or a label (44:RC-1.2). A
stream (rawhide, branched, branched:44, ...) names the stream's newest
compose, finished or not — today's nightly while Pungi still runs it, which
is what "done rawhide --wait" waits for — as the stream directory's listing
shows it; where the tree offers no listing, the newest finished one (its
latest-* link).

Verdicts:
  pending  no STATUS yet: Pungi has not started it
  running  Pungi runs, or STATUS is final but Koji still builds images (or shows
           none of the compose's image tasks yet)
  done     STATUS is FINISHED or FINISHED_INCOMPLETE and, for streams that build
           images in Koji, at least one image task of the compose exists and none
           is FREE, OPEN or ASSIGNED
  doomed   STATUS is DOOMED or TERMINATED

The Koji question is one listTasks per image method, all in one multicall: one
round trip for a cold verdict; repeated or narrower questions are answered from
the query cache once the tasks they cover have finished. Tasks are tied to a
nightly by the release (<date>.n.<respin>) and version (Rawhide, 44) in their
request, among tasks created in a window around the compose date. Which
streams need Koji, the methods and the window are data: see
--completeness-file (default rules: fedfind/completeness.toml in the source).

--wait polls every --interval until every compose is done or doomed, or
--timeout passes; composes are polled independently, so a slow one blocks no
other. On a terminal a progress line shows each compose's state. A failure
that may pass — Koji or the compose tree not answering, timing out, or
answering 5xx or 429 — does not end the wait: stderr says so once, and once
more when the service answers again, and polling goes on until --timeout.
Anything else (a Koji fault, a wrong URL, metadata that does not parse) ends
it at once with exit 2, as does a --timeout with no verdict at all.

--json prints, per compose, {"compose_id","verdict","reasons","status",
"tasks":{...},"koji_round_trips",...}: an object for one compose, an array for
several. The round trips (also printed after the reasons) are those of the
compose's verdict; with --wait, of all its polls together.

Exit codes: 0 all done, 1 some not done yet (or --timeout passed), 3 some
doomed (and none merely not done), 2 error.`,
		Example: `  composeci done Fedora-Rawhide-20261123.n.0
  composeci done rawhide branched --wait --timeout 8h`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ac, err := awaitComplete(ctx, a, k)
			if err != nil {
				return err
			}
			composes := make([]*fedfind.Compose, len(args))
			for i, ref := range args {
				if composes[i], err = ac.Fedfind.ResolveNewest(ctx, ref); err != nil {
					return err
				}
			}
			results := make([]fedfind.Completeness, len(composes))
			errs := make([]error, len(composes))
			var prog *progress
			var out *outages
			if wait {
				prog = newProgress(a.stderr, composes)
				out = newOutages(prog.note, fmt.Sprintf("every %s until --timeout %s", interval, timeout))
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			var wg sync.WaitGroup
			for i, cm := range composes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = pollDone(ctx, ac, cm, wait, interval, prog, out, i)
				}()
			}
			wg.Wait()
			prog.finish()
			timedOut := wait && ctx.Err() != nil && cmd.Context().Err() == nil
			for i, err := range errs {
				// A wait that timed out shows the last verdicts; a
				// compose that had none is an error.
				if err != nil && !(timedOut && errors.Is(err, context.DeadlineExceeded) && results[i].Verdict != "") {
					return err // it names the compose
				}
			}
			if a.g.json {
				if len(results) == 1 {
					err = a.printJSON(results[0])
				} else {
					err = a.printJSON(results)
				}
				if err != nil {
					return err
				}
			} else {
				for _, r := range results {
					printVerdict(a.stdout, r)
				}
				if timedOut {
					fmt.Fprintf(a.stdout, "Gave up waiting after %s.\n", timeout)
				}
			}
			code := exitOK
			for _, r := range results {
				switch {
				case r.Verdict == fedfind.VerdictDoomed && code == exitOK:
					code = exitDoomed
				case r.Verdict != fedfind.VerdictDone && r.Verdict != fedfind.VerdictDoomed:
					code = exitNegative
				}
			}
			if code != exitOK {
				return &exitStatus{Code: code}
			}
			return nil
		},
	}
	k.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "poll until every compose is done or doomed")
	cmd.Flags().DurationVar(&timeout, "timeout", 8*time.Hour, "with --wait, give up after this long")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Minute, "with --wait, time between polls")
	return cmd
}

// pollDone returns the verdict of cm, polling until it is final when wait
// is set. While waiting, a failure that may pass (Koji or the compose tree
// not answering, timing out, answering 5xx or 429) is waited out: out tells
// of it once per outage, and once when the service answers again; any
// other error ends the wait at once. On timeout it returns the last
// verdict with the context's error, or an error naming the last failure
// when no poll ever answered.
func pollDone(ctx context.Context, ac stages.AwaitComplete, cm *fedfind.Compose, wait bool, interval time.Duration, prog *progress, out *outages, slot int) (fedfind.Completeness, error) {
	var last fedfind.Completeness
	var trips int64   // Koji round trips of every poll so far
	var lastErr error // the last failure waited out
	failing := ""     // the service whose failure the last poll waited out
	for {
		c, err := ac.Verdict(ctx, cm)
		trips += c.KojiRoundTrips
		c.KojiRoundTrips = trips
		switch {
		case err != nil && ctx.Err() != nil:
			return waitEnded(ctx, cm, last, lastErr, err)
		case err != nil && wait && transientPoll(err):
			failing, lastErr = pollService(err), err
			out.failed(failing, err)
		case err != nil:
			return c, err
		default:
			if failing != "" {
				out.answered(failing)
				failing = ""
			}
			last = c
			prog.update(slot, c)
			if !wait || c.Verdict == fedfind.VerdictDone || c.Verdict == fedfind.VerdictDoomed {
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return waitEnded(ctx, cm, last, lastErr, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// waitEnded is what a wait whose context ended returns: the last verdict
// with the context's error, or, with none, an error naming the compose and
// why no poll answered.
func waitEnded(ctx context.Context, cm *fedfind.Compose, last fedfind.Completeness, lastErr, err error) (fedfind.Completeness, error) {
	if last.Verdict != "" {
		return last, ctx.Err()
	}
	if lastErr == nil {
		lastErr = err
	}
	return last, fmt.Errorf("%s: no verdict before the wait ended (%w); the last poll failed: %w", cm.ID, ctx.Err(), lastErr)
}

// transientPoll reports whether a poll's failure may pass by itself: Koji
// or the compose tree did not answer, timed out, or answered 5xx or 429
// (or Koji's ServerOffline fault). A Koji fault, a wrong URL (404), a
// compose that is not what it claims or metadata that does not parse will
// not.
func transientPoll(err error) bool {
	return koji.IsTransient(err) || httpclient.Temporary(err)
}

// pollService names the service a transient failure came from.
func pollService(err error) string {
	if koji.IsTransient(err) {
		return "Koji"
	}
	return "the compose tree"
}

func printVerdict(w io.Writer, c fedfind.Completeness) {
	fmt.Fprintf(w, "%s: %s\n", c.ComposeID, c.Verdict)
	for _, r := range c.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	if c.KojiChecked {
		fmt.Fprintf(w, "  (%s)\n", plural(int(c.KojiRoundTrips), "Koji round trip", "Koji round trips"))
	}
}

// progress draws one status line on a terminal while --wait polls; on
// anything else it prints a line whenever a compose's state changes.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	ids    []string
	states []string
	start  time.Time
}

func newProgress(w io.Writer, composes []*fedfind.Compose) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
	}
	for _, c := range composes {
		p.ids = append(p.ids, c.ID.String())
		p.states = append(p.states, "…")
	}
	return p
}

func (p *progress) update(i int, c fedfind.Completeness) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := string(c.Verdict)
	if c.KojiChecked && c.Verdict == fedfind.VerdictRunning {
		s = fmt.Sprintf("running (STATUS %s; Koji: %d unfinished, %d closed, %d failed)", c.Status, c.Tasks.Unfinished(), c.Tasks.Closed, c.Tasks.Failed)
	}
	changed := p.states[i] != s
	p.states[i] = s
	if !p.tty {
		if changed { // a log line per change, for pipes and CI logs
			fmt.Fprintf(p.w, "[%s] %s: %s\n", time.Since(p.start).Round(time.Second), p.ids[i], s)
		}
		return
	}
	p.draw()
}

// draw writes the status line over the last one; p.mu is held.
func (p *progress) draw() {
	parts := make([]string, len(p.ids))
	for j := range p.ids {
		parts[j] = p.ids[j] + ": " + p.states[j]
	}
	fmt.Fprintf(p.w, "\r\033[K[%s] %s", time.Since(p.start).Round(time.Second), strings.Join(parts, " | "))
}

// note prints a line of its own: above the status line on a terminal.
func (p *progress) note(line string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintln(p.w, line)
		return
	}
	fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	p.draw()
}

func (p *progress) finish() {
	if p != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}
