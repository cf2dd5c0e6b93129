package main

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
	"github.com/composeci/composeci/stages"
)

// Exit code of schedule when some products could not be scheduled.
const exitSomeFailed = 3

// openqaFlags are the connection flags of the commands that talk to openQA.
// Like every flag they are also config keys ([openqa] key = ... is
// --openqa-key) and environment variables (COMPOSECI_OPENQA_SECRET).
type openqaFlags struct {
	url               string
	key, secret, file string
	postTimeout       time.Duration
	recheckDelay      time.Duration
}

func (f *openqaFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "openqa", openqa.DefaultBaseURL, "openQA server URL")
	fl.StringVar(&f.key, "openqa-key", "", "openQA API key (also OPENQA_API_KEY)")
	fl.StringVar(&f.secret, "openqa-secret", "", "openQA API secret (prefer --openqa-secret-file or the environment)")
	fl.StringVar(&f.file, "openqa-secret-file", "", "file holding the openQA API secret")
	fl.DurationVar(&f.postTimeout, "openqa-post-timeout", 10*time.Minute,
		"bound on one scheduling or restart POST to openQA (it creates the jobs before it answers)")
	fl.DurationVar(&f.recheckDelay, "openqa-recheck-delay", 5*time.Second,
		"after a POST failed without an answer, how long to wait before reading the build's jobs to see whether it went through")
}

// client builds the openQA client; the secret never reaches a log or an
// error message.
func (f *openqaFlags) client(cmd *cobra.Command, a *app) (*openqa.Client, error) {
	base := f.url
	creds, err := openqa.LoadCredentials(f.key, f.secret, f.file, a.getenv)
	if err != nil {
		return nil, withCode(exitError, err)
	}
	a.log.Debug("openqa client", "url", base, "credentials", creds)
	recheck := f.recheckDelay
	if recheck == 0 {
		recheck = -1 // at once (openqa.Options reads 0 as its default)
	}
	c, err := openqa.New(openqa.Options{BaseURL: base, Credentials: creds, Logger: a.log,
		HTTP: httpclient.Options{Timeout: a.g.remoteTimeout}, PostTimeout: f.postTimeout, RecheckDelay: recheck})
	if err != nil {
		return nil, withCode(exitError, fmt.Errorf("--openqa: %w", err))
	}
	return c, nil
}

type scheduleOpts struct {
	oq            openqaFlags
	sched         scheduleFlags
	dryRun, force bool
}

// scheduleFlags are the scheduling rules' flags, of schedule, listen and
// worker.
type scheduleFlags struct {
	rulesFile      string
	arches         []string
	currentRelease int
	rawhideRelease int
	releaseData    string
	candidateGroup int
}

func (f *scheduleFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.rulesFile, "openqa-rules", "", "TOML file of scheduling rules over the built-in ones")
	fl.StringSliceVar(&f.arches, "openqa-arch", nil, "arches to schedule, e.g. x86_64,aarch64 (default from the rules: x86_64)")
	fl.IntVar(&f.currentRelease, "openqa-current-release", 0, "current stable Fedora release, for CURRREL (default from --release-data, else the rules)")
	fl.IntVar(&f.rawhideRelease, "openqa-rawhide-release", 0, "release number Rawhide will become, for RAWREL (default from --release-data, else the rules)")
	fl.StringVar(&f.releaseData, "release-data", fedfind.DefaultReleaseDataURL,
		"Fedora QA's release.json, read daily for CURRREL (the highest stable release) and RAWREL (the highest release + 1); when it cannot be read, the rules' numbers (empty: always the rules')")
	fl.IntVar(&f.candidateGroup, "openqa-candidate-group", 1,
		"openQA job group in which a candidate compose's build is tagged important once scheduled, so nightlies never obsolete its jobs, as fedora_openqa does (0: none)")
}

// options reads the rules and applies the overrides. The release data is
// read when a compose is scheduled (and again a day later), not here.
func (f *scheduleFlags) options(a *app) (openqa.ScheduleOptions, error) {
	rules := openqa.DefaultRules()
	if f.rulesFile != "" {
		var err error
		if rules, err = openqa.LoadRules(f.rulesFile); err != nil {
			return openqa.ScheduleOptions{}, withCode(exitError, err)
		}
	}
	if len(f.arches) > 0 {
		rules.Arches = f.arches
	}
	if f.currentRelease < 0 || f.rawhideRelease < 0 {
		return openqa.ScheduleOptions{}, withCode(exitError, errors.New("release numbers must be positive"))
	}
	if f.candidateGroup < 0 {
		return openqa.ScheduleOptions{}, withCode(exitError, fmt.Errorf("--openqa-candidate-group %d: a job group id, or 0 for none", f.candidateGroup))
	}
	opts := openqa.ScheduleOptions{Rules: rules, Releases: openqa.Releases{Current: f.currentRelease, Rawhide: f.rawhideRelease},
		CandidateGroup: f.candidateGroup}
	if f.releaseData != "" && (f.currentRelease == 0 || f.rawhideRelease == 0) {
		// A short read: a stage waits for it, and the rules stand in when
		// it fails.
		hc := httpclient.New(httpclient.Options{Timeout: 15 * time.Second, RetryMax: 2, Logger: a.log})
		src, err := fedfind.NewReleaseSource(fedfind.ReleaseSourceOptions{URL: f.releaseData, HTTP: hc, Logger: a.log})
		if err != nil {
			return openqa.ScheduleOptions{}, withCode(exitError, fmt.Errorf("--release-data: %w", err))
		}
		opts.ReleaseData = src
	}
	return opts, nil
}

const scheduleLong = `Schedule openQA tests for a compose, as Fedora's scheduler does: one
POST /api/v1/isos per tested image (flavor and arch), plus the image-less
upgrade flavors for full composes.

COMPOSE is a compose ID, a compose URL or a stream (rawhide, branched, eln, ...)
for its latest finished compose. Its images, label and variants are read from
the compose tree (--compose-root).

Scheduling is idempotent: the build's jobs are read first and a flavor that
already has live jobs (not cancelled or obsoleted) is skipped, so running the
command twice, or again after a crash, schedules nothing twice. --force posts
every flavor again; openQA then obsoletes the pending jobs of each and starts
a fresh set. A POST that fails or times out is never repeated blindly: the
build's jobs are checked first, in case it went through.

Which images are tested, and what is posted, comes from scheduling rules:
built-in ones matching fedora_openqa, or a TOML file (--openqa-rules) laid out
like openqa/rules.toml whose keys replace the built-in ones. The release
numbers of the upgrade tests, CURRREL and RAWREL, come from Fedora QA's
release data (--release-data: the highest stable release, and the highest
release known + 1), from the rules when it cannot be read, and from
--openqa-current-release and --openqa-rawhide-release over both.

Once a candidate (production) compose has jobs, its build is tagged
important in the job group --openqa-candidate-group (default 1) with the
comment tag:<ID>:important:candidate, as fedora_openqa does: openQA then
never obsoletes its jobs for a nightly's and keeps their logs longer. The
group's comments are read first, so the tag is posted once.

A product openQA has no job templates for (it answers "no products found"
or creates nothing) is listed as such and is no failure: as with
fedora_openqa, an instance tests the flavors its operators have set up.

--json prints [{"flavor", "arch", "job_ids": [...], "skipped": bool}, ...]
(plus "error" for a flavor that failed, with "temporary" when posting
again may succeed, "not_configured" for one without job templates,
"dry_run" with --dry-run and "recovered" when a POST that seemed to fail
had created the jobs).

When openQA refuses the API key (no key, a wrong key or secret, a key that
is not an operator's, a clock too far off) the first refusal ends the run:
every other flavor would be refused too. One line on stderr says what to
check, nothing more is posted, and the exit code is 2.

Exit codes: 0 every flavor scheduled, already scheduled or without job
templates, 2 error (nothing
or not everything was tried; openQA refused the API key), 3 some flavors
failed (the others were scheduled; see the table or "error" in --json).`

func newScheduleCmd(a *app) *cobra.Command {
	var o scheduleOpts
	cmd := &cobra.Command{
		Use:   "schedule COMPOSE",
		Short: "Schedule openQA tests for a compose (idempotent)",
		Long:  scheduleLong,
		Example: `  composeci schedule Fedora-Rawhide-20261123.n.0 --dry-run
  COMPOSECI_OPENQA_KEY=... COMPOSECI_OPENQA_SECRET_FILE=~/.openqa-secret composeci schedule rawhide
  composeci schedule Fedora-Rawhide-20261123.n.0 --json | jq '.[] | select(.skipped | not)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSchedule(cmd, a, &o, args[0])
		},
	}
	o.oq.add(cmd)
	o.sched.add(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&o.dryRun, "dry-run", false, "show what would be posted (and what is already scheduled); post nothing")
	fl.BoolVar(&o.force, "force", false, "post every flavor even if it has jobs (openQA obsoletes the pending ones)")
	return cmd
}

func runSchedule(cmd *cobra.Command, a *app, o *scheduleOpts, ref string) error {
	ctx := cmd.Context()
	opts, err := o.sched.options(a)
	if err != nil {
		return err
	}
	opts.Force, opts.DryRun = o.force, o.dryRun
	oq, err := o.oq.client(cmd, a)
	if err != nil {
		return err
	}
	ff, err := a.fedfindClient()
	if err != nil {
		return err
	}
	cm, err := ff.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	// The pipeline's schedule stage, run by hand.
	comp, res, err := stages.Schedule{Fedfind: ff, OpenQA: oq, Options: opts}.Post(ctx, cm)
	if errors.Is(err, openqa.ErrAuthRefused) {
		// Every other flavor would be refused the same way: one line
		// says why, and nothing else was posted.
		return withCode(exitError, authRefused(oq, err, res))
	}
	if res == nil && err != nil {
		return withCode(exitError, err)
	}
	if a.g.json {
		if jerr := a.printJSON(res); jerr != nil {
			return jerr
		}
	} else if perr := printScheduled(a, oq, comp, res, o.dryRun); perr != nil {
		return perr
	}
	if err != nil {
		if a.g.json {
			return withCode(exitSomeFailed, err)
		}
		// The table already names each failure.
		return withCode(exitSomeFailed, fmt.Errorf("some flavors were not scheduled"))
	}
	return nil
}

// authRefused says, in one line, that openQA refused the credentials and
// what to check.
func authRefused(oq *openqa.Client, err error, res []openqa.Scheduled) error {
	words := err.Error()
	noKey := !oq.HasCredentials()
	var ae *openqa.APIError
	if errors.As(err, &ae) {
		words = fmt.Sprintf("HTTP %d", ae.StatusCode)
		if ae.Message != "" {
			words += ": " + ae.Message
		}
	}
	var msg string
	switch {
	case noKey:
		msg = fmt.Sprintf("openQA at %s refused to schedule without an API key (%s): set --openqa-key and --openqa-secret-file (or COMPOSECI_OPENQA_KEY and COMPOSECI_OPENQA_SECRET)", oq.BaseURL(), words)
	case strings.Contains(words, "Administrator level required"):
		msg = fmt.Sprintf("openQA at %s refused the API key (%s): scheduling needs the key of an operator", oq.BaseURL(), words)
	case strings.Contains(words, "timestamp mismatch"):
		msg = fmt.Sprintf("openQA at %s refused the API key (%s): check this machine's clock", oq.BaseURL(), words)
	default:
		msg = fmt.Sprintf("openQA at %s refused the API key (%s): check --openqa-key and the secret (--openqa-secret, --openqa-secret-file or COMPOSECI_OPENQA_SECRET)", oq.BaseURL(), words)
	}
	posted := 0
	for _, s := range res {
		if s.Error == "" && !s.Skipped && !s.DryRun {
			posted++
		}
	}
	if posted > 0 {
		msg += fmt.Sprintf("; %s scheduled before the refusal", plural(posted, "flavor was", "flavors were"))
	}
	return &explained{msg: msg, err: err}
}

// explained is an error whose message says more plainly what the error it
// wraps means; errors.Is and As still see the original.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

func printScheduled(a *app, oq *openqa.Client, comp openqa.Compose, res []openqa.Scheduled, dryRun bool) error {
	verb := "scheduling"
	if dryRun {
		verb = "dry run, nothing posted"
	}
	fmt.Fprintf(a.stdout, "%s on %s (%s): %s\n", comp.ID, oq.BaseURL(), verb, plural(len(res), "flavor", "flavors"))
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAVOR\tARCH\tSTATUS\tJOBS")
	var posted, skipped, failed, planned, untested int
	for _, s := range res {
		status := "posted"
		switch {
		case s.NotConfigured:
			status, untested = "no job templates in openQA", untested+1
		case s.Error != "":
			status, failed = "FAILED: "+s.Error, failed+1
		case s.Skipped:
			status, skipped = "already scheduled", skipped+1
		case s.DryRun:
			status, planned = "would post", planned+1
		case s.Recovered:
			status, posted = "posted (answer lost; jobs found)", posted+1
		default:
			posted++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Flavor, s.Arch, status, idRanges(s.JobIDs))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if dryRun {
		for _, s := range res {
			if !s.DryRun {
				continue
			}
			fmt.Fprintf(a.stdout, "\n%s %s:\n", s.Flavor, s.Arch)
			keys := make([]string, 0, len(s.Params))
			for k := range s.Params {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(a.stdout, "  %s=%s\n", k, s.Params[k])
			}
		}
		fmt.Fprintf(a.stdout, "\n%d would be posted, %d already scheduled.\n", planned, skipped)
		return nil
	}
	line := fmt.Sprintf("%d posted, %d already scheduled, %d failed", posted, skipped, failed)
	if untested > 0 {
		line += fmt.Sprintf(", %d without job templates in openQA", untested)
	}
	fmt.Fprintln(a.stdout, line+".")
	if untested == len(res) {
		fmt.Fprintf(a.stdout, "openQA at %s has job templates for none of these products: check its job groups and media (DISTRI fedora, VERSION %s).\n", oq.BaseURL(), comp.Version)
	}
	fmt.Fprintf(a.stdout, "Overview: %s\n", oq.OverviewURL(comp.Version, comp.ID))
	return nil
}

// idRanges prints job ids compactly: 1-4,7,9-10.
func idRanges(ids []int64) string {
	if len(ids) == 0 {
		return "-"
	}
	ids = slices.Clone(ids)
	slices.Sort(ids)
	var parts []string
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		p := strconv.FormatInt(ids[i], 10)
		if j > i {
			p += "-" + strconv.FormatInt(ids[j], 10)
		}
		parts = append(parts, p)
		i = j + 1
	}
	return strings.Join(parts, ",")
}
